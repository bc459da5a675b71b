/* Frontend self-test on QEMU mps2-an386 (semihosting): one second of a 1 kHz tone through the streaming frontend,
   checks that every MFCC is finite and that silence gives the hand value c0 = sqrt(M) ln(offset), and prints the
   instructions per frame (SysTick under -icount shift=0, see below). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "kws_frontend.h"

static kws_frontend_t s_fe;
static int16_t s_clip[KWS_CLIP_SAMPLES];

/* SysTick on the core clock as a 24-bit down counter. QEMU's mps2-an386 clocks it at 25 MHz of virtual time, and
   with -icount shift=0 virtual time advances 1 ns per instruction: instructions = ticks * 1e9 / 25e6. */
#define SYST_CSR (*(volatile unsigned int *)0xE000E010u)
#define SYST_RVR (*(volatile unsigned int *)0xE000E014u)
#define SYST_CVR (*(volatile unsigned int *)0xE000E018u)
#define KWS_QEMU_SYSCLK_HZ 25000000u

static unsigned int systick_start(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
    return SYST_CVR;
}

int main(void) {
    float mfcc[KWS_NUM_COEFFICIENTS];
    int frames = 0, bad = 0;
    for (int n = 0; n < KWS_CLIP_SAMPLES; ++n) {
        s_clip[n] = (int16_t)(16000.0f * sinf(6.2831853f * 1000.0f * (float)n / KWS_SAMPLE_RATE_HZ));
    }
    kws_frontend_init(&s_fe);
    const unsigned int start = systick_start();
    for (int h = 0; h < KWS_CLIP_SAMPLES / KWS_HOP_SAMPLES; ++h) {
        if (kws_frontend_push_hop(&s_fe, &s_clip[h * KWS_HOP_SAMPLES], mfcc)) {
            frames++;
            for (int c = 0; c < KWS_NUM_COEFFICIENTS; ++c) bad += !isfinite(mfcc[c]);
        }
    }
    const unsigned int ticks = (start - SYST_CVR) & 0xFFFFFFu; /* < 0.67 s of virtual time: no wrap */
    const unsigned long long per_frame = (unsigned long long)ticks * (1000000000u / KWS_QEMU_SYSCLK_HZ) / frames;
    static const int16_t zeros[KWS_WINDOW_SAMPLES];
    kws_frontend_compute(&s_fe, zeros, mfcc);
    const float c0 = sqrtf((float)KWS_NUM_MEL_BINS) * logf(KWS_LOG_OFFSET);
    const int silence_ok = fabsf(mfcc[0] - c0) < 1e-3f;
    printf("kws selftest: %d frames, %d non-finite, silence c0 %s, ~%llu instructions/frame\n",
           frames, bad, silence_ok ? "ok" : "WRONG", per_frame);
    return (frames == KWS_NUM_FRAMES && bad == 0 && silence_ok) ? 0 : 1;
}
