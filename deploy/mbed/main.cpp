// Keyword spotting on the ST DISCO_F746NG with Mbed OS 6: on-board digital microphones (WM8994 codec, SAI + DMA,
// STM32CubeF7 BSP) -> MFCC frontend -> int8 model (kws_net.c or TFLM) -> recognizer -> serial + LED1.
// kws_setup()/kws_loop() (kws/kws_app.c) do the work; this file is the board's audio provider and responder.
#include "mbed.h"
#include "stm32746g_discovery_audio.h"

extern "C" {
#include "kws_app.h"
#include "kws_platform.h"
#include "kws_tables.h"
}

namespace {

// The BSP records both digital microphones interleaved (L, R); we keep the left one. Double buffer: the DMA
// fills one half while the other is copied out in the half/complete callbacks (interrupt context).
constexpr uint32_t kFramesPerHalf = 256;
int16_t g_dma[2 * kFramesPerHalf * 2];
int16_t g_mono[kFramesPerHalf];
kws_audio_ring_t *g_ring = nullptr;
DigitalOut g_led(LED1);
Timer g_clock;
uint32_t g_led_off_ms = 0;

void copy_left(const int16_t *stereo) {
    for (uint32_t i = 0; i < kFramesPerHalf; ++i) g_mono[i] = stereo[2 * i];
    if (g_ring) kws_audio_ring_write(g_ring, g_mono, kFramesPerHalf);
}

uint32_t now_ms() { return (uint32_t)std::chrono::duration_cast<std::chrono::milliseconds>(g_clock.elapsed_time()).count(); }

}  // namespace

extern SAI_HandleTypeDef haudio_in_sai;  // defined by the BSP

extern "C" {

void kws_audio_dma_irq(void) { HAL_DMA_IRQHandler(haudio_in_sai.hdmarx); }

void BSP_AUDIO_IN_HalfTransfer_CallBack(void) { copy_left(&g_dma[0]); }

void BSP_AUDIO_IN_TransferComplete_CallBack(void) { copy_left(&g_dma[2 * kFramesPerHalf]); }

void BSP_AUDIO_IN_Error_CallBack(void) { kws_platform_log("kws: audio DMA error"); }

int kws_platform_audio_start(kws_audio_ring_t *ring) {
    g_ring = ring;
    g_clock.start();
    // STM32CubeF7 1.17 BSP (README.md pins it): InitEx(InputDevice, AudioFreq, BitRes, ChnlNbr). Its 3-argument
    // BSP_AUDIO_IN_Init takes (AudioFreq, BitRes, ChnlNbr), unlike the old Mbed BSP's (InputDevice, Volume, Freq):
    // the old call compiles against the new header with every argument meaning something else.
    if (BSP_AUDIO_IN_InitEx(INPUT_DEVICE_DIGITAL_MICROPHONE_2, KWS_SAMPLE_RATE_HZ, DEFAULT_AUDIO_IN_BIT_RESOLUTION,
                            DEFAULT_AUDIO_IN_CHANNEL_NBR) != AUDIO_OK)
        return -1;
    if (BSP_AUDIO_IN_SetVolume(100) != AUDIO_OK) return -1;
    NVIC_SetVector(AUDIO_IN_SAIx_DMAx_IRQ, (uint32_t)kws_audio_dma_irq);  // Mbed owns the vector table
    if (BSP_AUDIO_IN_Record((uint16_t *)g_dma, sizeof(g_dma) / sizeof(g_dma[0])) != AUDIO_OK) return -2;
    return 0;
}

void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new) {
    if (g_led_off_ms && now_ms() > g_led_off_ms) {
        g_led = 0;
        g_led_off_ms = 0;
    }
    if (!is_new || label < 0) return;
    printf("Heard %s (score %d/%d) @%lu ms\n", kws_labels[label], (int)score_q, (int)(1.0f / KWS_OUTPUT_SCALE),
           (unsigned long)time_ms);
    g_led = 1;
    g_led_off_ms = now_ms() + 1000;
}

void kws_platform_log(const char *msg) { printf("%s\n", msg); }

}  // extern "C"

int main() {
    printf("kws: keyword spotter, %d labels, model sha256 %s\n", KWS_NUM_LABELS, KWS_MODEL_SHA256);
    const int status = kws_setup();
    if (status != 0) {
        printf("kws_setup failed: %d\n", status);
        for (;;) {
            g_led = !g_led;
            ThisThread::sleep_for(100ms);
        }
    }
    for (;;) {
        if (kws_loop() < 0) printf("kws_loop: model invocation failed\n");
        ThisThread::yield();
    }
}
