/* A CONV_2D streamed row by row into the DEPTHWISE_CONV_2D that reads it: only the depthwise kernel's height of
   conv rows is ever kept (a ring), so the peak RAM of a DS-CNN's first block, the widest tensor of the network
   (the conv's whole output), falls to a few rows. Each conv row is computed exactly once, just before the first
   depthwise output row whose window reaches it, and overwritten only once no later depthwise row reads it
   (ring rows = kernel height: the rows a window needs next start at least one stride later). The arithmetic of
   both layers is their own kernels', so the result is bit for bit that of the two layers run apart. A tabulated
   activation between them (SiLU, hard swish) is applied to each ring row as it is computed. */
#include "kws_nn.h"

#include "kws_nn_internal.h"

void kws_nn_conv_depthwise(const kws_nn_conv_t *conv, const int8_t *table, const kws_nn_depthwise_t *dw,
                           const int8_t *in, int8_t *ring, int8_t *out, int16_t *scratch) {
    const int32_t row = dw->out_w * dw->c, rows_in = dw->in_h, ring_row = conv->out_w * conv->out_c;
    int32_t ready = 0; /* conv rows [0, ready) have been computed */
    for (int32_t oy = 0; oy < dw->out_h; ++oy) {
        int32_t need = oy * dw->stride_h - dw->pad_top + dw->kernel_h; /* rows [.., need) are read by row oy */
        need = need < rows_in ? need : rows_in;
        if (need > ready) {
            kws_nn_conv_rows(conv, in, ring, ready, need, scratch);
            for (int32_t y = ready; table && y < need; ++y) { /* the activation, in place, row by row */
                int8_t *r = ring + (y % conv->out_ring) * ring_row;
                kws_nn_lut(table, r, r, ring_row);
            }
            ready = need;
        }
        kws_nn_depthwise_row(dw, ring, oy, out + oy * row);
    }
}
