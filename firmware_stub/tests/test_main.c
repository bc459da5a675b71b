/* Host unit tests of the firmware roles: `make -C firmware_stub test`. Exit status = number of failed tests. */
#include <string.h>

#include "kws_test.h"

int kws_test_current_failed;

static void run(const kws_test_case_t *cases, int *passed, int *failed) {
    for (; cases->name; ++cases) {
        kws_test_current_failed = 0;
        cases->fn();
        if (kws_test_current_failed) {
            fprintf(stderr, "FAIL %s\n", cases->name);
            ++*failed;
        } else {
            ++*passed;
        }
    }
}

int main(void) {
    int passed = 0, failed = 0;
    run(kws_frontend_tests, &passed, &failed);
    run(kws_ring_tests, &passed, &failed);
    run(kws_recognizer_tests, &passed, &failed);
    run(kws_app_tests, &passed, &failed);
    printf("%d passed, %d failed\n", passed, failed);
    return failed;
}
