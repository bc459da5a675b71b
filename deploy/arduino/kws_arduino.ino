// Keyword spotting on the Arduino Nano 33 BLE Sense: PDM microphone -> MFCC frontend -> int8 model (the generated
// kws_net.c, or TFLite Micro with --engine tflm) -> recognizer -> serial + LED. The work is done by kws_setup()/
// kws_loop() (kws_app.c); this board's audio provider and responder are in arduino_platform.cpp. Assembled by
// `kws export --platform arduino` (kws.firmware).
#include <TensorFlowLite.h>  // library "Arduino_TensorFlowLite": makes arduino-cli add TFLM to the build

extern "C" {
#include "kws_app.h"
}

void setup() {
    Serial.begin(115200);
    const unsigned long start = millis();
    while (!Serial && millis() - start < 3000) {
    }  // wait up to 3 s for a serial monitor, then run without one
    const int status = kws_setup();
    if (status != 0) {
        Serial.print("kws_setup failed: ");
        Serial.println(status);
        pinMode(LED_BUILTIN, OUTPUT);
        for (;;) {  // fast blink: setup error (the reason was printed above)
            digitalWrite(LED_BUILTIN, !digitalRead(LED_BUILTIN));
            delay(100);
        }
    }
}

void loop() {
    if (kws_loop() < 0) Serial.println("kws_loop: model invocation failed");
}
