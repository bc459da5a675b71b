/* HOST STUB model backend (not a model): kws_model_invoke returns fixed scores that a test sets, so the app and
   recognizer can be tested on the host without TensorFlow Lite Micro. */
#ifndef KWS_MODEL_HOST_STUB_H
#define KWS_MODEL_HOST_STUB_H

#include <stdint.h>

#include "kws_model.h"

/* Scores (KWS_NUM_LABELS int8, copied) that every following kws_model_invoke returns. Default after
   kws_model_init: label 0 at 127, every other label at -128. */
void kws_model_stub_set_scores(const int8_t *scores);

/* Number of kws_model_invoke calls since kws_model_init, and a copy of the last input (KWS_FEATURE_ELEMENTS). */
uint32_t kws_model_stub_invocations(void);
const int8_t *kws_model_stub_last_input(void);

#endif /* KWS_MODEL_HOST_STUB_H */
