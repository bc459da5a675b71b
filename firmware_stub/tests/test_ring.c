/* Audio ring (order, wrap-around, overflow accounting) and feature ring (oldest-first copy of the last frames). */
#include <string.h>

#include "kws_ring.h"
#include "kws_test.h"

static kws_audio_ring_t s_audio;
static kws_feature_ring_t s_feat;

static void test_audio_ring_order_and_wrap(void) {
    int16_t buf[300], out[300];
    int ok = 1;
    kws_audio_ring_init(&s_audio);
    /* Writes and reads 3.3 capacities in chunks of 300: crosses the wrap point several times. */
    int16_t next_w = 0, next_r = 0;
    for (int round = 0; round < (KWS_AUDIO_RING_SAMPLES * 33) / 3000; ++round) {
        for (int i = 0; i < 300; ++i) buf[i] = next_w++;
        kws_audio_ring_write(&s_audio, buf, 300);
        CHECK(kws_audio_ring_read(&s_audio, out, 300) == 1);
        for (int i = 0; i < 300; ++i) ok &= out[i] == next_r++;
    }
    CHECK(ok);
    CHECK(kws_audio_ring_read(&s_audio, out, 1) == 0); /* empty */
    CHECK(s_audio.dropped == 0);
}

static void test_audio_ring_partial_read_waits(void) {
    int16_t buf[100] = {0}, out[200];
    kws_audio_ring_init(&s_audio);
    kws_audio_ring_write(&s_audio, buf, 100);
    CHECK(kws_audio_ring_read(&s_audio, out, 200) == 0);
    CHECK(kws_audio_ring_position(&s_audio) == 0);
    kws_audio_ring_write(&s_audio, buf, 100);
    CHECK(kws_audio_ring_read(&s_audio, out, 200) == 1);
    CHECK(kws_audio_ring_position(&s_audio) == 200);
}

static void test_audio_ring_overflow_skips_to_oldest_held(void) {
    int16_t s, out[4];
    kws_audio_ring_init(&s_audio);
    for (int i = 0; i < KWS_AUDIO_RING_SAMPLES + 500; ++i) {
        s = (int16_t)(i & 0x7fff);
        kws_audio_ring_write(&s_audio, &s, 1);
    }
    CHECK(kws_audio_ring_read(&s_audio, out, 4) == 1);
    CHECK(out[0] == 500 && out[3] == 503);
    CHECK(s_audio.dropped == 500);
    CHECK(kws_audio_ring_position(&s_audio) == 504); /* audio time counts the dropped samples */
}

static void test_feature_ring_keeps_last_frames_oldest_first(void) {
    static int8_t out[KWS_FEATURE_ELEMENTS];
    int8_t frame[KWS_NUM_COEFFICIENTS];
    kws_feature_ring_init(&s_feat);
    for (int f = 0; f < KWS_NUM_FRAMES + 11; ++f) {
        memset(frame, f, sizeof(frame));
        kws_feature_ring_push(&s_feat, frame);
        CHECK(kws_feature_ring_full(&s_feat) == (f + 1 >= KWS_NUM_FRAMES));
    }
    CHECK(kws_feature_ring_copy(&s_feat, out) == KWS_NUM_FRAMES);
    for (int f = 0; f < KWS_NUM_FRAMES; ++f) {
        CHECK(out[f * KWS_NUM_COEFFICIENTS] == f + 11);
        CHECK(out[f * KWS_NUM_COEFFICIENTS + KWS_NUM_COEFFICIENTS - 1] == f + 11);
    }
}

const kws_test_case_t kws_ring_tests[] = {
    {"audio_ring_order_and_wrap", test_audio_ring_order_and_wrap},
    {"audio_ring_partial_read_waits", test_audio_ring_partial_read_waits},
    {"audio_ring_overflow_skips_to_oldest_held", test_audio_ring_overflow_skips_to_oldest_held},
    {"feature_ring_keeps_last_frames_oldest_first", test_feature_ring_keeps_last_frames_oldest_first},
    {NULL, NULL},
};
