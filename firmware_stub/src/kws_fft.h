/* Real FFT of KWS_FFT_SIZE float32 samples: a radix-2 implementation written here, or CMSIS-DSP's
   arm_rfft_fast_f32 when built with -DKWS_USE_CMSIS_DSP (needs CMSIS-DSP; not buildable on the host). */
#ifndef KWS_FFT_H
#define KWS_FFT_H

#include "kws_settings.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Prepares the FFT (a no-op for the built-in radix-2 path; the CMSIS instance otherwise).
   Call once before kws_rfft. Returns 0 on success, -1 if KWS_FFT_SIZE is unsupported. */
int kws_rfft_init(void);

/* Forward real FFT, X[k] = sum_n x[n] exp(-2 pi i k n / N), N = KWS_FFT_SIZE.
   in:  N real samples; DESTROYED (used as scratch). out: N floats, caller-owned, in CMSIS packed order:
   out[0] = Re X[0], out[1] = Re X[N/2], out[2k] = Re X[k], out[2k+1] = Im X[k] for 0 < k < N/2.
   in and out must not overlap. Unscaled. O(N log N); about 25 k float operations for N = 1024. */
void kws_rfft(float *in, float *out);

#ifdef __cplusplus
}
#endif

#endif /* KWS_FFT_H */
