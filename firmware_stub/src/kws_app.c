#include "kws_app.h"

#include "kws_frontend.h"
#include "kws_model.h"
#include "kws_platform.h"
#include "kws_recognizer.h"
#include "kws_ring.h"

static kws_audio_ring_t s_audio;
static kws_frontend_t s_frontend;
static kws_feature_ring_t s_features;
static kws_recognizer_t s_recognizer;
static int16_t s_hop[KWS_HOP_SAMPLES];
static int8_t s_input[KWS_FEATURE_ELEMENTS];
static int8_t s_scores[KWS_NUM_LABELS];
static uint32_t s_hops_since_inference;

int kws_setup(void) {
    kws_recognizer_config_t cfg = kws_recognizer_default_config();
    kws_audio_ring_init(&s_audio);
    kws_feature_ring_init(&s_features);
    kws_recognizer_init(&s_recognizer, &cfg);
    s_hops_since_inference = 0;
    if (kws_frontend_init(&s_frontend) != 0) {
        kws_platform_log("kws: FFT setup failed");
        return -1;
    }
    if (kws_model_init() != 0) {
        kws_platform_log("kws: model init failed");
        return -2;
    }
    if (kws_platform_audio_start(&s_audio) != 0) {
        kws_platform_log("kws: audio capture failed to start");
        return -3;
    }
    return 0;
}

int kws_loop(void) {
    int inferences = 0;
    float mfcc[KWS_NUM_COEFFICIENTS];
    int8_t frame[KWS_NUM_COEFFICIENTS];
    while (kws_audio_ring_read(&s_audio, s_hop, KWS_HOP_SAMPLES)) {
        if (!kws_frontend_push_hop(&s_frontend, s_hop, mfcc)) continue;
        kws_quantize_n(mfcc, frame, KWS_NUM_COEFFICIENTS, KWS_INPUT_SCALE, KWS_INPUT_ZERO_POINT);
        kws_feature_ring_push(&s_features, frame);
        if (++s_hops_since_inference < KWS_INFERENCE_PERIOD_HOPS || !kws_feature_ring_full(&s_features)) continue;
        s_hops_since_inference = 0;
        kws_feature_ring_copy(&s_features, s_input);
        if (kws_model_invoke(s_input, s_scores) != 0) return -1;
        /* Audio time of the newest sample of this input, in ms (64-bit: samples * 1000 overflows 32 bits). */
        uint32_t now_ms = (uint32_t)((uint64_t)kws_audio_ring_position(&s_audio) * 1000u / KWS_SAMPLE_RATE_HZ);
        kws_recognition_t res;
        kws_recognizer_process(&s_recognizer, s_scores, now_ms, &res);
        kws_platform_respond(now_ms, res.label, res.score_q, res.is_new);
        inferences++;
    }
    return inferences;
}

uint32_t kws_app_dropped_samples(void) { return s_audio.dropped; }
