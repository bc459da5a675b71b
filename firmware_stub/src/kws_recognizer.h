/* Turns the stream of int8 model scores into keyword detections: average each label's score over the inferences
   of the last window_ms, report the top label when it is a keyword, its average reaches the threshold, at least
   min_count inferences are averaged, and suppression_ms have passed since the last detection. Integer arithmetic
   only, so kws.stream.Recognizer reproduces it exactly. Fixed-size queue, no heap. */
#ifndef KWS_RECOGNIZER_H
#define KWS_RECOGNIZER_H

#include <stdint.h>

#include "kws_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint32_t window_ms;      /* averaging window (KWS_RECOGNIZER_WINDOW_MS) */
    int32_t threshold_q;     /* detection threshold in score steps above zero_point (KWS_RECOGNIZER_THRESHOLD_Q) */
    uint32_t suppression_ms; /* quiet time after a detection (KWS_RECOGNIZER_SUPPRESSION_MS) */
    uint32_t min_count;      /* inferences needed in the window (KWS_RECOGNIZER_MIN_COUNT) */
    int32_t zero_point;      /* int8 output zero point of the model (KWS_OUTPUT_ZERO_POINT) */
} kws_recognizer_config_t;

typedef struct {
    uint32_t time_ms;
    int8_t scores[KWS_NUM_LABELS];
} kws_score_entry_t;

/* Recognizer state; caller-owned (static storage), one per stream. */
typedef struct {
    kws_recognizer_config_t cfg;
    kws_score_entry_t queue[KWS_RECOGNIZER_QUEUE];
    uint32_t head;  /* index of the oldest entry */
    uint32_t count; /* entries held */
    uint32_t last_time_ms;
    uint32_t last_detection_ms;
    int has_time;
    int has_detection;
} kws_recognizer_t;

typedef struct {
    int32_t label;   /* top label index over the window (-1 on error) */
    int32_t score_q; /* its average score in steps above zero_point: probability ~ score_q * output scale */
    int is_new;      /* 1 exactly when this call is a detection */
} kws_recognition_t;

/* The generated defaults of kws_settings.h. */
kws_recognizer_config_t kws_recognizer_default_config(void);

/* Resets r with configuration cfg (copied). */
void kws_recognizer_init(kws_recognizer_t *r, const kws_recognizer_config_t *cfg);

/* Adds the scores[KWS_NUM_LABELS] of one inference whose newest audio ends at time_ms (audio time, ms, must not
   decrease) and fills out. Returns 0, or -1 (out->label = -1, nothing added) when time_ms went backwards.
   The queue holds KWS_RECOGNIZER_QUEUE entries; when full the oldest is dropped. O(queue * labels). */
int kws_recognizer_process(kws_recognizer_t *r, const int8_t *scores, uint32_t time_ms, kws_recognition_t *out);

#ifdef __cplusplus
}
#endif

#endif /* KWS_RECOGNIZER_H */
