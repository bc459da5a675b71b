/* Streaming MFCC frontend: int16 audio in, one MFCC frame per hop out, bit-for-bit the recipe of kws.frontend
   (periodic Hann, real FFT, power, sparse HTK mel filterbank, ln(E + offset), orthonormal DCT-II), in float32.
   All tables and sizes come from the generated kws_tables.h / kws_settings.h. No heap: the state is caller-owned. */
#ifndef KWS_FRONTEND_H
#define KWS_FRONTEND_H

#include <stdint.h>

#include "kws_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One stream's state: the last (window - hop) samples and the FFT scratch. About 8.7 KB for the defaults.
   Owned by the caller (static storage on the device); not shared between threads. */
typedef struct {
    int16_t history[KWS_WINDOW_SAMPLES - KWS_HOP_SAMPLES];
    uint32_t samples_seen; /* saturates at KWS_WINDOW_SAMPLES: only "is the window full" matters */
    float fft_in[KWS_FFT_SIZE];
    float fft_out[KWS_FFT_SIZE];
} kws_frontend_t;

/* Resets fe to an empty stream and prepares the FFT. Returns 0, or -1 if the FFT cannot be set up. */
int kws_frontend_init(kws_frontend_t *fe);

/* Appends one hop (KWS_HOP_SAMPLES int16 samples at KWS_SAMPLE_RATE_HZ, read only) to the stream. Once a full
   window has been seen, writes the MFCCs of the newest window (the last KWS_WINDOW_SAMPLES samples) into
   mfcc[KWS_NUM_COEFFICIENTS] and returns 1; returns 0 (mfcc untouched) before that. One frame costs one
   KWS_FFT_SIZE real FFT plus ~KWS_MEL_WEIGHT_COUNT + KWS_NUM_MEL_BINS * (KWS_NUM_COEFFICIENTS + 1) flops and
   KWS_NUM_MEL_BINS logf() calls; it must finish within one hop (20 ms) on the device. */
int kws_frontend_push_hop(kws_frontend_t *fe, const int16_t *hop, float *mfcc);

/* Stateless core: MFCCs of one full window window[KWS_WINDOW_SAMPLES] into mfcc[KWS_NUM_COEFFICIENTS],
   using fe only as scratch (its stream state is untouched). Audio is scaled to [-1, 1) as sample / 32768. */
void kws_frontend_compute(kws_frontend_t *fe, const int16_t *window, float *mfcc);

/* TFLite affine int8 quantization, q = round(x / scale) + zero_point clipped to [-128, 127]; rounds half away
   from zero like kws.frontend.quantize_features. NaN maps to zero_point (never happens for finite audio). */
int8_t kws_quantize(float x, float scale, int32_t zero_point);

/* Quantizes n values of x into q with kws_quantize (caller-owned arrays, may not overlap). */
void kws_quantize_n(const float *x, int8_t *q, uint32_t n, float scale, int32_t zero_point);

#ifdef __cplusplus
}
#endif

#endif /* KWS_FRONTEND_H */
