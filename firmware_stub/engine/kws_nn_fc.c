/* FULLY_CONNECTED. Per-channel int8 weights: TFLite's reference FullyConnectedPerChannel scales each int32
   accumulator in double, round(acc * (input_scale * filter_scale / output_scale)), halves away from zero; the
   scale is that double, computed at export. Per-tensor weights: the integer MultiplyByQuantizedMultiplier path.
   The dot products reuse the conv inner kernel (the one input vector as both pixels of the pair). */
#include <math.h>

#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_internal.h"

static int32_t scaled(const kws_nn_fc_t *p, int32_t acc, int32_t o) {
    if (p->scale) return (int32_t)round((double)acc * p->scale[o]);
    return kws_nn_requantize(acc, p->multiplier[0], p->shift[0]);
}

void kws_nn_fc(const kws_nn_fc_t *p, const int8_t *in, int8_t *out, int16_t *scratch) {
    int32_t acc[4];
    kws_nn_column(in, p->in_n, p->k4, scratch, 0);
    kws_nn_column(in, p->in_n, p->k4, scratch, 1);
    for (int32_t o = 0; o < p->out_n; o += 2) {
        kws_nn_dot_2x2(scratch, p->weights + o * p->k4, p->k4 >> 2, p->bias + o, acc);
        for (int32_t j = 0; j < 2 && o + j < p->out_n; ++j) {
            out[o + j] = kws_nn_clamp8(scaled(p, acc[j], o + j) + p->out_zero_point, p->act_min, p->act_max);
        }
    }
}
