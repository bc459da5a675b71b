/* A tiny C test runner: CHECK() records a failure and goes on; run_tests() prints "N passed, M failed". */
#ifndef KWS_TEST_H
#define KWS_TEST_H

#include <stdio.h>

extern int kws_test_current_failed;

#define CHECK(cond)                                                                  \
    do {                                                                             \
        if (!(cond)) {                                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            kws_test_current_failed = 1;                                             \
        }                                                                            \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} kws_test_case_t;

/* Test cases of each file (defined there). */
extern const kws_test_case_t kws_frontend_tests[];
extern const kws_test_case_t kws_ring_tests[];
extern const kws_test_case_t kws_recognizer_tests[];
extern const kws_test_case_t kws_app_tests[];

#endif /* KWS_TEST_H */
