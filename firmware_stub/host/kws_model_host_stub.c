/* HOST STUB backend: fixed scores, for host tests only. The device backend is tflm/kws_model_tflm.cpp. */
#include "kws_model_host_stub.h"

#include <string.h>

static int8_t s_scores[KWS_NUM_LABELS];
static int8_t s_last_input[KWS_FEATURE_ELEMENTS];
static uint32_t s_invocations;

int kws_model_init(void) {
    memset(s_scores, -128, sizeof(s_scores));
    s_scores[0] = 127;
    s_invocations = 0;
    return 0;
}

int kws_model_invoke(const int8_t *features, int8_t *scores) {
    memcpy(s_last_input, features, sizeof(s_last_input));
    memcpy(scores, s_scores, sizeof(s_scores));
    s_invocations++;
    return 0;
}

void kws_model_stub_set_scores(const int8_t *scores) { memcpy(s_scores, scores, sizeof(s_scores)); }

uint32_t kws_model_stub_invocations(void) { return s_invocations; }

const int8_t *kws_model_stub_last_input(void) { return s_last_input; }
