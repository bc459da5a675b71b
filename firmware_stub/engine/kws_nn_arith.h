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

/* The same value when |acc| < 2^30 and shift <= -1 (the generator checks both per layer and sets `fast`): then
   round-half-away-from-zero division is (v + 2^(e-1) - (v < 0)) >> e, without overflow, in 5 instructions. */
static inline int32_t kws_nn_requantize_fast(int32_t acc, int32_t mult, int32_t shift) {
    const int32_t e = -shift;
    const int32_t v = kws_nn_srdhm(acc, mult);
#ifdef KWS_NN_MUTATE_ROUNDING
    return (v + (1 << (e - 1)) - (v >= 0)) >> e;
#else
    return (v + (1 << (e - 1)) + (v >> 31)) >> e;
#endif
}

static inline int8_t kws_nn_clamp8(int32_t x, int32_t lo, int32_t hi) {
    return (int8_t)(x < lo ? lo : (x > hi ? hi : x));
}

/* 4 bytes from any address (the compiler emits one LDR where the core allows unaligned loads). */
static inline uint32_t kws_nn_read32(const void *p) {
    uint32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

#endif /* KWS_NN_ARITH_H */
