/* kws_stream RECORDING.wav
   The whole firmware app (kws_setup / kws_loop: audio ring, frontend, feature ring, model, recognizer) over a long
   recording on the host, fed one hop at a time as a microphone would, so the ring never overruns. Prints one line
   "TIME_MS LABEL_INDEX SCORE_Q IS_NEW" per inference (what kws_platform_respond received), then "dropped N".
   Linked with a model backend: the generated engine (kws_net.c) or the host stub. Settings (window, threshold,
   period) are the generated kws_settings.h. Used by tests/test_streameval_c.py to check kws.stream against C.
   The same file runs in QEMU (mps2-an386, semihosting: the wav is read from the host, lines go to its stdout),
   built with -DKWS_STREAM_MAX_SECONDS small enough for the emulated RAM (kws.streamdevice.build_stream_image). */
#include <stdio.h>
#include <stdlib.h>

#include "kws_app.h"
#include "kws_platform_host.h"
#include "kws_settings.h"
#include "kws_wav.h"

#ifndef KWS_STREAM_MAX_SECONDS
#define KWS_STREAM_MAX_SECONDS 3600L
#endif

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: kws_stream RECORDING.wav\n");
        return 2;
    }
    const long max_samples = KWS_STREAM_MAX_SECONDS * KWS_SAMPLE_RATE_HZ;
    int16_t *pcm = malloc((size_t)max_samples * sizeof *pcm); /* host tool only: the device code has no heap */
    if (!pcm) return 2;
    const long n = kws_wav_read(argv[1], pcm, max_samples);
    if (n < 0) return 2;
    if (kws_setup() != 0) return 3;
    uint32_t printed = 0;
    for (long at = 0; at + KWS_HOP_SAMPLES <= n; at += KWS_HOP_SAMPLES) {
        kws_platform_host_push(&pcm[at], KWS_HOP_SAMPLES);
        if (kws_loop() < 0) return 4;
        /* The host platform keeps KWS_HOST_MAX_RESPONSES; print as they come and restart its record. */
        const uint32_t count = kws_platform_host_response_count();
        const kws_host_response_t *r = kws_platform_host_responses();
        for (; printed < count; ++printed)
            printf("%lu %ld %ld %d\n", (unsigned long)r[printed].time_ms, (long)r[printed].label,
                   (long)r[printed].score_q, r[printed].is_new);
        if (count >= KWS_HOST_MAX_RESPONSES / 2) {
            kws_platform_host_reset_responses();
            printed = 0;
        }
    }
    printf("dropped %lu\n", (unsigned long)kws_app_dropped_samples());
    free(pcm);
    return 0;
}
