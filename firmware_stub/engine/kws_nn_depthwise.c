/* DEPTHWISE_CONV_2D (depth multiplier 1) as TFLite's reference DepthwiseConvPerChannel: per channel, the sum of
   filter * (input - input_zero_point) over the taps inside the input, plus bias, requantized per channel.
   Input rows are addressed through a ring of p->in_ring rows (row y at (y % in_ring) * in_w * c): the whole
   tensor when in_ring == in_h, or the few rows a fused producer keeps (kws_nn_fused.c).
   In place: output row y is computed into a ring of (delay + 1) rows in scratch and written to out only `delay`
   rows later, once no later output row reads the input rows it overwrites (delay is derived at export from the
   geometry, kws/engine/plan.py).
   DSP path: 4 channels per word, SXTAB16 adds the input offset while it sign-extends, SMLABB/SMLATT accumulate
   each channel in its own register; a window whose 3 x 3 taps are all inside the input is unrolled, a border
   window walks its inside rows and columns. Weights are group-major (kws_nn.h), so one group's taps are read in
   order. */
#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_internal.h"
#include "kws_nn_simd.h"

#define KWS_NN_MAX_KERNEL 16 /* kernel_h; a DS-CNN's depthwise is 3 x 3 */

/* Everything a row needs, copied to locals once: int8 stores could alias the parameter struct otherwise. */
typedef struct {
    const int8_t *rows[KWS_NN_MAX_KERNEL]; /* input row of tap row ky (valid for ky0 <= ky < ky1) */
    int32_t ky0, ky1, c, taps;
    int32_t in_off, zp, lo, hi;
    const int16_t *weights;
    const int32_t *bias, *mult, *round;
    const int8_t *shift;
} row_t;

static inline int32_t finish(const row_t *r, int32_t acc, int32_t c) {
    const int32_t v = r->round ? kws_nn_requantize_zp(acc, r->mult[c], r->round[c], -r->shift[c])
                               : kws_nn_requantize(acc, r->mult[c], r->shift[c]) + r->zp;
    return kws_nn_clamp8(v, r->lo, r->hi);
}

#if KWS_NN_DSP
/* One tap for 4 channels: input word at src, weight words at w (channels 0,2 then 1,3). */
#define KWS_NN_TAP(src, w)                                                              \
    do {                                                                                \
        const uint32_t v_ = kws_nn_read32(src);                                         \
        const uint32_t x02_ = kws_sxtab16(off2, v_), x13_ = kws_sxtab16_ror8(off2, v_); \
        const uint32_t w02_ = (w)[0], w13_ = (w)[1];                                    \
        a0 = kws_smlabb(w02_, x02_, a0);                                                \
        a2 = kws_smlatt(w02_, x02_, a2);                                                \
        a1 = kws_smlabb(w13_, x13_, a1);                                                \
        a3 = kws_smlatt(w13_, x13_, a3);                                                \
    } while (0)

/* The 3 x 3 fast path (p->rq set: every |accumulator| < 2^30, 1 <= e <= 21). rq holds, per group of 4 channels,
   the 4 biases with the input offset already folded in over all 9 taps (bias + offset * sum(w)), then per channel
   (multiplier, rounding + zero point, e). The raw int8 inputs then enter the products unshifted. A tap outside the
   input reads p->zpad, a row of the input zero point: its product cancels its share of the folded offset
   exactly, so every window, border or not, takes the same straight path, and the result is TFLite's, which skips
   the tap. The window's 9 tap pixels are listed once (tap[k], k = 3 ky + kx); its groups then walk the list. */
typedef struct {
    const int32_t *q; /* the next group's constants */
    int8_t *dst;      /* the next group's 4 results */
    int32_t lo, hi;
    const int8_t *const *tap;
    int32_t c, end; /* the next group's first channel; the full groups' end */
} window_t;

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* On Arm, the whole window in assembly: per group 9 taps of 9 instructions and 4 results of 13, every operand in
   a register (compiled C spills the accumulators and takes about 1.7x as many). w: the weights, advanced. */
