/* DEPTHWISE_CONV_2D (depth multiplier 1) as TFLite's reference DepthwiseConvPerChannel: per channel, the sum of
   filter * (input - input_zero_point) over the taps inside the input, plus bias, requantized per channel.
   In place: output row y is computed into a ring of (delay + 1) rows in scratch and written to out only `delay`
   rows later, once no later output row reads the input rows it overwrites (delay is derived at export from the
   geometry, kws/engine/plan.py). DSP path: 4 channels per word, SXTAB16 adds the input offset while it
   sign-extends, SMLABB/SMLATT accumulate each channel in its own register. */
#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_internal.h"
#include "kws_nn_simd.h"

static int32_t max32(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t min32(int32_t a, int32_t b) { return a < b ? a : b; }

static int8_t finish(const kws_nn_depthwise_t *p, int32_t acc, int32_t c) {
    return kws_nn_clamp8(kws_nn_requantize(acc, p->multiplier[c], p->shift[c]) + p->out_zero_point, p->act_min,
                         p->act_max);
}

/* One output pixel: taps ky0..ky1 x kx0..kx1 are the ones inside the input; base points at the input pixel of
   the first such tap; dst gets p->c channels. */
static void pixel(const kws_nn_depthwise_t *p, const int8_t *base, int32_t ky0, int32_t ky1, int32_t kx0,
                  int32_t kx1, int8_t *dst) {
    const int32_t in_off = -p->in_zero_point, row = p->in_w * p->c;
    int32_t c = 0;
#if KWS_NN_DSP
    const uint32_t off2 = ((uint32_t)in_off & 0xFFFFu) | ((uint32_t)in_off << 16);
    for (; c + 4 <= p->c; c += 4) {
        int32_t a0 = p->bias[c], a1 = p->bias[c + 1], a2 = p->bias[c + 2], a3 = p->bias[c + 3];
        const int8_t *src_row = base + c;
        for (int32_t ky = ky0; ky < ky1; ++ky, src_row += row) {
            const int8_t *src = src_row;
            const uint32_t *w = (const uint32_t *)(const void *)(p->weights + (ky * p->kernel_w + kx0) * p->c4 + c);
            for (int32_t kx = kx0; kx < kx1; ++kx, src += p->c, w += p->c4 / 2) {
                const uint32_t v = kws_nn_read32(src);
                const uint32_t x02 = kws_sxtab16(off2, v), x13 = kws_sxtab16(off2, kws_ror8(v));
                const uint32_t w02 = w[0], w13 = w[1];
                a0 = kws_smlabb(w02, x02, a0);
                a2 = kws_smlatt(w02, x02, a2);
                a1 = kws_smlabb(w13, x13, a1);
                a3 = kws_smlatt(w13, x13, a3);
            }
        }
        dst[c] = finish(p, a0, c);
        dst[c + 1] = finish(p, a1, c + 1);
        dst[c + 2] = finish(p, a2, c + 2);
        dst[c + 3] = finish(p, a3, c + 3);
    }
#endif
    for (; c < p->c; ++c) {
        const int32_t slot = kws_nn_slot(c);
        int32_t acc = p->bias[c];
        for (int32_t ky = ky0; ky < ky1; ++ky) {
            const int8_t *src = base + (ky - ky0) * row + c;
            for (int32_t kx = kx0; kx < kx1; ++kx, src += p->c) {
                acc += p->weights[(ky * p->kernel_w + kx) * p->c4 + slot] * (*src + in_off);
            }
        }
        dst[c] = finish(p, acc, c);
    }
}

static void output_row(const kws_nn_depthwise_t *p, const int8_t *in, int32_t oy, int8_t *dst) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t ky0 = max32(0, -y0), ky1 = min32(p->kernel_h, p->in_h - y0);
    for (int32_t ox = 0; ox < p->out_w; ++ox, dst += p->c) {
        const int32_t x0 = ox * p->stride_w - p->pad_left;
        const int32_t kx0 = max32(0, -x0), kx1 = min32(p->kernel_w, p->in_w - x0);
        pixel(p, in + ((y0 + ky0) * p->in_w + x0 + kx0) * p->c, ky0, ky1, kx0, kx1, dst);
    }
}

void kws_nn_depthwise(const kws_nn_depthwise_t *p, const int8_t *in, int8_t *out, int8_t *scratch) {
    const int32_t row = p->out_w * p->c, slots = p->delay + 1;
    for (int32_t oy = 0; oy < p->out_h + p->delay; ++oy) {
        if (oy < p->out_h) output_row(p, in, oy, scratch + (oy % slots) * row);
        const int32_t done = oy - p->delay;
        if (done >= 0) memmove(out + done * row, scratch + (done % slots) * row, (size_t)row);
    }
}
