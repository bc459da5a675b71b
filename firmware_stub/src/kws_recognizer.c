#include "kws_recognizer.h"

#include <string.h>

#include "kws_tables.h"

kws_recognizer_config_t kws_recognizer_default_config(void) {
    kws_recognizer_config_t cfg;
    cfg.window_ms = KWS_RECOGNIZER_WINDOW_MS;
    cfg.threshold_q = KWS_RECOGNIZER_THRESHOLD_Q;
    cfg.suppression_ms = KWS_RECOGNIZER_SUPPRESSION_MS;
    cfg.min_count = KWS_RECOGNIZER_MIN_COUNT;
    cfg.zero_point = KWS_OUTPUT_ZERO_POINT;
    return cfg;
}

void kws_recognizer_init(kws_recognizer_t *r, const kws_recognizer_config_t *cfg) {
    memset(r, 0, sizeof(*r));
    r->cfg = *cfg;
}

static void push(kws_recognizer_t *r, const int8_t *scores, uint32_t time_ms) {
    if (r->count == KWS_RECOGNIZER_QUEUE) { /* full: drop the oldest */
        r->head = (r->head + 1) % KWS_RECOGNIZER_QUEUE;
        r->count--;
    }
    kws_score_entry_t *e = &r->queue[(r->head + r->count) % KWS_RECOGNIZER_QUEUE];
    e->time_ms = time_ms;
    memcpy(e->scores, scores, KWS_NUM_LABELS);
    r->count++;
}

int kws_recognizer_process(kws_recognizer_t *r, const int8_t *scores, uint32_t time_ms, kws_recognition_t *out) {
    int32_t sums[KWS_NUM_LABELS] = {0};
    out->label = -1;
    out->score_q = 0;
    out->is_new = 0;
    if (r->has_time && time_ms < r->last_time_ms) return -1;
    r->has_time = 1;
    r->last_time_ms = time_ms;
    push(r, scores, time_ms);
    /* Keep the entries of the last window_ms: drop those with entry.time + window <= now (the newest stays). */
    while (r->count > 1 && (uint64_t)r->queue[r->head].time_ms + r->cfg.window_ms <= time_ms) {
        r->head = (r->head + 1) % KWS_RECOGNIZER_QUEUE;
        r->count--;
    }
    for (uint32_t i = 0; i < r->count; ++i) {
        const int8_t *s = r->queue[(r->head + i) % KWS_RECOGNIZER_QUEUE].scores;
        for (int k = 0; k < KWS_NUM_LABELS; ++k) sums[k] += (int32_t)s[k] - r->cfg.zero_point;
    }
    int32_t top = 0;
    for (int k = 1; k < KWS_NUM_LABELS; ++k) {
        if (sums[k] > sums[top]) top = k; /* first maximum wins ties */
    }
    out->label = top;
    out->score_q = sums[top] / (int32_t)r->count; /* C division truncates toward zero */
    if (r->count < r->cfg.min_count || out->score_q < r->cfg.threshold_q || !kws_label_is_keyword[top]) return 0;
    if (r->has_detection && time_ms - r->last_detection_ms < r->cfg.suppression_ms) return 0;
    r->has_detection = 1;
    r->last_detection_ms = time_ms;
    out->is_new = 1;
    return 0;
}