static void window3x3_groups(window_t *win, const uint32_t *w) {
    register const uint32_t *wp __asm__("r8") = w;
    register window_t *g __asm__("lr") = win;
#define KWS_NN_TAP_ASM(k)                 \
    "ldr r6, [r4, #" #k "]\n"             \
    "ldr r9, [r6, r5]\n"                  \
    "ldrd r11, r12, [%[w]], #8\n"         \
    "sxtb16 r10, r9\n"                    \
    "sxtb16 r9, r9, ror #8\n"             \
    "smlabb r0, r11, r10, r0\n"           \
    "smlatt r2, r11, r10, r2\n"           \
    "smlabb r1, r12, r9, r1\n"            \
    "smlatt r3, r12, r9, r3\n"
    /* r4 = q, r5 = dst, r11 = lo, r12 = hi; per result r6 = m, r9 = rounding + zero point, r10 = e */
#define KWS_NN_RESULT_ASM(acc)            \
    "ldm r4!, {r6, r9, r10}\n"            \
    "lsl " acc ", " acc ", #1\n"          \
    "smmulr " acc ", " acc ", r6\n"       \
    "add r9, r9, " acc "\n"               \
    "add r9, r9, " acc ", asr #31\n"      \
    "asr r9, r9, r10\n"                   \
    "cmp r9, r11\n"                       \
    "it lt\n"                             \
    "movlt r9, r11\n"                     \
    "cmp r9, r12\n"                       \
    "it gt\n"                             \
    "movgt r9, r12\n"                     \
    "strb r9, [r5], #1\n"
    __asm volatile("ldr r4, [%[g], #16]\n"
                   "ldr r5, [%[g], #20]\n"
                   "1:\n"
                   "ldr r9, [%[g]]\n"
                   "ldm r9!, {r0, r1, r2, r3}\n"
                   "str r9, [%[g]]\n"
                   KWS_NN_TAP_ASM(0) KWS_NN_TAP_ASM(4) KWS_NN_TAP_ASM(8) KWS_NN_TAP_ASM(12) KWS_NN_TAP_ASM(16)
                   KWS_NN_TAP_ASM(20) KWS_NN_TAP_ASM(24) KWS_NN_TAP_ASM(28) KWS_NN_TAP_ASM(32)
                   "ldm %[g], {r4, r5, r11, r12}\n"
                   KWS_NN_RESULT_ASM("r0") KWS_NN_RESULT_ASM("r1") KWS_NN_RESULT_ASM("r2") KWS_NN_RESULT_ASM("r3")
                   "stm %[g], {r4, r5}\n"
                   "ldr r4, [%[g], #16]\n"
                   "ldrd r5, r6, [%[g], #20]\n"
                   "adds r5, r5, #4\n"
                   "str r5, [%[g], #20]\n"
                   "cmp r5, r6\n"
                   "blt 1b\n"
                   : [w] "+r"(wp)
                   : [g] "r"(g)
                   : "r0", "r1", "r2", "r3", "r4", "r5", "r6", "r9", "r10", "r11", "r12", "cc", "memory");
#undef KWS_NN_TAP_ASM
#undef KWS_NN_RESULT_ASM
}
#else
/* The same steps in C (hosts with KWS_NN_EMULATE_DSP: the tests run this very dataflow against LiteRT). */
static void window3x3_groups(window_t *win, const uint32_t *w) {
    const uint32_t off2 = 0; /* the offset is in the folded biases */
    for (; win->c < win->end; win->c += 4) {
        const int32_t *q = win->q;
        int32_t a0 = q[0], a1 = q[1], a2 = q[2], a3 = q[3];
        for (int32_t k = 0; k < 9; ++k, w += 2) KWS_NN_TAP(win->tap[k] + win->c, w);
        const int32_t acc[4] = {a0, a1, a2, a3};
        q += 4;
        for (int32_t j = 0; j < 4; ++j, q += 3) {
            *win->dst++ = (int8_t)kws_nn_clamp8(kws_nn_requantize_zp(acc[j], q[0], q[1], q[2]), win->lo, win->hi);
        }
        win->q = q;
    }
}
#endif

/* A 3 x 3 window, all full channel groups: tap[k] is tap k's input pixel, p->zpad where it is outside. */
static void window3x3(const kws_nn_depthwise_t *p, const row_t *r, const int8_t *const tap[9], int8_t *dst) {
    window_t win = {p->rq, dst, r->lo, r->hi, tap, 0, r->c & ~3};
    if (win.end > 0) window3x3_groups(&win, (const uint32_t *)(const void *)r->weights);
}

/* The 4 values of a group, requantized into dst[0..3]; the per-layer branch between the two paths is hoisted. */
static inline void finish4(const row_t *r, const int32_t acc[4], int32_t c, int8_t *dst) {
    const int32_t lo = r->lo, hi = r->hi;
    if (r->round) {
        const int32_t *m = r->mult + c, *rd = r->round + c;
        const int8_t *s = r->shift + c;
        for (int32_t j = 0; j < 4; ++j) dst[j] = kws_nn_clamp8(kws_nn_requantize_zp(acc[j], m[j], rd[j], -s[j]), lo, hi);
    } else {
        for (int32_t j = 0; j < 4; ++j) dst[j] = finish(r, acc[j], c + j);
    }
}

