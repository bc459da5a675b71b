/* The MFCC recipe of kws.frontend.compute_mfcc in float32 (the Python reference accumulates in float64; the
   difference moves a quantized feature by at most one step, measured by tests/test_firmware.py). */
#include "kws_frontend.h"

#include <math.h>
#include <string.h>

#include "kws_fft.h"
#include "kws_tables.h"

#if KWS_WINDOW_SAMPLES > KWS_FFT_SIZE || KWS_HOP_SAMPLES > KWS_WINDOW_SAMPLES
#error "kws_settings.h: need hop <= window <= FFT size"
#endif

#define KWS_HISTORY (KWS_WINDOW_SAMPLES - KWS_HOP_SAMPLES)

int kws_frontend_init(kws_frontend_t *fe) {
    memset(fe, 0, sizeof(*fe));
    return kws_rfft_init();
}

void kws_frontend_compute(kws_frontend_t *fe, const int16_t *window, float *mfcc) {
    float log_mel[KWS_NUM_MEL_BINS];
    float *x = fe->fft_in, *spec = fe->fft_out;
    for (int n = 0; n < KWS_WINDOW_SAMPLES; ++n) {
        x[n] = ((float)window[n] * (1.0f / 32768.0f)) * kws_window[n];
    }
    for (int n = KWS_WINDOW_SAMPLES; n < KWS_FFT_SIZE; ++n) x[n] = 0.0f; /* zero padding to the FFT size */
    kws_rfft(x, spec);
    /* Power |X[k]|^2 into x[0..N/2] (x is free after the FFT): packed order puts DC and Nyquist in spec[0..1]. */
    x[0] = spec[0] * spec[0];
    x[KWS_FFT_SIZE / 2] = spec[1] * spec[1];
    for (int k = 1; k < KWS_FFT_SIZE / 2; ++k) x[k] = spec[2 * k] * spec[2 * k] + spec[2 * k + 1] * spec[2 * k + 1];
    for (int m = 0; m < KWS_NUM_MEL_BINS; ++m) {
        const float *w = &kws_mel_weights[kws_mel_offset[m]];
        const float *p = &x[kws_mel_start[m]];
        float e = 0.0f;
        for (int j = 0; j < kws_mel_count[m]; ++j) e += w[j] * p[j];
        log_mel[m] = logf(e + KWS_LOG_OFFSET); /* e >= 0, so the argument is >= the offset: always finite */
    }
    for (int c = 0; c < KWS_NUM_COEFFICIENTS; ++c) {
        const float *d = &kws_dct[c * KWS_NUM_MEL_BINS];
        float acc = 0.0f;
        for (int m = 0; m < KWS_NUM_MEL_BINS; ++m) acc += d[m] * log_mel[m];
        mfcc[c] = acc;
    }
}

int kws_frontend_push_hop(kws_frontend_t *fe, const int16_t *hop, float *mfcc) {
    int16_t window[KWS_WINDOW_SAMPLES];
    memcpy(window, fe->history, sizeof(fe->history));
    memcpy(&window[KWS_HISTORY], hop, KWS_HOP_SAMPLES * sizeof(int16_t));
    memcpy(fe->history, &window[KWS_HOP_SAMPLES], sizeof(fe->history));
    fe->samples_seen += KWS_HOP_SAMPLES;
    if (fe->samples_seen < KWS_WINDOW_SAMPLES) return 0;
    fe->samples_seen = KWS_WINDOW_SAMPLES;
    kws_frontend_compute(fe, window, mfcc);
    return 1;
}

int8_t kws_quantize(float x, float scale, int32_t zero_point) {
    const float v = x / scale;
    if (!(v == v)) return (int8_t)(zero_point < -128 ? -128 : zero_point > 127 ? 127 : zero_point);
    if (v >= 256.0f) return 127; /* avoids float -> int overflow for huge values */
    if (v <= -256.0f) return -128;
    int32_t q = (int32_t)roundf(v) + zero_point;
    return (int8_t)(q < -128 ? -128 : q > 127 ? 127 : q);
}

void kws_quantize_n(const float *x, int8_t *q, uint32_t n, float scale, int32_t zero_point) {
    for (uint32_t i = 0; i < n; ++i) q[i] = kws_quantize(x[i], scale, zero_point);
}
