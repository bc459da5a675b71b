/* kws_nn: the int8 kernels the generated network (kws_net.c, from kws/engine) calls, one role per file:
     kws_nn_matmul.c      int8 weights x int16 inputs, 2 pixels x 2 output channels (shared by conv and FC)
     kws_nn_conv.c        CONV_2D: any kernel via a per-pixel im2col, and the 1x1 pointwise fast path
     kws_nn_depthwise.c   DEPTHWISE_CONV_2D, any stride and SAME/VALID padding, in place with a row ring
     kws_nn_pool.c        AVERAGE_POOL_2D
     kws_nn_fc.c          FULLY_CONNECTED (per-channel: TFLite reference's double rounding; per-tensor: integer)
     kws_nn_softmax.c     SOFTMAX (gemmlowp fixed-point exp and reciprocal, as TFLite's reference)
     kws_nn_elementwise.c LOGISTIC / tabulated activations (256-entry table), MUL, HARD_SWISH
     kws_nn_fused.c       a CONV_2D streamed row by row into the DEPTHWISE_CONV_2D that reads it (a ring of rows)
   Every kernel gives TFLite's reference int8 results bit for bit (tests/test_engine.py compares with LiteRT's
   BUILTIN_REF kernels); each has a portable loop and a DSP loop (kws_nn_simd.h) that give the same bits.
   Tensors are NHWC int8 without batch; shapes and constants come from the generated parameter structs, whose
   arrays are laid out by kws/engine/layers.py (the layouts are stated on each struct). No kernel allocates. */
#ifndef KWS_NN_H
#define KWS_NN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Blocked matrix of a conv / FC: rows = output channels padded to an even count (zero rows), columns = the
   reduction (kh * kw * in_c, in that order) padded to k4, a multiple of 4 (zero columns). Byte index of (row r,
   column k): ((r / 2) * (k4 / 4) + k / 4) * 8 + (r % 2) * 4 + k % 4. bias already holds
   bias + in_offset * sum(row), so inputs enter the dot product raw (padding positions hold the input zero point). */
typedef struct {
    int32_t in_h, in_w, in_c, out_h, out_w, out_c;
    int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    int32_t k, k4;                 /* reduction length and its padded length */
    int32_t in_zero_point, out_zero_point, act_min, act_max;
    int32_t reverse;               /* pointwise in place with out_c > in_c: pixels last to first */
    int32_t out_ring;              /* output rows kept: row y at (y % out_ring) * out_w * out_c (out_h: all) */
    const int8_t *weights;         /* blocked, see above */
    const int32_t *bias;           /* folded, out_c padded to even */
    const int32_t *multiplier;     /* Q31 mantissas, per output channel */
    const int8_t *shift;           /* TFLite shifts (> 0 left), per output channel */
    const int32_t *round;          /* kws_nn_requantize_zp's per-channel rounding + zero point, or 0: the exact
                                      path (set at export when every |accumulator| < 2^30 and 1 <= -shift <= 21) */
} kws_nn_conv_t;

/* Scratch bytes kws_nn_conv / kws_nn_pointwise need: two int16 im2col columns of k4. */
#define KWS_NN_CONV_SCRATCH(k4) (4 * (k4))

/* CONV_2D with a kernel > 1 or stride > 1 (or padding): reads in (in_h x in_w x in_c), writes out, which must
   not overlap in. scratch: KWS_NN_CONV_SCRATCH(p->k4) bytes, 4-byte aligned. */
void kws_nn_conv(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch);

/* 1x1 stride-1 CONV_2D. out may equal in (in place, pixel by pixel through scratch): forward when out_c <= in_c,
   p->reverse when out_c > in_c; out must then span max(in, out) bytes. Otherwise in and out must not overlap. */
void kws_nn_pointwise(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int16_t *scratch);

/* Depthwise (multiplier 1). weights: int16, group-major: channels in groups of 4, and for each group its taps in
   order, 4 values per tap stored in the channel order 0, 2, 1, 3 (int16 index (c / 4) * 4 * taps + 4 * (ky * kw
   + kx) + slot; c4 = c rounded up to 4, zeros beyond c). bias is NOT folded (padding is skipped, as TFLite does).
   delay: output rows held in scratch before being written, so that out may equal in (computed at export from the
   row overlap). in_ring: input rows kept by the producer, row y at (y % in_ring) * in_w * c (in_h: all). */
