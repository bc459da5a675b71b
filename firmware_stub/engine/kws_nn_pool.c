/* AVERAGE_POOL_2D as TFLite's reference integer kernel: the int32 sum over the window clipped to the input,
   divided by the clipped count rounding halves away from zero, clamped. Channel-outer for a global pool, so that
   out[c] (which overwrites input byte c when in place) is written after its channel's last read. DSP path: four
   channels at once in two SXTAB16 lane pairs, when the window cannot overflow an int16 lane. */
#include "kws_nn.h"

#include "kws_nn_arith.h"
#include "kws_nn_simd.h"

static int32_t average(int32_t acc, int32_t count) {
    return acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
}

static void window(const kws_nn_pool_t *p, const int8_t *in, int32_t oy, int32_t ox, int8_t *dst) {
    const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
    const int32_t fy0 = y0 < 0 ? -y0 : 0, fx0 = x0 < 0 ? -x0 : 0;
    const int32_t fy1 = p->filter_h < p->in_h - y0 ? p->filter_h : p->in_h - y0;
    const int32_t fx1 = p->filter_w < p->in_w - x0 ? p->filter_w : p->in_w - x0;
    const int32_t count = (fy1 - fy0) * (fx1 - fx0);
    int32_t c = 0;
#if KWS_NN_DSP
    if (count * 128 <= 32767) {
        for (; c + 4 <= p->c; c += 4) {
            uint32_t even = 0, odd = 0;
            for (int32_t fy = fy0; fy < fy1; ++fy) {
                const int8_t *src = in + ((y0 + fy) * p->in_w + x0 + fx0) * p->c + c;
                for (int32_t fx = fx0; fx < fx1; ++fx, src += p->c) {
                    const uint32_t v = kws_nn_read32(src);
                    even = kws_sxtab16(even, v);
                    odd = kws_sxtab16(odd, kws_ror8(v));
                }
            }
            dst[c] = kws_nn_clamp8(average((int16_t)(even & 0xFFFFu), count), p->act_min, p->act_max);
            dst[c + 1] = kws_nn_clamp8(average((int16_t)(odd & 0xFFFFu), count), p->act_min, p->act_max);
            dst[c + 2] = kws_nn_clamp8(average((int16_t)(even >> 16), count), p->act_min, p->act_max);
            dst[c + 3] = kws_nn_clamp8(average((int16_t)(odd >> 16), count), p->act_min, p->act_max);
        }
    }
#endif
    for (; c < p->c; ++c) {
        int32_t acc = 0;
        for (int32_t fy = fy0; fy < fy1; ++fy) {
            const int8_t *src = in + ((y0 + fy) * p->in_w + x0 + fx0) * p->c + c;
            for (int32_t fx = fx0; fx < fx1; ++fx, src += p->c) acc += *src;
        }
        dst[c] = kws_nn_clamp8(average(acc, count), p->act_min, p->act_max);
    }
}

void kws_nn_avgpool(const kws_nn_pool_t *p, const int8_t *in, int8_t *out) {
    for (int32_t oy = 0; oy < p->out_h; ++oy) {
        for (int32_t ox = 0; ox < p->out_w; ++ox) window(p, in, oy, ox, out + (oy * p->out_w + ox) * p->c);
    }
}
