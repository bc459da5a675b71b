/* The inner product of every conv, pointwise and FC layer: int8 weights x int16 activations into int32.
   DSP path: per group of 4 reduction indices, 2 weight words, 4 activation words, 4 SXTB16 and 8 SMLAD give
   16 MACs (2 pixels x 2 output channels share each load), the scheme of CMSIS-NN's s8 x s16 kernel. */
#include "kws_nn_internal.h"

#include "kws_nn_arith.h"
#include "kws_nn_simd.h"

void kws_nn_column(const int8_t *x, int32_t n, int32_t k4, int16_t *column) {
    int32_t k = 0;
#if KWS_NN_DSP
    for (; k + 4 <= n; k += 4) {
        const uint32_t v = kws_nn_read32(x + k);
        const uint32_t even = kws_sxtb16(v), odd = kws_sxtb16(kws_ror8(v));
        memcpy(column + k, &even, 4);
        memcpy(column + k + 2, &odd, 4);
    }
#endif
    for (; k < n; ++k) column[kws_nn_slot(k)] = x[k];
    for (; k < k4; ++k) column[kws_nn_slot(k)] = 0;
}

void kws_nn_dot_2x2(const int16_t *c0, const int16_t *c1, const int8_t *rows, int32_t groups, const int32_t *bias,
                    int32_t acc[4]) {
    int32_t a00 = bias[0], a01 = bias[1], a10 = bias[0], a11 = bias[1];
#if KWS_NN_DSP
    const uint32_t *x0 = (const uint32_t *)(const void *)c0, *x1 = (const uint32_t *)(const void *)c1;
    const uint32_t *w = (const uint32_t *)(const void *)rows;
    for (int32_t g = 0; g < groups; ++g) {
        const uint32_t x0e = x0[0], x0o = x0[1], x1e = x1[0], x1o = x1[1];
        const uint32_t w0 = w[0], w1 = w[1];
        x0 += 2;
        x1 += 2;
        w += 2;
        uint32_t we = kws_sxtb16(w0), wo = kws_sxtb16(kws_ror8(w0));
        a00 = kws_smlad(we, x0e, a00);
        a00 = kws_smlad(wo, x0o, a00);
        a10 = kws_smlad(we, x1e, a10);
        a10 = kws_smlad(wo, x1o, a10);
        we = kws_sxtb16(w1);
        wo = kws_sxtb16(kws_ror8(w1));
        a01 = kws_smlad(we, x0e, a01);
        a01 = kws_smlad(wo, x0o, a01);
        a11 = kws_smlad(we, x1e, a11);
        a11 = kws_smlad(wo, x1o, a11);
    }
#else
    for (int32_t g = 0; g < groups; ++g) {
        const int8_t *w0 = rows + 8 * g, *w1 = w0 + 4;
        const int16_t *x0 = c0 + 4 * g, *x1 = c1 + 4 * g;
        for (int32_t j = 0; j < 4; ++j) {
            const int32_t s = kws_nn_slot(j);
            a00 += w0[j] * x0[s];
            a01 += w1[j] * x0[s];
            a10 += w0[j] * x1[s];
            a11 += w1[j] * x1[s];
        }
    }
#endif
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
