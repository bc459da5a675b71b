/* CONV_2D as TFLite's reference integer kernel computes it (ConvPerChannel): per output channel, the int32 sum of
   filter * (input - input_zero_point) over the taps inside the input, plus bias, requantized per channel, plus the
   output zero point, clamped to the fused activation range. Here the input offset is folded into the bias at
   export and taps outside the input read the input zero point, which contributes exactly 0 as TFLite's skip does. */
#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_internal.h"

/* The column pair is in scratch: every output channel of pixels o0 (and o1, unless 0). Fields are copied to
   locals: the int8 stores could alias the parameter struct and would force reloads otherwise. The branch between
   the fused-zero-point path and the exact one is taken once per pixel pair, not per value. */
static void output_pixels(const kws_nn_conv_t *p, const int16_t *pair, int8_t *o0, int8_t *o1) {
    const int32_t groups = p->k4 >> 2, step = 2 * p->k4, pairs = p->out_c >> 1, zp = p->out_zero_point;
    const int32_t lo = p->act_min, hi = p->act_max;
    const int32_t *bias = p->bias, *mult = p->multiplier, *round = p->round;
    const int8_t *rows = p->weights, *shift = p->shift;
    int8_t *d1 = o1 ? o1 : o0; /* a lone last pixel is computed twice and stored twice in the same place */
    int32_t acc[4];
    if (round) {
        for (int32_t i = 0; i < pairs; ++i, rows += step, bias += 2, mult += 2, round += 2, shift += 2) {
            kws_nn_dot_2x2(pair, rows, groups, bias, acc);
            const int32_t e0 = -shift[0], e1 = -shift[1];
            *o0++ = kws_nn_clamp8(kws_nn_requantize_zp(acc[0], mult[0], round[0], e0), lo, hi);
            *o0++ = kws_nn_clamp8(kws_nn_requantize_zp(acc[1], mult[1], round[1], e1), lo, hi);
            *d1++ = kws_nn_clamp8(kws_nn_requantize_zp(acc[2], mult[0], round[0], e0), lo, hi);
            *d1++ = kws_nn_clamp8(kws_nn_requantize_zp(acc[3], mult[1], round[1], e1), lo, hi);
        }
    } else {
        for (int32_t i = 0; i < pairs; ++i, rows += step, bias += 2, mult += 2, shift += 2) {
            kws_nn_dot_2x2(pair, rows, groups, bias, acc);
            *o0++ = kws_nn_clamp8(kws_nn_requantize(acc[0], mult[0], shift[0]) + zp, lo, hi);
            *o0++ = kws_nn_clamp8(kws_nn_requantize(acc[1], mult[1], shift[1]) + zp, lo, hi);
            *d1++ = kws_nn_clamp8(kws_nn_requantize(acc[2], mult[0], shift[0]) + zp, lo, hi);
            *d1++ = kws_nn_clamp8(kws_nn_requantize(acc[3], mult[1], shift[1]) + zp, lo, hi);
        }
    }
    if (p->out_c & 1) { /* the last, odd channel: its row pair's second row is zeros */
        kws_nn_dot_2x2(pair, rows, groups, bias, acc);
        const int32_t r0 = round ? kws_nn_requantize_zp(acc[0], mult[0], round[0], -shift[0])
                                 : kws_nn_requantize(acc[0], mult[0], shift[0]) + zp;
        const int32_t r1 = round ? kws_nn_requantize_zp(acc[2], mult[0], round[0], -shift[0])
                                 : kws_nn_requantize(acc[2], mult[0], shift[0]) + zp;
        *o0 = kws_nn_clamp8(r0, lo, hi);
        *d1 = kws_nn_clamp8(r1, lo, hi);
    }
}

/* The receptive field of output pixel (oy, ox) as an int16 column, outside taps at the input zero point. */
static void im2col(const kws_nn_conv_t *p, const int8_t *in, int32_t oy, int32_t ox, int16_t *pair, int32_t pixel) {
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    int32_t k = 0;
    for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
        const int32_t y = y0 + ky;
        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t x = x0 + kx;
            const int inside = y >= 0 && y < p->in_h && x >= 0 && x < p->in_w;
            const int8_t *src = in + (y * p->in_w + x) * p->in_c;
            for (int32_t c = 0; c < p->in_c; ++c, ++k) {
                pair[kws_nn_index(k, pixel)] = (int16_t)(inside ? src[c] : p->in_zero_point);
            }
        }
    }
    for (; k < p->k4; ++k) pair[kws_nn_index(k, pixel)] = 0;
}

/* Output pixel i (row-major) in p's output ring. */
static int8_t *out_pixel(const kws_nn_conv_t *p, int8_t *out, int32_t i) {
    const int32_t y = i / p->out_w;
    return out + ((y % p->out_ring) * p->out_w + (i - y * p->out_w)) * p->out_c;
}

void kws_nn_conv_rows(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int32_t y0, int32_t y1, int16_t *scratch) {
    const int32_t end = y1 * p->out_w;
    for (int32_t i = y0 * p->out_w; i < end; i += 2) {
        const int32_t j = i + 1 < end ? i + 1 : i; /* an odd last pixel is computed twice, stored once */
        im2col(p, in, i / p->out_w, i % p->out_w, scratch, 0);
        im2col(p, in, j / p->out_w, j % p->out_w, scratch, 1);
        output_pixels(p, scratch, out_pixel(p, out, i), j != i ? out_pixel(p, out, j) : 0);
    }
}

void kws_nn_conv(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch) {
    kws_nn_conv_rows(p, in, out, 0, p->out_h, scratch);
}

/* Pixels i and i + 1 (if pair) are read into scratch before either is written: in place is exact as long as
   the writes never reach an unread pixel, which the direction (p->reverse) guarantees. */
static void pointwise_pixels(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch, int32_t i,
                             int pair) {
    const int32_t j = pair ? i + 1 : i;
    kws_nn_column(in + i * p->in_c, p->in_c, p->k4, scratch, 0);
    kws_nn_column(in + j * p->in_c, p->in_c, p->k4, scratch, 1);
    output_pixels(p, scratch, out + i * p->out_c, pair ? out + j * p->out_c : 0);
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
