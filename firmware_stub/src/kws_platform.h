/* What each board provides (deploy/<platform>/ implements it; host/ has a test double). */
#ifndef KWS_PLATFORM_H
#define KWS_PLATFORM_H

#include <stdint.h>

#include "kws_ring.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Audio provider: starts capturing mono int16 audio at KWS_SAMPLE_RATE_HZ and appends every block it receives to
   ring (kws_audio_ring_write, usually from the microphone interrupt). ring is owned by the app and outlives the
   capture. Returns 0 on success, negative if the microphone cannot be started. */
int kws_platform_audio_start(kws_audio_ring_t *ring);

/* Responder: called after every inference with the recognizer's verdict. label: index into kws_labels (-1 on a
   recognizer error); score_q: average score in output steps above the zero point; is_new: 1 for a detection;
   time_ms: audio time of the newest sample of the input. Must return quickly (it runs in the loop). */
void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new);

/* One line of diagnostics (no newline in msg), e.g. to a serial port. */
void kws_platform_log(const char *msg);

#ifdef __cplusplus
}
#endif

#endif /* KWS_PLATFORM_H */
