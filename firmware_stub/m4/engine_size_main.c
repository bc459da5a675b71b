/* Size probe of the whole app with the generated engine (kws_setup / kws_loop, frontend, rings, recognizer,
   kws_net.c, the kernels): linked like base_main.c (same start-up, nano specs, no semihosting), so that the
   difference of the two images is the application's flash and static RAM, without any platform printing. */
#include "kws_app.h"
#include "kws_platform.h"

static kws_audio_ring_t *s_ring;
volatile int kws_size_sink;

int kws_platform_audio_start(kws_audio_ring_t *ring) {
    s_ring = ring;
    return 0;
}
void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new) {
    kws_size_sink = (int)(time_ms + (uint32_t)label + (uint32_t)score_q + (uint32_t)is_new);
}
void kws_platform_log(const char *msg) { kws_size_sink = msg[0]; }

int main(void) {
    static const int16_t hop[KWS_HOP_SAMPLES];
    if (kws_setup() != 0) return 1;
    for (;;) {
        kws_audio_ring_write(s_ring, hop, KWS_HOP_SAMPLES);
        kws_size_sink = kws_loop();
    }
}
