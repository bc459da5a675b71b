/* CONV_2D as TFLite's reference integer kernel computes it (ConvPerChannel): per output channel, the int32 sum of
   filter * (input - input_zero_point) over the taps inside the input, plus bias, requantized per channel, plus the
   output zero point, clamped to the fused activation range. Here the input offset is folded into the bias at
   export and taps outside the input read the input zero point, which contributes exactly 0 as TFLite's skip does. */
#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_internal.h"

static void store_pair(const kws_nn_conv_t *p, const int32_t *acc, int32_t oc, int8_t *o0, int8_t *o1) {
    for (int32_t j = 0; j < 2 && oc + j < p->out_c; ++j) {
        const int32_t m = p->multiplier[oc + j], s = p->shift[oc + j];
        o0[oc + j] = kws_nn_clamp8(kws_nn_requantize(acc[j], m, s) + p->out_zero_point, p->act_min, p->act_max);
        if (o1) o1[oc + j] = kws_nn_clamp8(kws_nn_requantize(acc[2 + j], m, s) + p->out_zero_point, p->act_min, p->act_max);
    }
}

/* Both columns are in scratch: every output channel of pixels o0 (and o1, unless 0). */
static void output_pixels(const kws_nn_conv_t *p, const int16_t *c0, const int16_t *c1, int8_t *o0, int8_t *o1) {
    const int32_t groups = p->k4 >> 2;
    const int8_t *rows = p->weights;
    int32_t acc[4];
    for (int32_t oc = 0; oc < p->out_c; oc += 2) {
        kws_nn_dot_2x2(c0, c1, rows, groups, p->bias + oc, acc);
        store_pair(p, acc, oc, o0, o1);
        rows += 2 * p->k4;
    }
}

/* The receptive field of output pixel (oy, ox) as an int16 column, outside taps at the input zero point. */
static void im2col(const kws_nn_conv_t *p, const int8_t *in, int32_t oy, int32_t ox, int16_t *column) {
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
        const int32_t y = y0 + ky;
        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t x = x0 + kx;
            const int inside = y >= 0 && y < p->in_h && x >= 0 && x < p->in_w;
            const int8_t *src = in + (y * p->in_w + x) * p->in_c;
            for (int32_t c = 0; c < p->in_c; ++c, ++k) {
                column[kws_nn_slot(k)] = (int16_t)(inside ? src[c] : p->in_zero_point);
            }
        }
    }
    for (; k < p->k4; ++k) column[kws_nn_slot(k)] = 0;
}

void kws_nn_conv(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch) {
    const int32_t pixels = p->out_h * p->out_w;
    int16_t *c0 = scratch, *c1 = scratch + p->k4;
    for (int32_t i = 0; i < pixels; i += 2) {
        const int pair = i + 1 < pixels;
        im2col(p, in, i / p->out_w, i % p->out_w, c0);
        if (pair) im2col(p, in, (i + 1) / p->out_w, (i + 1) % p->out_w, c1);
        output_pixels(p, c0, pair ? c1 : c0, out + i * p->out_c, pair ? out + (i + 1) * p->out_c : 0);
    }
}

/* Pixels i and i + 1 (if pair) are read into scratch before either is written: in place is exact as long as
   the writes never reach an unread pixel, which the direction (p->reverse) guarantees. */
static void pointwise_pixels(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch, int32_t i,
                             int pair) {
    int16_t *c0 = scratch, *c1 = scratch + p->k4;
    kws_nn_column(in + i * p->in_c, p->in_c, p->k4, c0);
    if (pair) kws_nn_column(in + (i + 1) * p->in_c, p->in_c, p->k4, c1);
    output_pixels(p, c0, pair ? c1 : c0, out + i * p->out_c, pair ? out + (i + 1) * p->out_c : 0);
}

void kws_nn_pointwise(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch) {
    const int32_t pixels = p->in_h * p->in_w;
    if (!p->reverse) {
        for (int32_t i = 0; i < pixels; i += 2) pointwise_pixels(p, in, out, scratch, i, i + 1 < pixels);
        return;
    }
    int32_t i = pixels - 2;
    for (; i >= 0; i -= 2) pointwise_pixels(p, in, out, scratch, i, 1);
    if (i == -1) pointwise_pixels(p, in, out, scratch, 0, 0);
}
