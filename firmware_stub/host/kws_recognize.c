/* kws_recognize [--window-ms W] [--threshold-q T] [--suppression-ms S] [--min-count C] [--zero-point Z] SCORES
   Feeds a score file through the C recognizer: each line "TIME_MS S0 S1 ... S(KWS_NUM_LABELS-1)" (int8 scores).
   Prints one line "TIME_MS LABEL_INDEX SCORE_Q" per detection, and "error TIME_MS" when time goes backwards.
   Defaults are the generated KWS_RECOGNIZER_* settings. Used to check kws.stream.Recognizer against this one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kws_recognizer.h"

int main(int argc, char **argv) {
    kws_recognizer_config_t cfg = kws_recognizer_default_config();
    kws_recognizer_t rec;
    int a = 1;
    for (; a + 1 < argc && !strncmp(argv[a], "--", 2); a += 2) {
        long v = strtol(argv[a + 1], NULL, 10);
        if (!strcmp(argv[a], "--window-ms")) cfg.window_ms = (uint32_t)v;
        else if (!strcmp(argv[a], "--threshold-q")) cfg.threshold_q = (int32_t)v;
        else if (!strcmp(argv[a], "--suppression-ms")) cfg.suppression_ms = (uint32_t)v;
        else if (!strcmp(argv[a], "--min-count")) cfg.min_count = (uint32_t)v;
        else if (!strcmp(argv[a], "--zero-point")) cfg.zero_point = (int32_t)v;
        else break;
    }
    if (a != argc - 1) {
        fprintf(stderr, "usage: kws_recognize [--window-ms W] [--threshold-q T] [--suppression-ms S] "
                        "[--min-count C] [--zero-point Z] SCORES\n");
        return 2;
    }
    FILE *f = fopen(argv[a], "r");
    if (!f) {
        fprintf(stderr, "kws_recognize: %s: cannot open\n", argv[a]);
        return 2;
    }
    kws_recognizer_init(&rec, &cfg);
    unsigned long t;
    while (fscanf(f, "%lu", &t) == 1) {
        int8_t scores[KWS_NUM_LABELS];
        for (int k = 0; k < KWS_NUM_LABELS; ++k) {
            int v;
            if (fscanf(f, "%d", &v) != 1) {
                fprintf(stderr, "kws_recognize: %s: need %d scores after time %lu\n", argv[a], KWS_NUM_LABELS, t);
                fclose(f);
                return 2;
            }
            scores[k] = (int8_t)v;
        }
        kws_recognition_t res;
        if (kws_recognizer_process(&rec, scores, (uint32_t)t, &res) != 0) printf("error %lu\n", t);
        else if (res.is_new) printf("%lu %d %d\n", t, (int)res.label, (int)res.score_q);
    }
    fclose(f);
    return 0;
}
