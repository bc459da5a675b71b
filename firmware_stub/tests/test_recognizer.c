/* Recognizer rules with hand-worked score sequences (zero point -128, threshold 100 steps). */
#include <string.h>

#include "kws_recognizer.h"
#include "kws_tables.h"
#include "kws_test.h"

static kws_recognizer_t s_rec;

static int first_keyword(void) {
    for (int k = 0; k < KWS_NUM_LABELS; ++k) {
        if (kws_label_is_keyword[k]) return k;
    }
    return -1;
}

static void setup(uint32_t window_ms, uint32_t min_count, uint32_t suppression_ms) {
    kws_recognizer_config_t cfg = {window_ms, 100, suppression_ms, min_count, -128};
    kws_recognizer_init(&s_rec, &cfg);
}

static kws_recognition_t feed(int label, int score, uint32_t t) {
    int8_t scores[KWS_NUM_LABELS];
    kws_recognition_t res;
    memset(scores, -128, sizeof(scores));
    scores[label] = (int8_t)score;
    CHECK(kws_recognizer_process(&s_rec, scores, t, &res) == 0);
    return res;
}

static void test_needs_min_count(void) {
    int kw = first_keyword();
    setup(1000, 3, 0);
    CHECK(!feed(kw, 127, 0).is_new);
    CHECK(!feed(kw, 127, 100).is_new);
    kws_recognition_t r = feed(kw, 127, 200);
    CHECK(r.is_new && r.label == kw && r.score_q == 255);
}

static void test_average_against_threshold(void) {
    int kw = first_keyword();
    setup(1000, 1, 0);
    /* Steps above zero point: 227 then -28 + 128 = 100 ... average (255 + 0) / 2 = 127 >= 100. */
    CHECK(feed(kw, 127, 0).is_new);
    setup(1000, 2, 0);
    feed(kw, -28, 0); /* 100 steps */
    kws_recognition_t r = feed(kw, -29, 10); /* (100 + 99) / 2 = 99 (truncated) < 100 */
    CHECK(!r.is_new && r.score_q == 99);
}

static void test_suppression(void) {
    int kw = first_keyword();
    setup(1000, 1, 1500);
    CHECK(feed(kw, 127, 1000).is_new);
    CHECK(!feed(kw, 127, 1200).is_new);
    CHECK(!feed(kw, 127, 2499).is_new);
    CHECK(feed(kw, 127, 2500).is_new);
}

static void test_non_keywords_never_detected(void) {
    setup(1000, 1, 0);
    for (int k = 0; k < KWS_NUM_LABELS; ++k) {
        if (!kws_label_is_keyword[k]) CHECK(!feed(k, 127, (uint32_t)k * 10).is_new);
    }
}

static void test_window_expires_old_scores(void) {
    int kw = first_keyword();
    setup(500, 1, 0);
    feed(kw, 127, 0);
    kws_recognition_t r = feed(0, 127, 500); /* the entry at t=0 is 500 ms old: out of the window */
    CHECK(r.label == 0 && r.score_q == 255);
}

static void test_time_going_backwards_is_an_error(void) {
    int8_t scores[KWS_NUM_LABELS] = {0};
    kws_recognition_t res;
    setup(1000, 1, 0);
    feed(0, 0, 100);
    CHECK(kws_recognizer_process(&s_rec, scores, 50, &res) == -1 && res.label == -1);
}

const kws_test_case_t kws_recognizer_tests[] = {
    {"needs_min_count", test_needs_min_count},
    {"average_against_threshold", test_average_against_threshold},
    {"suppression", test_suppression},
    {"non_keywords_never_detected", test_non_keywords_never_detected},
    {"window_expires_old_scores", test_window_expires_old_scores},
    {"time_going_backwards_is_an_error", test_time_going_backwards_is_an_error},
    {NULL, NULL},
};
