/* Elementwise int8 ops: table lookup (LOGISTIC, whose TFLite reference kernel is this very lookup of a table built
   in float at Prepare, and activations tabulated at export), MUL (reference MulElementwise) and HARD_SWISH
   (reference HardSwish in int16 fixed point). All may run in place. */
#include "kws_nn.h"

#include "kws_nn_arith.h"

/* 4 values per word read and written (little-endian, as every Cortex-M build and x86 / Arm host); the table
   centred on 0 is indexed by the signed byte itself. */
void kws_nn_lut(const int8_t *table, const int8_t *in, int8_t *out, int32_t n) {
    const int8_t *t = table + 128;
    int32_t i = 0;
    for (; i + 4 <= n; i += 4) {
        const uint32_t v = kws_nn_read32(in + i);
        const uint32_t r = (uint32_t)(uint8_t)t[(int8_t)v] | (uint32_t)(uint8_t)t[(int8_t)(v >> 8)] << 8 |
                           (uint32_t)(uint8_t)t[(int8_t)(v >> 16)] << 16 | (uint32_t)(uint8_t)t[(int8_t)(v >> 24)] << 24;
        memcpy(out + i, &r, sizeof r);
    }
    for (; i < n; ++i) out[i] = t[in[i]];
}

void kws_nn_mul(const kws_nn_mul_t *p, const int8_t *in1, const int8_t *in2, int8_t *out) {
    for (int32_t i = 0; i < p->n; ++i) {
        const int32_t prod = (in1[i] - p->in1_zero_point) * (in2[i] - p->in2_zero_point);
        out[i] = kws_nn_clamp8(p->out_zero_point + kws_nn_requantize(prod, p->multiplier, p->shift), p->act_min,
                               p->act_max);
    }
}

/* gemmlowp SaturatingRoundingDoublingHighMul on int16. */
static int16_t srdhm16(int16_t a, int16_t b) {
    if (a == b && a == -32768) return 32767;
    const int32_t ab = (int32_t)a * b;
    const int32_t nudge = ab >= 0 ? (1 << 14) : 1 - (1 << 14);
    return (int16_t)((ab + nudge) / (1 << 15));
}

static int16_t saturating_left16(int16_t x, int32_t amount) {
    const int32_t v = (int32_t)x * (1 << amount);
    return (int16_t)(v > 32767 ? 32767 : (v < -32768 ? -32768 : v));
}

static int8_t hard_swish_one(const kws_nn_hard_swish_t *p, int8_t x) {
    const int16_t hires = (int16_t)((int16_t)(x - p->in_zero_point) * 128);
    const int16_t preshift = srdhm16(hires, (int16_t)p->output_multiplier);
    int16_t reluish = hires;
    if (p->reluish_exponent > 0) reluish = saturating_left16(reluish, p->reluish_exponent - 1);
    reluish = srdhm16(reluish, (int16_t)p->reluish_multiplier);
    if (p->reluish_exponent > 0) reluish = saturating_left16(reluish, 1);
    if (p->reluish_exponent < 0) reluish = (int16_t)kws_nn_rdbpot(reluish, -p->reluish_exponent);
    reluish = (int16_t)((reluish + (1 << 15)) >> 1); /* [-1, 1] -> [0, 1] */
    /* SaturatingDoublingHighMul: the product / 2^15, truncated (no rounding nudge) */
    const int16_t product = (reluish == preshift && reluish == -32768) ? 32767
                                                                        : (int16_t)(((int32_t)reluish * preshift) / (1 << 15));
    const int32_t y = (int16_t)kws_nn_rdbpot(product, -p->output_exponent) + p->out_zero_point;
    return kws_nn_clamp8((int16_t)y, -128, 127);
}

void kws_nn_hard_swish(const kws_nn_hard_swish_t *p, const int8_t *in, int8_t *out) {
    for (int32_t i = 0; i < p->n; ++i) out[i] = hard_swish_one(p, in[i]);
}
