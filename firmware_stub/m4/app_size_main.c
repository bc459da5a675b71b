/* Size probe of the whole app: kws_setup() / kws_loop() (frontend, rings, recognizer) with the model backend it is
   linked with (the generated kws_net.c, or null_model.c), and platform stubs that do nothing. Compared with
   base_main.c (same start-up, empty main), arm-none-eabi-size gives the app's flash and static RAM beyond the
   platform's own (kws.engine.measure). Never run: it only has to link as the board's app does. */
#include "kws_app.h"
#include "kws_platform.h"

volatile int32_t kws_size_sink;

int kws_platform_audio_start(kws_audio_ring_t *ring) {
    (void)ring;
    return 0;
}
void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new) {
    kws_size_sink = (int32_t)time_ms + label + score_q + is_new;
}
void kws_platform_log(const char *msg) { kws_size_sink = msg[0]; }

int main(void) {
    if (kws_setup() != 0) return 1;
    for (;;) {
        if (kws_loop() < 0) return 2;
    }
}
