/* The application: audio provider -> frontend -> feature ring -> model every KWS_INFERENCE_PERIOD_HOPS hops ->
   recognizer -> responder. All state is static in kws_app.c (sizes from kws_settings.h); no heap. */
#ifndef KWS_APP_H
#define KWS_APP_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Initializes frontend, rings, model and recognizer and starts the microphone. Call once (Arduino setup()).
   Returns 0, or a negative code after logging the reason through kws_platform_log. */
int kws_setup(void);

/* Processes every complete hop of audio available, running the model each KWS_INFERENCE_PERIOD_HOPS hops of
   audio time once a full input is buffered. Call repeatedly (Arduino loop()); returns the number of inferences
   run (0 when no new audio), or a negative code if the model failed. Audio lost to a slow loop is counted in
   kws_app_dropped_samples(). */
int kws_loop(void);

/* Samples the loop could not keep up with since kws_setup (gaps in the stream). */
uint32_t kws_app_dropped_samples(void);

#ifdef __cplusplus
}
#endif

#endif /* KWS_APP_H */
