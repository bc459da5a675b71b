/* Fixed-size rings, no heap: the audio ring between the microphone interrupt and the main loop, and the ring of
   the last KWS_NUM_FRAMES quantized feature frames that forms the model input. Capacities are generated. */
#ifndef KWS_RING_H
#define KWS_RING_H

#include <stdint.h>

#include "kws_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

#if (KWS_AUDIO_RING_SAMPLES & (KWS_AUDIO_RING_SAMPLES - 1)) != 0
#error "kws_settings.h: KWS_AUDIO_RING_SAMPLES must be a power of two"
#endif

/* Single-producer (interrupt) / single-consumer (loop) int16 ring. Counters are free-running sample counts;
   the writer only advances `written`, the reader only `read`, so no lock is needed on a single core as long as
   32-bit loads/stores are atomic (true on Cortex-M). Caller-owned, static storage. */
typedef struct {
    int16_t samples[KWS_AUDIO_RING_SAMPLES];
    volatile uint32_t written; /* samples ever written */
    uint32_t read;             /* samples ever consumed */
    uint32_t dropped;          /* samples the reader lost because the writer lapped it */
} kws_audio_ring_t;

/* Empties the ring. */
void kws_audio_ring_init(kws_audio_ring_t *r);

/* Producer side (interrupt context is fine): appends n samples, overwriting the oldest unread ones when full. */
void kws_audio_ring_write(kws_audio_ring_t *r, const int16_t *samples, uint32_t n);

/* Consumer side: if at least n samples are unread, copies the oldest n into dst (caller-owned) and returns 1;
   returns 0 and copies nothing otherwise. If the writer lapped the reader, skips to the oldest sample still held
   and adds the skipped count to r->dropped (the stream then has a gap; timestamps stay in audio time). */
int kws_audio_ring_read(kws_audio_ring_t *r, int16_t *dst, uint32_t n);

/* Audio time of the next sample the reader will return, in samples since kws_audio_ring_init. */
uint32_t kws_audio_ring_position(const kws_audio_ring_t *r);

/* The last KWS_NUM_FRAMES int8 frames of KWS_NUM_COEFFICIENTS each. Caller-owned, static storage. */
typedef struct {
    int8_t frames[KWS_NUM_FRAMES][KWS_NUM_COEFFICIENTS];
    uint32_t next;  /* slot the next frame goes to */
    uint32_t count; /* frames held, at most KWS_NUM_FRAMES */
} kws_feature_ring_t;

/* Empties the ring. */
void kws_feature_ring_init(kws_feature_ring_t *r);

/* Appends one frame frame[KWS_NUM_COEFFICIENTS] (copied), dropping the oldest when full. */
void kws_feature_ring_push(kws_feature_ring_t *r, const int8_t *frame);

/* 1 when KWS_NUM_FRAMES frames are held (a full model input), else 0. */
int kws_feature_ring_full(const kws_feature_ring_t *r);

/* Copies the held frames oldest first, frame-major, into out[KWS_FEATURE_ELEMENTS] (the model input layout);
   returns the number of frames copied. */
uint32_t kws_feature_ring_copy(const kws_feature_ring_t *r, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KWS_RING_H */
