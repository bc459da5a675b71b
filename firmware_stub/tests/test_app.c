/* The wired application with the HOST STUB model and the host platform double: inference schedule, timestamps,
   the model input equals the frontend's frames, detections reach the responder. */
#include <string.h>

#include "kws_app.h"
#include "kws_frontend.h"
#include "kws_model_host_stub.h"
#include "kws_platform_host.h"
#include "kws_tables.h"
#include "kws_test.h"

#define TWO_SECONDS (2 * KWS_SAMPLE_RATE_HZ)

static int16_t s_audio[TWO_SECONDS];

/* Feeds audio in blocks of 1000 samples (like a PDM callback), running the loop after each block. */
static int stream(const int16_t *audio, uint32_t n) {
    int inferences = 0;
    for (uint32_t i = 0; i < n; i += 1000) {
        kws_platform_host_push(&audio[i], n - i < 1000 ? n - i : 1000);
        int got = kws_loop();
        CHECK(got >= 0);
        inferences += got;
    }
    return inferences;
}

static void test_schedule_and_input(void) {
    static kws_frontend_t fe;
    static int8_t expected[KWS_FEATURE_ELEMENTS];
    uint32_t lcg = 7u;
    for (int i = 0; i < TWO_SECONDS; ++i) {
        lcg = lcg * 1664525u + 1013904223u;
        s_audio[i] = (int16_t)(lcg >> 18);
    }
    CHECK(kws_setup() == 0);
    stream(s_audio, TWO_SECONDS);
    /* Frames f = 0.. end at sample 320 f + 640; inferences at the full ring (f = 48) then every period. */
    uint32_t frames = TWO_SECONDS / KWS_HOP_SAMPLES - (KWS_WINDOW_SAMPLES / KWS_HOP_SAMPLES - 1);
    uint32_t first = KWS_NUM_FRAMES - 1 > KWS_INFERENCE_PERIOD_HOPS - 1 ? KWS_NUM_FRAMES - 1 : KWS_INFERENCE_PERIOD_HOPS - 1;
    uint32_t expect = 1 + (frames - 1 - first) / KWS_INFERENCE_PERIOD_HOPS;
    CHECK(kws_model_stub_invocations() == expect);
    CHECK(kws_platform_host_response_count() == expect);
    const kws_host_response_t *r = kws_platform_host_responses();
    uint32_t last_f = first + (expect - 1) * KWS_INFERENCE_PERIOD_HOPS;
    CHECK(r[0].time_ms == (first * KWS_HOP_SAMPLES + KWS_WINDOW_SAMPLES) * 1000u / KWS_SAMPLE_RATE_HZ);
    CHECK(r[expect - 1].time_ms == (last_f * KWS_HOP_SAMPLES + KWS_WINDOW_SAMPLES) * 1000u / KWS_SAMPLE_RATE_HZ);
    CHECK(r[0].label == 0 && !r[0].is_new); /* the stub's default scores: silence */
    /* The last model input is the quantized MFCCs of the 49 windows ending at last_f, computed directly. */
    kws_frontend_init(&fe);
    for (int f = 0; f < KWS_NUM_FRAMES; ++f) {
        float mfcc[KWS_NUM_COEFFICIENTS];
        kws_frontend_compute(&fe, &s_audio[(last_f - KWS_NUM_FRAMES + 1 + f) * KWS_HOP_SAMPLES], mfcc);
        kws_quantize_n(mfcc, &expected[f * KWS_NUM_COEFFICIENTS], KWS_NUM_COEFFICIENTS, KWS_INPUT_SCALE,
                       KWS_INPUT_ZERO_POINT);
    }
    CHECK(memcmp(expected, kws_model_stub_last_input(), sizeof(expected)) == 0);
}

static void test_keyword_scores_reach_responder(void) {
    int8_t scores[KWS_NUM_LABELS];
    int kw = -1, detections = 0;
    for (int k = KWS_NUM_LABELS - 1; k >= 0; --k) {
        if (kws_label_is_keyword[k]) kw = k;
    }
    CHECK(kws_setup() == 0);
    memset(scores, -128, sizeof(scores));
    scores[kw] = 127;
    kws_model_stub_set_scores(scores);
    memset(s_audio, 0, sizeof(s_audio));
    CHECK(stream(s_audio, TWO_SECONDS) + stream(s_audio, TWO_SECONDS) > 0);
    for (uint32_t i = 0; i < kws_platform_host_response_count(); ++i) {
        const kws_host_response_t *r = &kws_platform_host_responses()[i];
        CHECK(r->label == kw);
        detections += r->is_new;
    }
    CHECK(detections >= 1);
    CHECK(kws_app_dropped_samples() == 0);
}

const kws_test_case_t kws_app_tests[] = {
    {"schedule_and_input", test_schedule_and_input},
    {"keyword_scores_reach_responder", test_keyword_scores_reach_responder},
    {NULL, NULL},
};
