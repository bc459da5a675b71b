/* The whole firmware app on QEMU (semihosting), for the engine's end-to-end test and bench: each test clip's PCM
   (kws_clips.c, generated, in flash) goes through the audio ring, frontend, feature ring, generated network
   (kws_net.c) and recognizer exactly as on a board (kws_setup / kws_loop). Prints per clip the network's int8
   input (hex), its int8 scores and top-1 label, the instructions of the inference, of each layer and of the whole
   loop, and the stack high-water mark of kws_setup + kws_loop (painted RAM). Instructions come from SysTick under -icount shift=0 (virtual time advances
   a fixed step per instruction), calibrated against a loop of known length, since the SysTick clock differs
   between QEMU machines. Linked with -Wl,--wrap=kws_model_invoke: the wrapper records without touching the app. */
#include <stdio.h>
#include <string.h>

#include "kws_app.h"
#include "kws_clips.h"
#include "kws_model.h"
#include "kws_net.h"
#include "kws_platform.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define STACK_PAINT 0xC0FFEE11u

static kws_audio_ring_t *s_ring;
static int8_t s_features[KWS_FEATURE_ELEMENTS];
static int8_t s_scores[KWS_NUM_LABELS];
static uint32_t s_layer_ticks[KWS_NET_LAYERS];
static uint32_t s_mark, s_invoke_ticks, s_invokes;

static uint32_t now(void) { return SYST_CVR; }
static uint32_t since(uint32_t start) { return (start - SYST_CVR) & 0xFFFFFFu; } /* down counter, 24 bits */

int kws_platform_audio_start(kws_audio_ring_t *ring) {
    s_ring = ring;
    return 0;
}
void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new) {
    (void)time_ms, (void)label, (void)score_q, (void)is_new;
}
void kws_platform_log(const char *msg) { printf("kws log: %s\n", msg); }

void kws_net_profile(int layer) {
    const uint32_t t = now();
    s_layer_ticks[layer] += (s_mark - t) & 0xFFFFFFu;
    s_mark = t;
}

int __real_kws_model_invoke(const int8_t *features, int8_t *scores);
int __wrap_kws_model_invoke(const int8_t *features, int8_t *scores);
int __wrap_kws_model_invoke(const int8_t *features, int8_t *scores) {
    const uint32_t start = now();
    s_mark = start;
    const int r = __real_kws_model_invoke(features, scores);
    s_invoke_ticks += since(start);
    s_invokes++;
    memcpy(s_features, features, sizeof s_features);
    memcpy(s_scores, scores, sizeof s_scores);
    return r;
}

static void spin(uint32_t n) { __asm volatile(".syntax unified\n1: subs %0, %0, #1\n bne 1b" : "+r"(n) : : "cc"); }

void *sbrk(int increment); /* newlib */

/* Paint up to 64 KiB below the current stack (above the heap's break + 16 KiB for printf's buffers); returns the
   lowest painted word (0 if there is no room). The stack the app uses below `top` is what it leaves unpainted.
   (semihosting places the stack at the top of what QEMU maps, which may alias the RAM: never paint further.) */
static uint32_t *paint(uintptr_t top) {
    uintptr_t brk = ((uintptr_t)sbrk(0) + 16384u + 3u) & ~(uintptr_t)3u;
    if (top > 65536u && brk < top - 65536u) brk = top - 65536u;
    if (brk + 1024u >= top) return 0;
    for (uint32_t *p = (uint32_t *)brk; p < (uint32_t *)(top - 256u); ++p) *p = STACK_PAINT;
    return (uint32_t *)brk;
}

static uint32_t stack_used(const uint32_t *lo, uintptr_t top) {
    if (!lo) return 0;
    while (*lo == STACK_PAINT) ++lo;
    return (uint32_t)(top - (uintptr_t)lo);
}

static uintptr_t stack_pointer(void) {
    uintptr_t sp;
    __asm volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

int main(void) {
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0;
    SYST_CSR = 5u; /* enable, processor clock, no interrupt */
    const uint32_t calib_start = now();
    spin(1000000u); /* 2 instructions per iteration */
    const uint32_t calib_ticks = since(calib_start);
    printf("kws calibration ticks %lu for 2000000 instructions\n", (unsigned long)calib_ticks);
    uint32_t max_stack = 0;
    for (int c = 0; c < KWS_CLIP_COUNT; ++c) {
        memset(s_layer_ticks, 0, sizeof s_layer_ticks);
        s_invoke_ticks = s_invokes = 0;
        const uintptr_t top = stack_pointer();
        const uint32_t *painted = paint(top);
        const uint32_t start = now();
        if (kws_setup() != 0) return 2;
        kws_audio_ring_write(s_ring, kws_clips[c], KWS_CLIP_SAMPLES);
        const int n = kws_loop();
        const uint32_t loop_ticks = since(start);
        const uint32_t stack = stack_used(painted, top);
        if (stack > max_stack) max_stack = stack;
        int best = 0;
        for (int i = 1; i < KWS_NUM_LABELS; ++i) best = s_scores[i] > s_scores[best] ? i : best;
        printf("kws clip %d inferences %d label %d scores", c, n, best);
        for (int i = 0; i < KWS_NUM_LABELS; ++i) printf("%c%d", i ? ',' : ' ', s_scores[i]);
        printf(" features ");
        for (int i = 0; i < KWS_FEATURE_ELEMENTS; ++i) printf("%02x", (unsigned)(uint8_t)s_features[i]);
        printf("\nkws clip %d ticks inference %lu loop %lu layers", c, (unsigned long)s_invoke_ticks,
               (unsigned long)loop_ticks);
        for (int i = 0; i < KWS_NET_LAYERS; ++i) printf("%c%lu", i ? ',' : ' ', (unsigned long)s_layer_ticks[i]);
        printf("\n");
        if (n != 1) return 3;
    }
    printf("kws stack_bytes %lu\nkws done %d clips\n", (unsigned long)max_stack, KWS_CLIP_COUNT);
    return 0;
}