/* Any window: the inside columns [kx0, kx1) of the inside rows, for the channel groups of 4. */
static void window_dsp(const row_t *r, int32_t kw, int32_t x0, int32_t kx0, int32_t kx1, int8_t *dst) {
    const int32_t channels = r->c & ~3, step = r->c, taps = r->taps;
    const uint32_t off2 = ((uint32_t)r->in_off & 0xFFFFu) | ((uint32_t)r->in_off << 16);
    for (int32_t c = 0; c < channels; c += 4) {
        int32_t a0 = r->bias[c], a1 = r->bias[c + 1], a2 = r->bias[c + 2], a3 = r->bias[c + 3];
        const uint32_t *wg = (const uint32_t *)(const void *)(r->weights + c * taps);
        for (int32_t ky = r->ky0; ky < r->ky1; ++ky) {
            const int8_t *src = r->rows[ky] + (x0 + kx0) * step + c;
            const uint32_t *w = wg + 2 * (ky * kw + kx0);
            for (int32_t kx = kx0; kx < kx1; ++kx, src += step, w += 2) KWS_NN_TAP(src, w);
        }
        const int32_t acc[4] = {a0, a1, a2, a3};
        finish4(r, acc, c, dst + c);
    }
}
#endif

/* The channels from c on, one at a time (all of them on the portable path, the last c % 4 on the DSP path). */
static void window_scalar(const row_t *r, int32_t kw, int32_t x0, int32_t kx0, int32_t kx1, int32_t c, int8_t *dst) {
    for (; c < r->c; ++c) {
        const int16_t *wg = r->weights + (c & ~3) * r->taps + kws_nn_slot(c & 3);
        int32_t acc = r->bias[c];
        for (int32_t ky = r->ky0; ky < r->ky1; ++ky) {
            const int8_t *src = r->rows[ky] + (x0 + kx0) * r->c + c;
            for (int32_t kx = kx0; kx < kx1; ++kx, src += r->c) acc += wg[4 * (ky * kw + kx)] * (*src + r->in_off);
        }
        dst[c] = finish(r, acc, c);
    }
}

void kws_nn_depthwise_row(const kws_nn_depthwise_t *p, const int8_t *in, int32_t oy, int8_t *dst) {
    const int32_t c = p->c, kh = p->kernel_h, kw = p->kernel_w, in_w = p->in_w;
    const int32_t y0 = oy * p->stride_h - p->pad_top;
    row_t r = {
        .ky0 = y0 < 0 ? -y0 : 0,
        .ky1 = kh < p->in_h - y0 ? kh : p->in_h - y0,
        .c = c,
        .taps = kh * kw,
        .in_off = -p->in_zero_point,
        .zp = p->out_zero_point,
        .lo = p->act_min,
        .hi = p->act_max,
        .weights = p->weights,
        .bias = p->bias,
        .mult = p->multiplier,
        .round = p->round,
        .shift = p->shift,
    };
    for (int32_t ky = r.ky0; ky < r.ky1; ++ky) r.rows[ky] = in + ((y0 + ky) % p->in_ring) * in_w * c;
    for (int32_t ox = 0; ox < p->out_w; ++ox, dst += c) {
        const int32_t x0 = ox * p->stride_w - p->pad_left;
        const int32_t kx0 = x0 < 0 ? -x0 : 0, kx1 = kw < in_w - x0 ? kw : in_w - x0;
        int32_t done = 0;
#if KWS_NN_DSP
        if (p->rq) { /* 3 x 3 (the generator sets rq only then) */
            const int8_t *tap[9];
            for (int32_t k = 0; k < 9; ++k) {
                const int32_t ky = k / 3, kx = k % 3;
                const int inside = ky >= r.ky0 && ky < r.ky1 && kx >= kx0 && kx < kx1;
                tap[k] = inside ? r.rows[ky] + (x0 + kx) * c : p->zpad;
            }
            window3x3(p, &r, tap, dst);
        } else {
            window_dsp(&r, kw, x0, kx0, kx1, dst);
        }
        done = c & ~3;
#endif
        window_scalar(&r, kw, x0, kx0, kx1, done, dst);
    }
}

void kws_nn_depthwise(const kws_nn_depthwise_t *p, const int8_t *in, int8_t *out, int8_t *scratch) {
    const int32_t row = p->out_w * p->c, slots = p->delay + 1;
    const int8_t *in_end = in + p->in_ring * p->in_w * p->c;
    if (out + p->out_h * row <= in || out >= in_end) { /* apart from the input: straight into out */
        for (int32_t oy = 0; oy < p->out_h; ++oy) kws_nn_depthwise_row(p, in, oy, out + oy * row);
        return;
    }
    for (int32_t oy = 0; oy < p->out_h + p->delay; ++oy) {
        if (oy < p->out_h) kws_nn_depthwise_row(p, in, oy, scratch + (oy % slots) * row);
        const int32_t done = oy - p->delay;
        if (done >= 0) memmove(out + done * row, scratch + (done % slots) * row, (size_t)row);
    }
}
