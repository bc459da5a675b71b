/* FFT against a double-precision DFT, MFCC hand values, streaming = windowed, extreme inputs, quantization. */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kws_fft.h"
#include "kws_frontend.h"
#include "kws_test.h"

static kws_frontend_t s_fe;
static uint32_t s_lcg = 12345u;

static int16_t noise(void) {
    s_lcg = s_lcg * 1664525u + 1013904223u;
    return (int16_t)(s_lcg >> 16);
}

static int all_finite(const float *x, int n) {
    for (int i = 0; i < n; ++i) {
        if (!isfinite(x[i])) return 0;
    }
    return 1;
}

static void test_fft_matches_dft(void) {
    static float in[KWS_FFT_SIZE], x[KWS_FFT_SIZE], out[KWS_FFT_SIZE];
    CHECK(kws_rfft_init() == 0);
    for (int n = 0; n < KWS_FFT_SIZE; ++n) x[n] = in[n] = (float)noise() / 32768.0f;
    kws_rfft(in, out);
    double max_err = 0.0;
    for (int k = 0; k <= KWS_FFT_SIZE / 2; ++k) {
        double re = 0.0, im = 0.0;
        for (int n = 0; n < KWS_FFT_SIZE; ++n) {
            double a = -2.0 * 3.14159265358979323846 * (double)k * n / KWS_FFT_SIZE;
            re += x[n] * cos(a);
            im += x[n] * sin(a);
        }
        double got_re = k == 0 ? out[0] : k == KWS_FFT_SIZE / 2 ? out[1] : out[2 * k];
        double got_im = (k == 0 || k == KWS_FFT_SIZE / 2) ? 0.0 : out[2 * k + 1];
        double err = fabs(got_re - re) + fabs(got_im - im);
        if (err > max_err) max_err = err;
    }
    CHECK(max_err < 1e-3); /* |X| ~ 18 for this noise: float32 relative error ~1e-5 */
}

static void test_silence_gives_hand_c0(void) {
    static int16_t zeros[KWS_WINDOW_SAMPLES];
    float mfcc[KWS_NUM_COEFFICIENTS];
    CHECK(kws_frontend_init(&s_fe) == 0);
    kws_frontend_compute(&s_fe, zeros, mfcc);
    /* Every log-mel is ln(1e-6); orthonormal DCT row 0 is 1/sqrt(M): c0 = sqrt(M) ln(1e-6), others 0. */
    double c0 = sqrt((double)KWS_NUM_MEL_BINS) * log(1e-6);
    CHECK(fabs(mfcc[0] - c0) < 1e-3);
    for (int c = 1; c < KWS_NUM_COEFFICIENTS; ++c) CHECK(fabs(mfcc[c]) < 1e-3);
}

static void test_streaming_equals_windowed(void) {
    static int16_t audio[KWS_CLIP_SAMPLES];
    float streamed[KWS_NUM_COEFFICIENTS], direct[KWS_NUM_COEFFICIENTS];
    int frames = 0;
    for (int i = 0; i < KWS_CLIP_SAMPLES; ++i) audio[i] = noise() / 4;
    kws_frontend_init(&s_fe);
    for (int start = 0; start + KWS_HOP_SAMPLES <= KWS_CLIP_SAMPLES; start += KWS_HOP_SAMPLES) {
        if (!kws_frontend_push_hop(&s_fe, &audio[start], streamed)) continue;
        kws_frontend_t scratch;
        kws_frontend_compute(&scratch, &audio[frames * KWS_HOP_SAMPLES], direct);
        CHECK(memcmp(streamed, direct, sizeof(direct)) == 0);
        frames++;
    }
    CHECK(frames == KWS_NUM_FRAMES);
}

/* Ten minutes of changing input: noise, full-scale square wave, DC offset, silence; every frame finite. */
static void test_extreme_and_long_inputs_stay_finite(void) {
    int16_t hop[KWS_HOP_SAMPLES];
    float mfcc[KWS_NUM_COEFFICIENTS];
    int bad = 0, frames = 0;
    kws_frontend_init(&s_fe);
    for (int h = 0; h < 10 * 60 * KWS_SAMPLE_RATE_HZ / KWS_HOP_SAMPLES; ++h) {
        int kind = (h / 200) % 4;
        for (int i = 0; i < KWS_HOP_SAMPLES; ++i) {
            int phase = (h * KWS_HOP_SAMPLES + i) / 8;
            hop[i] = kind == 0 ? noise() : kind == 1 ? (phase & 1 ? 32767 : -32768) : kind == 2 ? 20000 : 0;
        }
        if (kws_frontend_push_hop(&s_fe, hop, mfcc)) {
            frames++;
            bad += !all_finite(mfcc, KWS_NUM_COEFFICIENTS);
        }
    }
    CHECK(bad == 0);
    CHECK(frames == 10 * 60 * KWS_SAMPLE_RATE_HZ / KWS_HOP_SAMPLES - (KWS_WINDOW_SAMPLES / KWS_HOP_SAMPLES - 1));
}

static void test_quantize_rounds_half_away_and_saturates(void) {
    CHECK(kws_quantize(0.5f, 1.0f, 0) == 1);
    CHECK(kws_quantize(-0.5f, 1.0f, 0) == -1);
    CHECK(kws_quantize(2.5f, 1.0f, 0) == 3);
    CHECK(kws_quantize(1.49f, 0.5f, -3) == 0); /* 2.98 -> 3, + (-3) */
    CHECK(kws_quantize(1e30f, 0.1f, 5) == 127);
    CHECK(kws_quantize(-1e30f, 0.1f, 5) == -128);
    CHECK(kws_quantize(200.0f, 1.0f, -100) == 100);
    CHECK(kws_quantize(NAN, 1.0f, 7) == 7);
}

const kws_test_case_t kws_frontend_tests[] = {
    {"fft_matches_dft", test_fft_matches_dft},
    {"silence_gives_hand_c0", test_silence_gives_hand_c0},
    {"streaming_equals_windowed", test_streaming_equals_windowed},
    {"extreme_and_long_inputs_stay_finite", test_extreme_and_long_inputs_stay_finite},
    {"quantize_rounds_half_away_and_saturates", test_quantize_rounds_half_away_and_saturates},
    {NULL, NULL},
};
