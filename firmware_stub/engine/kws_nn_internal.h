/* Helpers shared by the kernel files (not part of the engine's interface). */
#ifndef KWS_NN_INTERNAL_H
#define KWS_NN_INTERNAL_H

#include <stdint.h>

/* Slot of reduction index k inside its group of 4 in an int16 column: order 0, 2, 1, 3, so that one 32-bit word
   holds (x0, x2) and the next (x1, x3), matching SXTB16 of 4 weight bytes and of the same word rotated by 8. */
static inline int32_t kws_nn_slot(int32_t k) { return (k & ~3) + ((k & 1) << 1) + ((k >> 1) & 1); }

/* n int8 values -> an int16 column of k4 (zeros beyond n), in kws_nn_slot order. */
void kws_nn_column(const int8_t *x, int32_t n, int32_t k4, int16_t *column);

/* Dot products of two columns (c0, c1) with the row pair `rows` (blocked layout of kws_nn.h), starting from
   bias[0..1]: acc = {c0.row0, c0.row1, c1.row0, c1.row1}. groups = k4 / 4. */
void kws_nn_dot_2x2(const int16_t *c0, const int16_t *c1, const int8_t *rows, int32_t groups, const int32_t *bias,
                    int32_t acc[4]);

#endif /* KWS_NN_INTERNAL_H */
