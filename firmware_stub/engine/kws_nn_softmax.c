/* SOFTMAX, int8 in, int8 out (scale 1/256, zero point -128), as TFLite's reference quantized Softmax: input
   differences to the row maximum are rescaled to Q5.26, exponentiated with gemmlowp's fixed-point
   exp_on_negative_values, summed in Q12.19, inverted with gemmlowp's Newton-Raphson one_over_one_plus_x, and the
   product rounded down to 8 bits. Fixed-point formats are written Qi.f (i integer bits, f fractional bits). */
#include "kws_nn.h"

#include "kws_nn_arith.h"

#define KWS_INT32_MAX 2147483647

/* x * 2^exponent saturated to int32 (gemmlowp SaturatingRoundingMultiplyByPOT for a positive exponent). */
static int32_t saturating_shift_left(int32_t x, int32_t exponent) {
    const int32_t threshold = (int32_t)((1u << (31 - exponent)) - 1u);
    if (x > threshold) return KWS_INT32_MAX;
    if (x < -threshold) return -KWS_INT32_MAX - 1;
    return (int32_t)((uint32_t)x << exponent);
}

/* exp(a) for a in [-1/4, 0), Q0.31 in and out: Taylor series around -1/8. */
static int32_t exp_quarter(int32_t a) {
    const int32_t x = a + (1 << 28); /* a + 1/8 */
    const int32_t x2 = kws_nn_srdhm(x, x), x3 = kws_nn_srdhm(x2, x), x4 = kws_nn_srdhm(x2, x2);
    const int32_t x4_over_4 = kws_nn_rdbpot(x4, 2);
    const int32_t poly = kws_nn_rdbpot(kws_nn_srdhm(x4_over_4 + x3, 715827883) + x2, 1); /* 715827883 = 1/3 */
    const int32_t e = 1895147668;                                                         /* exp(-1/8) */
    return e + kws_nn_srdhm(e, x + poly);
}

/* exp(a) for a <= 0, a in Q5.26, result Q0.31: exp of a mod 1/4, times exp(-2^k) for each set bit above. */
static int32_t exp_negative(int32_t a) {
    static const int32_t factor[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
    const int32_t quarter = 1 << 24;
    const int32_t rem_minus_quarter = (a & (quarter - 1)) - quarter;
    int32_t result = exp_quarter(saturating_shift_left(rem_minus_quarter, 5));
    const int32_t remainder = rem_minus_quarter - a;
    for (int32_t k = 0; k < 7; ++k) { /* exponents -2 .. 4, bit 26 + exponent */
        if (remainder & (1 << (24 + k))) result = kws_nn_srdhm(result, factor[k]);
    }
    return a == 0 ? KWS_INT32_MAX : result;
}

/* 1 / (1 + x) for x in [0, 1), Q0.31 in and out (three Newton-Raphson steps in Q2.29). */
static int32_t one_over_one_plus(int32_t a) {
    const int64_t sum = (int64_t)a + KWS_INT32_MAX;
    const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
    int32_t x = 1515870810 + kws_nn_srdhm(half_denominator, -1010580540); /* 48/17 - 32/17 d */
    for (int i = 0; i < 3; ++i) {
        const int32_t one_minus = (1 << 29) - kws_nn_srdhm(half_denominator, x);
        x = x + saturating_shift_left(kws_nn_srdhm(x, one_minus), 2);
    }
    return saturating_shift_left(x, 1);
}

static int32_t clz32(uint32_t x) {
    int32_t n = 0;
    if (x == 0) return 32;
    while (!(x & 0x80000000u)) {
        x <<= 1;
        ++n;
    }
    return n;
}

static int32_t rescaled_exp(const kws_nn_softmax_t *p, int32_t diff) {
    const int32_t scaled = kws_nn_srdhm((int32_t)((uint32_t)diff << p->input_left_shift), p->input_multiplier);
    return exp_negative(scaled);
}

void kws_nn_softmax(const kws_nn_softmax_t *p, const int8_t *in, int8_t *out) {
    for (int32_t r = 0; r < p->rows; ++r, in += p->depth, out += p->depth) {
        int32_t max = -128, sum = 0; /* sum of exps in Q12.19 */
        for (int32_t c = 0; c < p->depth; ++c) max = in[c] > max ? in[c] : max;
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max;
            if (diff >= p->diff_min) sum += kws_nn_rdbpot(rescaled_exp(p, diff), 12);
        }
        const int32_t headroom = clz32((uint32_t)sum);
        const int32_t bits_over_unit = 12 - headroom;
        const int32_t shifted = (int32_t)(((uint32_t)sum << headroom) - (1u << 31));
        const int32_t scale = one_over_one_plus(shifted);
        const int32_t exponent = bits_over_unit + 31 - 8;
        for (int32_t c = 0; c < p->depth; ++c) {
            const int32_t diff = in[c] - max;
            int32_t q = -128;
            if (diff >= p->diff_min) {
                q = kws_nn_rdbpot(kws_nn_srdhm(scale, rescaled_exp(p, diff)), exponent) - 128;
                q = q > 127 ? 127 : q;
            }
            out[c] = (int8_t)q;
        }
    }
}
