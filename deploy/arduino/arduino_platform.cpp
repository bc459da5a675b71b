// Arduino Nano 33 BLE Sense implementation of kws_platform.h: PDM microphone at KWS_SAMPLE_RATE_HZ (mono, 16-bit)
// into the app's audio ring from the PDM interrupt; detections printed on Serial and shown on the RGB LED
// (green "yes", red "no", blue any other keyword; the LEDs are active low) for one second.
#include <Arduino.h>
#include <PDM.h>
#include <string.h>

extern "C" {
#include "kws_platform.h"
#include "kws_tables.h"
}

namespace {

kws_audio_ring_t *g_ring = nullptr;
int16_t g_pdm_block[512];  // the PDM library delivers at most 512 bytes per callback by default
unsigned long g_led_off_ms = 0;

void on_pdm_data() {  // interrupt context: copy out and return
    int bytes = PDM.available();
    if (bytes > (int)sizeof(g_pdm_block)) bytes = sizeof(g_pdm_block);
    PDM.read(g_pdm_block, bytes);
    if (g_ring) kws_audio_ring_write(g_ring, g_pdm_block, (uint32_t)bytes / 2);
}

void leds(bool r, bool g, bool b) {
    digitalWrite(LEDR, r ? LOW : HIGH);
    digitalWrite(LEDG, g ? LOW : HIGH);
    digitalWrite(LEDB, b ? LOW : HIGH);
}

}  // namespace

extern "C" int kws_platform_audio_start(kws_audio_ring_t *ring) {
    pinMode(LEDR, OUTPUT);
    pinMode(LEDG, OUTPUT);
    pinMode(LEDB, OUTPUT);
    leds(false, false, false);
    g_ring = ring;
    PDM.onReceive(on_pdm_data);
    if (!PDM.begin(1, KWS_SAMPLE_RATE_HZ)) return -1;  // 1 channel
    PDM.setGain(20);
    return 0;
}

extern "C" void kws_platform_respond(uint32_t time_ms, int32_t label, int32_t score_q, int is_new) {
    if (g_led_off_ms && millis() > g_led_off_ms) {
        leds(false, false, false);
        g_led_off_ms = 0;
    }
    if (!is_new || label < 0) return;
    const char *name = kws_labels[label];
    Serial.print("Heard ");
    Serial.print(name);
    Serial.print(" (score ");
    Serial.print(score_q * KWS_OUTPUT_SCALE, 2);
    Serial.print(") @");
    Serial.print(time_ms);
    Serial.println(" ms");
    leds(strcmp(name, "no") == 0, strcmp(name, "yes") == 0, strcmp(name, "yes") && strcmp(name, "no"));
    g_led_off_ms = millis() + 1000;
}

extern "C" void kws_platform_log(const char *msg) { Serial.println(msg); }
