/* Radix-2 real FFT: an N/2-point complex FFT of the even/odd samples packed as z[n] = x[2n] + i x[2n+1], then
   the split step X[k] = (Z[k] + Z*[M-k]) / 2 - i W^k (Z[k] - Z*[M-k]) / 2, W = exp(-2 pi i / N), M = N / 2
   (the textbook "two real FFTs for the price of one" identity). Twiddles come from the generated table. */
#include "kws_fft.h"

#ifdef KWS_USE_CMSIS_DSP
#include "arm_math.h"

static arm_rfft_fast_instance_f32 s_rfft;

int kws_rfft_init(void) { return arm_rfft_fast_init_f32(&s_rfft, KWS_FFT_SIZE) == ARM_MATH_SUCCESS ? 0 : -1; }

void kws_rfft(float *in, float *out) { arm_rfft_fast_f32(&s_rfft, in, out, 0); }

#else
#include <stdint.h>

#include "kws_tables.h"

#define KWS_FFT_HALF (KWS_FFT_SIZE / 2)

int kws_rfft_init(void) { return (KWS_FFT_SIZE >= 4 && (KWS_FFT_SIZE & (KWS_FFT_SIZE - 1)) == 0) ? 0 : -1; }

/* In-place iterative decimation-in-time complex FFT of M = N/2 interleaved (re, im) points.
   W_M^j = W_N^(2j): the N-point table serves with stride 2. */
static void complex_fft_half(float *z) {
    const uint32_t m = KWS_FFT_HALF;
    uint32_t i, j = 0;
    for (i = 0; i + 1 < m; ++i) { /* bit-reversal permutation */
        uint32_t bit = m >> 1;
        if (i < j) {
            float tr = z[2 * i], ti = z[2 * i + 1];
            z[2 * i] = z[2 * j];
            z[2 * i + 1] = z[2 * j + 1];
            z[2 * j] = tr;
            z[2 * j + 1] = ti;
        }
        while (j & bit) {
            j ^= bit;
            bit >>= 1;
        }
        j |= bit;
    }
    for (uint32_t len = 2; len <= m; len <<= 1) {
        const uint32_t half = len >> 1, stride = 2 * (m / len); /* table index step for W_len^1 = W_N^(N/len) */
        for (uint32_t start = 0; start < m; start += len) {
            for (uint32_t k = 0; k < half; ++k) {
                const float wr = kws_fft_twiddle[2 * (k * stride)], wi = -kws_fft_twiddle[2 * (k * stride) + 1];
                float *a = &z[2 * (start + k)], *b = &z[2 * (start + k + half)];
                const float br = b[0] * wr - b[1] * wi, bi = b[0] * wi + b[1] * wr;
                b[0] = a[0] - br;
                b[1] = a[1] - bi;
                a[0] += br;
                a[1] += bi;
            }
        }
    }
}

void kws_rfft(float *in, float *out) {
    const uint32_t m = KWS_FFT_HALF;
    complex_fft_half(in); /* in[] already holds z[n] = x[2n] + i x[2n+1] interleaved */
    out[0] = in[0] + in[1];
    out[1] = in[0] - in[1];
    for (uint32_t k = 1; k < m; ++k) {
        const float zr = in[2 * k], zi = in[2 * k + 1], cr = in[2 * (m - k)], ci = -in[2 * (m - k) + 1];
        const float er = 0.5f * (zr + cr), ei = 0.5f * (zi + ci); /* even part E[k] */
        const float orr = 0.5f * (zi - ci), oi = -0.5f * (zr - cr); /* odd part O[k] = (Z - Z*) / 2i */
        const float wr = kws_fft_twiddle[2 * k], wi = -kws_fft_twiddle[2 * k + 1];
        out[2 * k] = er + (orr * wr - oi * wi);
        out[2 * k + 1] = ei + (orr * wi + oi * wr);
    }
}
#endif
