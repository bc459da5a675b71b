/* Host runner of a generated network (tests): reads int8 inputs from stdin, KWS_NET_INPUT_ELEMENTS bytes per
   inference, and writes KWS_NET_OUTPUT_ELEMENTS int8 bytes per inference to stdout. Built with -DKWS_NET_DUMP,
   every layer's output is written too, in layer order, before the final output. Exit 0, or 1 on a short read. */
#include <stdio.h>

#include "kws_model.h"
#include "kws_net.h"

void kws_net_dump(int layer, const int8_t *output, int32_t n);

void kws_net_dump(int layer, const int8_t *output, int32_t n) {
    (void)layer;
    fwrite(output, 1, (size_t)n, stdout);
}

int main(void) {
    static int8_t input[KWS_NET_INPUT_ELEMENTS];
    int8_t output[KWS_NET_OUTPUT_ELEMENTS];
    size_t got;
    if (kws_model_init() != 0) return 1;
    while ((got = fread(input, 1, sizeof input, stdin)) == sizeof input) {
        if (kws_model_invoke(input, output) != 0) return 1;
        fwrite(output, 1, sizeof output, stdout);
    }
    return got == 0 ? 0 : 1;
}
