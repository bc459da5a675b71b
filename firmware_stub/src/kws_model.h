/* The model runner: one small C interface with two backends, chosen at link time.
   tflm/kws_model_tflm.cpp  TensorFlow Lite Micro (Arduino, Mbed); needs the TFLM library and a generated
                            model_data.h/.c.
   host/kws_model_host_stub.c  HOST STUB, not a model: returns scores set by the test (silence by default). */
#ifndef KWS_MODEL_H
#define KWS_MODEL_H

#include <stdint.h>

#include "kws_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Loads the model and allocates its tensors from the static arena (KWS_ARENA_BYTES). Call once at start-up,
   before kws_model_invoke. Returns 0 on success, a negative code otherwise (the backend logs the reason). */
int kws_model_init(void);

/* Runs one inference. features: KWS_FEATURE_ELEMENTS int8 values (KWS_NUM_FRAMES frames of
   KWS_NUM_COEFFICIENTS, oldest first), quantized with KWS_INPUT_SCALE / KWS_INPUT_ZERO_POINT; read only.
   scores: caller-owned KWS_NUM_LABELS int8 outputs in label order (KWS_OUTPUT_SCALE / KWS_OUTPUT_ZERO_POINT).
   Returns 0 on success, negative on failure (scores then undefined). Blocking; tens to hundreds of ms on a
   Cortex-M4 depending on the model's MACs. */
int kws_model_invoke(const int8_t *features, int8_t *scores);

#ifdef __cplusplus
}
#endif

#endif /* KWS_MODEL_H */
