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

static inline int8_t finish(const row_t *r, int32_t acc, int32_t c) {
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

#if defined(__ARM_FEATURE_DSP)
/* The 9 taps of one group of 4 channels, on Arm in assembly: 8 instructions per tap with every operand in a
   register (the compiler spills the 4 accumulators, the 3 row pointers and the offset, and takes 2.5x as many).
   s0, s1, s2: the window's first column in each row; step: bytes per pixel; w: the group's 18 weight words. */
static void taps3x3(const int8_t *s0, const int8_t *s1, const int8_t *s2, int32_t step, const uint32_t *w,
                    uint32_t off2, int32_t acc[4]) {
    register int32_t a0 __asm__("r0") = acc[0];
    register int32_t a1 __asm__("r1") = acc[1];
    register int32_t a2 __asm__("r2") = acc[2];
    register int32_t a3 __asm__("r3") = acc[3];
    register const int8_t *r0p __asm__("r4") = s0;
    register const int8_t *r1p __asm__("r5") = s1;
    register const int8_t *r2p __asm__("r6") = s2;
    register int32_t st __asm__("r7") = step;
    register const uint32_t *wp __asm__("r8") = w;
    register uint32_t off __asm__("r9") = off2;
    register uint32_t v __asm__("r10"), x __asm__("r11"), wa __asm__("r12"), wb __asm__("lr");
#define KWS_NN_TAP_ASM(load)                     \
    load "\n"                                    \
    "ldrd %[wa], %[wb], [%[w]], #8\n"            \
    "sxtab16 %[x], %[off], %[v]\n"               \
    "sxtab16 %[v], %[off], %[v], ror #8\n"       \
    "smlabb %[a0], %[wa], %[x], %[a0]\n"         \
    "smlatt %[a2], %[wa], %[x], %[a2]\n"         \
    "smlabb %[a1], %[wb], %[v], %[a1]\n"         \
    "smlatt %[a3], %[wb], %[v], %[a3]\n"
    __asm volatile(KWS_NN_TAP_ASM("ldr %[v], [%[s0]]") KWS_NN_TAP_ASM("ldr %[v], [%[s0], %[st]]")
                   KWS_NN_TAP_ASM("ldr %[v], [%[s0], %[st], lsl #1]") KWS_NN_TAP_ASM("ldr %[v], [%[s1]]")
                   KWS_NN_TAP_ASM("ldr %[v], [%[s1], %[st]]") KWS_NN_TAP_ASM("ldr %[v], [%[s1], %[st], lsl #1]")
                   KWS_NN_TAP_ASM("ldr %[v], [%[s2]]") KWS_NN_TAP_ASM("ldr %[v], [%[s2], %[st]]")
                   KWS_NN_TAP_ASM("ldr %[v], [%[s2], %[st], lsl #1]")
                   : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(wp), [v] "=&r"(v),
                     [x] "=&r"(x), [wa] "=&r"(wa), [wb] "=&r"(wb)
                   : [s0] "r"(r0p), [s1] "r"(r1p), [s2] "r"(r2p), [st] "r"(st), [off] "r"(off)
                   : "memory");
#undef KWS_NN_TAP_ASM
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#else
static void taps3x3(const int8_t *s0, const int8_t *s1, const int8_t *s2, int32_t step, const uint32_t *w,
                    uint32_t off2, int32_t acc[4]) {
    int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
    KWS_NN_TAP(s0, w);
    KWS_NN_TAP(s0 + step, w + 2);
    KWS_NN_TAP(s0 + 2 * step, w + 4);
    KWS_NN_TAP(s1, w + 6);
    KWS_NN_TAP(s1 + step, w + 8);
    KWS_NN_TAP(s1 + 2 * step, w + 10);
    KWS_NN_TAP(s2, w + 12);
    KWS_NN_TAP(s2 + step, w + 14);
    KWS_NN_TAP(s2 + 2 * step, w + 16);
    acc[0] = a0;
    acc[1] = a1;
    acc[2] = a2;
    acc[3] = a3;
}
#endif

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

/* A window with all 3 x 3 taps inside: x is the byte offset of its first column in each row. */
static void window3x3(const row_t *r, int32_t x, int8_t *dst) {
    const int32_t channels = r->c & ~3, step = r->c;
    const uint32_t off2 = ((uint32_t)r->in_off & 0xFFFFu) | ((uint32_t)r->in_off << 16);
    const int8_t *s0 = r->rows[0] + x, *s1 = r->rows[1] + x, *s2 = r->rows[2] + x;
    const uint32_t *w = (const uint32_t *)(const void *)r->weights;
    int32_t acc[4];
    for (int32_t c = 0; c < channels; c += 4, w += 18) {
        memcpy(acc, r->bias + c, sizeof acc);
        taps3x3(s0 + c, s1 + c, s2 + c, step, w, off2, acc);
        finish4(r, acc, c, dst + c);
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
        if (kh == 3 && kw == 3 && r.ky0 == 0 && r.ky1 == 3 && kx0 == 0 && kx1 == 3) {
            window3x3(&r, x0 * c, dst);
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
