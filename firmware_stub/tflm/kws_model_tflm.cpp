// TensorFlow Lite Micro backend of kws_model.h (C++ only because TFLM is C++). For Arduino (library
// "Arduino_TensorFlowLite", tflite-micro-arduino-examples) and Mbed (TFLM sources in the project). It cannot be
// built in this repository (no TFLM sources here); the host build uses host/kws_model_host_stub.c instead.
// The model array comes from the export's model_data.h, named through the generated kws_model_binding.h; the
// op resolver registers exactly the ops listed in kws_settings.h (KWS_TFLM_OPS) and the arena is static, sized by
// KWS_ARENA_BYTES (the export's measured arena plus a margin). No heap: objects are placement-constructed.
#include <stdint.h>
#include <string.h>

#include <new>

#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/system_setup.h"
#include "tensorflow/lite/schema/schema_generated.h"

extern "C" {
#include "kws_model.h"
#include "kws_model_binding.h"
#include "kws_platform.h"
}

#if KWS_ARENA_BYTES <= 0
#error "kws_settings.h has no TFLM arena size: generate the settings with `kws export` (it measures the arena)"
#endif

namespace {

using Resolver = tflite::MicroMutableOpResolver<KWS_TFLM_NUM_OPS>;

alignas(16) uint8_t g_arena[KWS_ARENA_BYTES];
alignas(Resolver) uint8_t g_resolver_storage[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) uint8_t g_interpreter_storage[sizeof(tflite::MicroInterpreter)];
tflite::MicroInterpreter *g_interpreter = nullptr;
TfLiteTensor *g_input = nullptr;
TfLiteTensor *g_output = nullptr;

// The generated quantization must be the model's own: a mismatch silently ruins accuracy on the device.
bool same_quantization(const TfLiteTensor *t, float scale, int32_t zero_point) {
    const float diff = t->params.scale - scale;
    return t->params.zero_point == zero_point && diff < 1e-6f * scale && -diff < 1e-6f * scale;
}

}  // namespace

extern "C" int kws_model_init(void) {
    tflite::InitializeTarget();
    const tflite::Model *model = tflite::GetModel(KWS_MODEL_ARRAY);
    if (model->version() != TFLITE_SCHEMA_VERSION) {
        kws_platform_log("kws_model: model schema version differs from this TFLM library");
        return -1;
    }
    Resolver *resolver = new (g_resolver_storage) Resolver();
#define KWS_ADD_OP(method) \
    if (resolver->method() != kTfLiteOk) return -2;
    KWS_TFLM_OPS(KWS_ADD_OP)
#undef KWS_ADD_OP
    g_interpreter = new (g_interpreter_storage) tflite::MicroInterpreter(model, *resolver, g_arena, KWS_ARENA_BYTES);
    if (g_interpreter->AllocateTensors() != kTfLiteOk) {
        kws_platform_log("kws_model: AllocateTensors failed: KWS_ARENA_BYTES too small or an op is missing");
        return -3;
    }
    g_input = g_interpreter->input(0);
    g_output = g_interpreter->output(0);
    if (g_input->type != kTfLiteInt8 || g_input->bytes != KWS_FEATURE_ELEMENTS || g_output->type != kTfLiteInt8 ||
        g_output->bytes != KWS_NUM_LABELS) {
        kws_platform_log("kws_model: model input/output shape or type differs from kws_settings.h");
        return -4;
    }
    if (!same_quantization(g_input, KWS_INPUT_SCALE, KWS_INPUT_ZERO_POINT) ||
        !same_quantization(g_output, KWS_OUTPUT_SCALE, KWS_OUTPUT_ZERO_POINT)) {
        kws_platform_log("kws_model: model quantization differs from kws_settings.h: regenerate with kws export");
        return -5;
    }
    return 0;
}

extern "C" int kws_model_invoke(const int8_t *features, int8_t *scores) {
    if (g_interpreter == nullptr) return -1;
    memcpy(g_input->data.int8, features, KWS_FEATURE_ELEMENTS);
    if (g_interpreter->Invoke() != kTfLiteOk) return -2;
    memcpy(scores, g_output->data.int8, KWS_NUM_LABELS);
    return 0;
}
