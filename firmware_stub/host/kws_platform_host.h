/* HOST test double of the platform (kws_platform.h): audio comes from the test, responses are recorded. */
#ifndef KWS_PLATFORM_HOST_H
#define KWS_PLATFORM_HOST_H

#include <stdint.h>

#include "kws_platform.h"

#define KWS_HOST_MAX_RESPONSES 4096

typedef struct {
    uint32_t time_ms;
    int32_t label;
    int32_t score_q;
    int is_new;
} kws_host_response_t;

/* Feeds n samples to the ring given to kws_platform_audio_start (as the microphone interrupt would). */
void kws_platform_host_push(const int16_t *samples, uint32_t n);

/* Responses recorded since the last kws_platform_audio_start (at most KWS_HOST_MAX_RESPONSES kept). */
uint32_t kws_platform_host_response_count(void);
const kws_host_response_t *kws_platform_host_responses(void);

/* Forgets the recorded responses (a long run prints them and starts over; the audio ring is untouched). */
void kws_platform_host_reset_responses(void);

#endif /* KWS_PLATFORM_HOST_H */
