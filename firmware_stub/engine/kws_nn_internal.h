/* Helpers shared by the kernel files (not part of the engine's interface). */
#ifndef KWS_NN_INTERNAL_H
#define KWS_NN_INTERNAL_H

#include <stdint.h>

#include "kws_nn.h"

/* A column pair holds the int16 receptive fields of two output pixels, group by group: for each group g of 4
   reduction indices, 4 values of pixel 0 then 4 of pixel 1 (int16 index 8 g + 4 pixel + slot). Within a group
   the order is 0, 2, 1, 3, so that one 32-bit word holds (x0, x2) and the next (x1, x3): the lanes SXTB16 makes
   of 4 weight bytes and of the same word rotated by 8. */
static inline int32_t kws_nn_slot(int32_t k) { return ((k >> 1) & 1) | ((k & 1) << 1); }
static inline int32_t kws_nn_index(int32_t k, int32_t pixel) { return ((k >> 2) << 3) + (pixel << 2) + kws_nn_slot(k); }

/* n int8 values -> pixel `pixel` (0 or 1) of a column pair of k4 (zeros beyond n). */
void kws_nn_column(const int8_t *x, int32_t n, int32_t k4, int16_t *pair, int32_t pixel);

/* Dot products of a column pair with the row pair `rows` (blocked layout of kws_nn.h), starting from bias[0..1]:
   acc = {pixel0.row0, pixel0.row1, pixel1.row0, pixel1.row1}. groups = k4 / 4 >= 1. */
void kws_nn_dot_2x2(const int16_t *pair, const int8_t *rows, int32_t groups, const int32_t *bias, int32_t acc[4]);

/* Output rows [y0, y1) of a CONV_2D into its output ring (p->out_ring rows). */
void kws_nn_conv_rows(const kws_nn_conv_t *p, const int8_t *in, int8_t *out, int32_t y0, int32_t y1, int16_t *scratch);

#endif /* KWS_NN_INTERNAL_H */
