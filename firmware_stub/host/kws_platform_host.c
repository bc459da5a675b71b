#include "kws_platform_host.h"

#include <stdio.h>

static kws_audio_ring_t *s_ring;
static kws_host_response_t s_responses[KWS_HOST_MAX_RESPONSES];
static uint32_t s_count;

int kws_platform_audio_start(kws_audio_ring_t *ring) {
    s_ring = ring;
    s_count = 0;
    return 0;
}

void kws_platform_host_push(const int16_t *samples, uint32_t n) {
    if (s_ring) kws_audio_ring_write(s_ring, samples, n);
}

void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new) {
    if (s_count < KWS_HOST_MAX_RESPONSES) {
        kws_host_response_t r = {time_ms, label, score_q, is_new};
        s_responses[s_count++] = r;
    }
}

void kws_platform_log(const char *msg) { fprintf(stderr, "%s\n", msg); }

uint32_t kws_platform_host_response_count(void) { return s_count; }

void kws_platform_host_reset_responses(void) { s_count = 0; }

const kws_host_response_t *kws_platform_host_responses(void) { return s_responses; }
