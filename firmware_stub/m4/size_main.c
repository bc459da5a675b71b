/* Size probe: keeps the frontend, rings and recognizer linked (as the app uses them) so arm-none-eabi-size can
   report their flash and RAM; compared with base_main.c (same start-up, empty main) to isolate their cost. */
#include "kws_frontend.h"
#include "kws_recognizer.h"
#include "kws_ring.h"

static kws_audio_ring_t s_audio;
static kws_frontend_t s_frontend;
static kws_feature_ring_t s_features;
static kws_recognizer_t s_recognizer;
static int16_t s_hop[KWS_HOP_SAMPLES];
static int8_t s_input[KWS_FEATURE_ELEMENTS];
volatile int8_t kws_size_sink;

int main(void) {
    float mfcc[KWS_NUM_COEFFICIENTS];
    int8_t frame[KWS_NUM_COEFFICIENTS];
    kws_recognizer_config_t cfg = kws_recognizer_default_config();
    kws_recognition_t res;
    kws_audio_ring_init(&s_audio);
    kws_feature_ring_init(&s_features);
    kws_recognizer_init(&s_recognizer, &cfg);
    kws_frontend_init(&s_frontend);
    kws_audio_ring_write(&s_audio, s_hop, KWS_HOP_SAMPLES);
    while (kws_audio_ring_read(&s_audio, s_hop, KWS_HOP_SAMPLES)) {
        if (kws_frontend_push_hop(&s_frontend, s_hop, mfcc)) {
            kws_quantize_n(mfcc, frame, KWS_NUM_COEFFICIENTS, KWS_INPUT_SCALE, KWS_INPUT_ZERO_POINT);
            kws_feature_ring_push(&s_features, frame);
        }
    }
    kws_feature_ring_copy(&s_features, s_input);
    kws_recognizer_process(&s_recognizer, s_input, 0, &res);
    kws_size_sink = (int8_t)(res.label + s_input[0] + kws_feature_ring_full(&s_features));
    return 0;
}
