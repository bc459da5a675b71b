/* DEPTHWISE_CONV_2D (depth multiplier 1) as TFLite's reference DepthwiseConvPerChannel: per channel, the sum of
   filter * (input - input_zero_point) over the taps inside the input, plus bias, requantized per channel.
   In place: output row y is computed into a ring of (delay + 1) rows in scratch and written to out only `delay`
   rows later, once no later output row reads the input rows it overwrites (delay is derived at export from the
   geometry, kws/engine/plan.py). Per output pixel the taps inside the input are listed once (input and weight
   offsets), then every channel group walks that list. DSP path: 4 channels per word, SXTAB16 adds the input
   offset while it sign-extends, SMLABB/SMLATT accumulate each channel in its own register. */
#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_internal.h"
#include "kws_nn_simd.h"

#define KWS_NN_MAX_TAPS 64 /* kernel_h * kernel_w; a DS-CNN's depthwise is 3 x 3 */

typedef struct {
    int32_t n;
    int32_t in[KWS_NN_MAX_TAPS]; /* byte offset from the output pixel's first input tap */
    int32_t w[KWS_NN_MAX_TAPS];  /* int16 offset into the weights */
} taps_t;

static inline int8_t finish(const kws_nn_depthwise_t *p, int32_t acc, int32_t c) {
    const int32_t m = p->multiplier[c], s = p->shift[c];
    const int32_t r = p->fast ? kws_nn_requantize_fast(acc, m, s) : kws_nn_requantize(acc, m, s);
    return kws_nn_clamp8(r + p->out_zero_point, p->act_min, p->act_max);
}

#if KWS_NN_DSP
/* One tap for 4 channels: input word at src, weight words at w (channels 0,2 then 1,3). */
#define KWS_NN_TAP(src, w)                                                                   \
    do {                                                                                     \
        const uint32_t v_ = kws_nn_read32(src);                                              \
        const uint32_t x02_ = kws_sxtab16(off2, v_), x13_ = kws_sxtab16_ror8(off2, v_);      \
        const uint32_t w02_ = (w)[0], w13_ = (w)[1];                                         \
        a0 = kws_smlabb(w02_, x02_, a0);                                                     \
        a2 = kws_smlatt(w02_, x02_, a2);                                                     \
        a1 = kws_smlabb(w13_, x13_, a1);                                                     \
        a3 = kws_smlatt(w13_, x13_, a3);                                                     \
    } while (0)
#endif

/* Fields copied to locals: the int8 stores could alias the parameter struct and force reloads otherwise. */
static void pixel(const kws_nn_depthwise_t *p, const int8_t *in, const taps_t *t, int8_t *dst) {
    const int32_t in_off = -p->in_zero_point, channels = p->c;
    const int16_t *weights = p->weights;
    const int32_t *bias = p->bias;
    int32_t c = 0;
#if KWS_NN_DSP
    const uint32_t off2 = ((uint32_t)in_off & 0xFFFFu) | ((uint32_t)in_off << 16);
    /* a whole 3 x 3 window: each row's 3 taps unrolled */
    const int full3x3 = t->n == 9 && p->kernel_w == 3 && p->kernel_h == 3;
    const int32_t row = p->in_w * channels, hw = p->c4 / 2; /* tap stride in weight words */
    for (; c + 4 <= channels; c += 4) {
        int32_t a0 = bias[c], a1 = bias[c + 1], a2 = bias[c + 2], a3 = bias[c + 3];
        const uint32_t *w = (const uint32_t *)(const void *)(weights + c);
        if (full3x3) {
            const int8_t *src = in + c;
            for (int32_t ky = 0; ky < 3; ++ky, src += row, w += 3 * hw) {
                KWS_NN_TAP(src, w);
                KWS_NN_TAP(src + channels, w + hw);
                KWS_NN_TAP(src + 2 * channels, w + 2 * hw);
            }
        } else {
            for (int32_t k = 0; k < t->n; ++k) KWS_NN_TAP(in + c + t->in[k], w + t->w[k] / 2);
        }
        dst[c] = finish(p, a0, c);
        dst[c + 1] = finish(p, a1, c + 1);
        dst[c + 2] = finish(p, a2, c + 2);
        dst[c + 3] = finish(p, a3, c + 3);
    }
#endif
    for (; c < channels; ++c) {
        const int32_t slot = (c & ~3) + kws_nn_slot(c);
        int32_t acc = bias[c];
        for (int32_t k = 0; k < t->n; ++k) acc += weights[t->w[k] + slot] * (in[t->in[k] + c] + in_off);
        dst[c] = finish(p, acc, c);
    }
}

static void output_row(const kws_nn_depthwise_t *p, const int8_t *in, int32_t oy, int8_t *dst) {
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    const int32_t ky0 = y0 < 0 ? -y0 : 0, ky1 = p->kernel_h < p->in_h - y0 ? p->kernel_h : p->in_h - y0;
    taps_t t;
    for (int32_t ox = 0; ox < p->out_w; ++ox, dst += p->c) {
        const int32_t x0 = ox * p->stride_w - p->pad_left;
        const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = p->kernel_w < p->in_w - x0 ? p->kernel_w : p->in_w - x0;
        t.n = 0;
        for (int32_t ky = ky0; ky < ky1; ++ky) {
            for (int32_t kx = kx0; kx < kx1; ++kx, ++t.n) {
                t.in[t.n] = ((ky - ky0) * p->in_w + (kx - kx0)) * p->c;
                t.w[t.n] = (ky * p->kernel_w + kx) * p->c4;
            }
        }
        pixel(p, in + ((y0 + ky0) * p->in_w + x0 + kx0) * p->c, &t, dst);
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
