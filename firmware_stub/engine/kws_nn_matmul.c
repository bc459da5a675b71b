/* The inner product of every conv, pointwise and FC layer: int8 weights x int16 activations into int32.
   DSP path: per group of 4 reduction indices, 2 weight words, 4 activation words, 4 SXTB16 and 8 SMLAD give
   16 MACs (2 pixels x 2 output channels share each load), the blocking of CMSIS-NN's s8 x s16 kernel; on Arm
   it is written in assembly so that the loop keeps all 4 accumulators and 4 activations in registers and folds
   the byte rotation into SXTB16 (the compiler spills and rotates separately: 34 instead of 20 instructions). */
#include "kws_nn_internal.h"

#include "kws_nn_arith.h"
#include "kws_nn_simd.h"

void kws_nn_column(const int8_t *x, int32_t n, int32_t k4, int16_t *pair, int32_t pixel) {
    int32_t k = 0;
#if KWS_NN_DSP
    for (; k + 4 <= n; k += 4) {
        const uint32_t v = kws_nn_read32(x + k);
        const uint32_t words[2] = {kws_sxtb16(v), kws_sxtb16(kws_ror8(v))};
        memcpy(pair + kws_nn_index(k, pixel), words, sizeof words);
    }
#endif
    for (; k < n; ++k) pair[kws_nn_index(k, pixel)] = x[k];
    for (; k < k4; ++k) pair[kws_nn_index(k, pixel)] = 0;
}

#if KWS_NN_DSP && defined(__ARM_FEATURE_DSP)
void kws_nn_dot_2x2(const int16_t *pair, const int8_t *rows, int32_t groups, const int32_t *bias, int32_t acc[4]) {
    /* fixed registers: LDM fills ascending register numbers from ascending addresses */
    register int32_t a00 __asm__("r0") = bias[0];
    register int32_t a01 __asm__("r1") = bias[1];
    register int32_t a10 __asm__("r9") = bias[0];
    register int32_t a11 __asm__("r10") = bias[1];
    register const uint32_t *x __asm__("r11") = (const uint32_t *)(const void *)pair;
    register const uint32_t *w __asm__("r12") = (const uint32_t *)(const void *)rows;
    register int32_t n __asm__("lr") = groups;
    register uint32_t x0e __asm__("r2"), x0o __asm__("r3"), x1e __asm__("r4"), x1o __asm__("r5");
    register uint32_t w0 __asm__("r6"), w1 __asm__("r7"), t __asm__("r8");
    __asm volatile(
        "1:\n"
        "ldmia %[x]!, {%[x0e], %[x0o], %[x1e], %[x1o]}\n"
        "ldmia %[w]!, {%[w0], %[w1]}\n"
        "sxtb16 %[t], %[w0]\n"
        "sxtb16 %[w0], %[w0], ror #8\n"
        "smlad %[a00], %[t], %[x0e], %[a00]\n"
        "smlad %[a10], %[t], %[x1e], %[a10]\n"
        "smlad %[a00], %[w0], %[x0o], %[a00]\n"
        "smlad %[a10], %[w0], %[x1o], %[a10]\n"
        "sxtb16 %[t], %[w1]\n"
        "sxtb16 %[w1], %[w1], ror #8\n"
        "smlad %[a01], %[t], %[x0e], %[a01]\n"
        "smlad %[a11], %[t], %[x1e], %[a11]\n"
        "smlad %[a01], %[w1], %[x0o], %[a01]\n"
        "smlad %[a11], %[w1], %[x1o], %[a11]\n"
        "subs %[n], %[n], #1\n"
        "bne 1b\n"
        : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [x] "+r"(x), [w] "+r"(w),
          [n] "+r"(n), [x0e] "=&r"(x0e), [x0o] "=&r"(x0o), [x1e] "=&r"(x1e), [x1o] "=&r"(x1o), [w0] "=&r"(w0),
          [w1] "=&r"(w1), [t] "=&r"(t)
        :
        : "cc", "memory");
    acc[0] = a00;
    acc[1] = a01;
    acc[2] = a10;
    acc[3] = a11;
}
#else
void kws_nn_dot_2x2(const int16_t *pair, const int8_t *rows, int32_t groups, const int32_t *bias, int32_t acc[4]) {
    int32_t a00 = bias[0], a01 = bias[1], a10 = bias[0], a11 = bias[1];
#if KWS_NN_DSP
    const uint32_t *x = (const uint32_t *)(const void *)pair;
    const uint32_t *w = (const uint32_t *)(const void *)rows;
    for (int32_t g = 0; g < groups; ++g, x += 4, w += 2) {
        uint32_t we = kws_sxtb16(w[0]), wo = kws_sxtb16(kws_ror8(w[0]));
        a00 = kws_smlad(wo, x[1], kws_smlad(we, x[0], a00));
        a10 = kws_smlad(wo, x[3], kws_smlad(we, x[2], a10));
        we = kws_sxtb16(w[1]);
        wo = kws_sxtb16(kws_ror8(w[1]));
        a01 = kws_smlad(wo, x[1], kws_smlad(we, x[0], a01));
        a11 = kws_smlad(wo, x[3], kws_smlad(we, x[2], a11));
    }
#else
    for (int32_t g = 0; g < groups; ++g) {
        const int8_t *w0 = rows + 8 * g, *w1 = w0 + 4;
        const int16_t *x0 = pair + 8 * g, *x1 = x0 + 4;
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
#endif
