#include "kws_ring.h"

#include <string.h>

#define KWS_AUDIO_MASK (KWS_AUDIO_RING_SAMPLES - 1u)

void kws_audio_ring_init(kws_audio_ring_t *r) { memset(r, 0, sizeof(*r)); }

void kws_audio_ring_write(kws_audio_ring_t *r, const int16_t *samples, uint32_t n) {
    uint32_t w = r->written;
    for (uint32_t i = 0; i < n; ++i, ++w) r->samples[w & KWS_AUDIO_MASK] = samples[i];
    r->written = w; /* publish after the data (single 32-bit store) */
}

int kws_audio_ring_read(kws_audio_ring_t *r, int16_t *dst, uint32_t n) {
    uint32_t w = r->written;
    if (w - r->read > KWS_AUDIO_RING_SAMPLES) { /* lapped: the oldest held sample is w - capacity */
        r->dropped += (w - KWS_AUDIO_RING_SAMPLES) - r->read;
        r->read = w - KWS_AUDIO_RING_SAMPLES;
    }
    if (w - r->read < n) return 0;
    for (uint32_t i = 0; i < n; ++i) dst[i] = r->samples[(r->read + i) & KWS_AUDIO_MASK];
    r->read += n;
    return 1;
}

uint32_t kws_audio_ring_position(const kws_audio_ring_t *r) { return r->read; }

void kws_feature_ring_init(kws_feature_ring_t *r) { memset(r, 0, sizeof(*r)); }

void kws_feature_ring_push(kws_feature_ring_t *r, const int8_t *frame) {
    memcpy(r->frames[r->next], frame, KWS_NUM_COEFFICIENTS);
    r->next = (r->next + 1) % KWS_NUM_FRAMES;
    if (r->count < KWS_NUM_FRAMES) r->count++;
}

int kws_feature_ring_full(const kws_feature_ring_t *r) { return r->count == KWS_NUM_FRAMES; }

uint32_t kws_feature_ring_copy(const kws_feature_ring_t *r, int8_t *out) {
    uint32_t first = (r->next + KWS_NUM_FRAMES - r->count) % KWS_NUM_FRAMES;
    for (uint32_t i = 0; i < r->count; ++i) {
        memcpy(&out[i * KWS_NUM_COEFFICIENTS], r->frames[(first + i) % KWS_NUM_FRAMES], KWS_NUM_COEFFICIENTS);
    }
    return r->count;
}