typedef struct {
    int32_t in_h, in_w, c, c4, out_h, out_w;
    int32_t kernel_h, kernel_w, stride_h, stride_w, pad_top, pad_left;
    int32_t in_zero_point, out_zero_point, act_min, act_max;
    int32_t delay;
    int32_t in_ring;
    const int16_t *weights;
    const int32_t *bias;
    const int32_t *multiplier;
    const int8_t *shift;
    const int32_t *round;          /* as for conv */
    const int32_t *rq;             /* 3 x 3 with round set: per group of 4 channels the 4 biases with the input
                                      offset folded in over the 9 taps, then (multiplier, round, e) per channel;
                                      or 0 (kws_nn_depthwise.c) */
    const int8_t *zpad;            /* with rq: c bytes of the input zero point, read for taps outside the input */
} kws_nn_depthwise_t;

/* Scratch bytes: (delay + 1) output rows. */
#define KWS_NN_DEPTHWISE_SCRATCH(delay, out_w, c) (((delay) + 1) * (out_w) * (c))

void kws_nn_depthwise(const kws_nn_depthwise_t *p, const int8_t *in, int8_t *out, int8_t *scratch);

/* Output row oy alone into dst (out_w x c), reading the input rows it needs from in (ring of p->in_ring rows). */
void kws_nn_depthwise_row(const kws_nn_depthwise_t *p, const int8_t *in, int32_t oy, int8_t *dst);

/* A CONV_2D whose only reader is a DEPTHWISE_CONV_2D, fused row by row (kws_nn_fused.c): the conv's output rows
   live in a ring of conv->out_ring == dw->in_ring rows (the depthwise kernel height), each computed just before
   the first depthwise row that reads it, so the conv's whole output never exists. in: the conv's input; ring:
   out_ring * out_w * out_c bytes; out: the depthwise output, apart from in and ring; scratch as for kws_nn_conv.
   table: the conv's tabulated activation (kws_nn_lut), applied to each ring row, or 0. */
void kws_nn_conv_depthwise(const kws_nn_conv_t *conv, const int8_t *table, const kws_nn_depthwise_t *dw,
                           const int8_t *in, int8_t *ring, int8_t *out, int16_t *scratch);

typedef struct {
    int32_t in_h, in_w, c, out_h, out_w;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} kws_nn_pool_t;

/* AVERAGE_POOL_2D (input and output share scale and zero point, as TFLite requires). A global pool
   (out 1 x 1) may run in place (out == in); others need out apart from in. */
void kws_nn_avgpool(const kws_nn_pool_t *p, const int8_t *in, int8_t *out);

/* FULLY_CONNECTED: weights blocked as for conv (k = in_n). Per-channel weights (scale != 0) follow TFLite's
   reference kernel: round(acc * scale[o]) in double; per-tensor ones use multiplier/shift[0]. */
typedef struct {
    int32_t in_n, k4, out_n;
    int32_t out_zero_point, act_min, act_max;
    const int8_t *weights;
    const int32_t *bias;           /* folded */
    const double *scale;           /* per output channel, or 0 */
    const int32_t *multiplier;
    const int8_t *shift;
} kws_nn_fc_t;

/* out (out_n) must not overlap in. scratch: KWS_NN_CONV_SCRATCH(p->k4) bytes. */
void kws_nn_fc(const kws_nn_fc_t *p, const int8_t *in, int8_t *out, int16_t *scratch);

typedef struct {
    int32_t rows, depth;
    int32_t input_multiplier, input_left_shift, diff_min;
} kws_nn_softmax_t;

/* SOFTMAX over the last axis to int8 with scale 1/256 and zero point -128; out may equal in. */
void kws_nn_softmax(const kws_nn_softmax_t *p, const int8_t *in, int8_t *out);

/* out[i] = table[in[i] + 128] for n values; in place allowed. The tables of LOGISTIC (TFLite's own reference is
   this lookup) and of tabulated SiLU / HARD_SWISH are computed at export. */
void kws_nn_lut(const int8_t *table, const int8_t *in, int8_t *out, int32_t n);

typedef struct {
    int32_t n, in1_zero_point, in2_zero_point, out_zero_point, multiplier, shift, act_min, act_max;
} kws_nn_mul_t;

/* MUL of two same-shape tensors (no broadcast); out may equal either input. */
void kws_nn_mul(const kws_nn_mul_t *p, const int8_t *in1, const int8_t *in2, int8_t *out);

typedef struct {
    int32_t n, in_zero_point, out_zero_point;
    int32_t output_multiplier, output_exponent, reluish_multiplier, reluish_exponent; /* Q15, from HardSwishPrepare */
} kws_nn_hard_swish_t;

/* HARD_SWISH, TFLite's int16 fixed-point reference; in place allowed. */
void kws_nn_hard_swish(const kws_nn_hard_swish_t *p, const int8_t *in, int8_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KWS_NN_H */
