/* TFLite's int8 requantization arithmetic (gemmlowp semantics, double rounding), as inline C99.
   MultiplyByQuantizedMultiplier(x, m, s) = RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x * 2^max(s,0),
   m), max(-s,0)), with m a Q31 mantissa in [2^30, 2^31) computed at export (kws/engine/quant.py).
   KWS_NN_MUTATE_ROUNDING (tests only) breaks the tie rule of RoundingDivideByPOT, so that the bit-exactness test
   can show it notices a wrong rounding step. */
#ifndef KWS_NN_ARITH_H
#define KWS_NN_ARITH_H

#include <stdint.h>
#include <string.h>

/* x / 2^exponent rounded to nearest, halves away from zero (gemmlowp RoundingDivideByPOT); 0 <= exponent <= 31. */
static inline int32_t kws_nn_rdbpot(int32_t x, int32_t exponent) {
    const int32_t mask = (int32_t)((1u << exponent) - 1u);
    const int32_t remainder = x & mask;
#ifdef KWS_NN_MUTATE_ROUNDING
    const int32_t threshold = (mask >> 1) + (x >= 0); /* ties toward zero instead of away */
#else
    const int32_t threshold = (mask >> 1) + (x < 0);
#endif
    return (x >> exponent) + (remainder > threshold);
}

/* round(a * b / 2^31) with ties toward +infinity. gemmlowp adds a sign-dependent nudge (2^30 or 1 - 2^30) and
   divides truncating toward zero; for every product both give this same value, and the saturating case
   a == b == INT32_MIN cannot occur because every multiplier here is positive. */
static inline int32_t kws_nn_srdhm(int32_t a, int32_t b) {
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 30)) >> 31);
}

/* TFLite MultiplyByQuantizedMultiplier(acc, mult, shift): shift > 0 scales up first, shift < 0 rounds down after. */
static inline int32_t kws_nn_requantize(int32_t acc, int32_t mult, int32_t shift) {
    const int32_t left = shift > 0 ? shift : 0;
    const int32_t right = shift > 0 ? 0 : -shift;
    return kws_nn_rdbpot(kws_nn_srdhm((int32_t)((uint32_t)acc << left), mult), right);
}

/* round(a * b / 2^32) with ties toward +infinity: SMMULR (DSP extension). */
static inline int32_t kws_nn_smmulr(int32_t a, int32_t b) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    int32_t r;
    __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
    return r;
#else
    return (int32_t)(((int64_t)a * b + ((int64_t)1 << 31)) >> 32);
#endif
}

/* kws_nn_requantize(acc, mult, shift) + out_zero_point in 5 instructions, for |acc| < 2^30 and 1 <= e <= 21
   (e = -shift; the generator checks both per layer). SaturatingRoundingDoublingHighMul is SMMULR of 2 * acc (no
   overflow below 2^30); round = 2^(e-1) + (out_zero_point << e), computed at export, adds the rounding half and
   the zero point in one step ((v >> e) + zp == (v + (zp << e)) >> e exactly); v >> 31 turns ties away from zero
   for negative v. |v| < 2^30 and |round| < 2^29 (e <= 21), so the sum cannot overflow. */
static inline int32_t kws_nn_requantize_zp(int32_t acc, int32_t mult, int32_t round, int32_t e) {
    const int32_t v = kws_nn_smmulr((int32_t)((uint32_t)acc << 1), mult);
#ifdef KWS_NN_MUTATE_ROUNDING
    return (v + round - (v >= 0)) >> e;
#else
    return (v + round + (v >> 31)) >> e;
#endif
}

/* x clamped to [lo, hi], a sub-range of int8, so that storing it into an int8_t is exact (an int32 result: the
   store truncates for free, a cast to int8_t would cost a sign extension first). */
static inline int32_t kws_nn_clamp8(int32_t x, int32_t lo, int32_t hi) {
    x = x < lo ? lo : x;
    return x > hi ? hi : x;
}

/* 4 bytes from any address (the compiler emits one LDR where the core allows unaligned loads). */
static inline uint32_t kws_nn_read32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif /* KWS_NN_ARITH_H */
