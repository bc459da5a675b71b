/* Reset handler and vector table for the bare Cortex-M4 builds (size report, QEMU self-test): copy .data, zero
   .bss, enable the FPU (CPACR: CP10 + CP11 full access; hard-float code faults without it), then newlib's _start
   (or main directly when built without a C runtime start file). */
#include <stdint.h>
#include <string.h>

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__, __stack_top;
extern void _start(void);

void kws_reset_handler(void) {
    memcpy(&__data_start__, &__etext, (size_t)((char *)&__data_end__ - (char *)&__data_start__));
    memset(&__bss_start__, 0, (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
#if defined(__ARM_FP) /* ARMv6-M (cortex-m0plus) and soft-float builds have no CPACR to set */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20; /* SCB->CPACR */
    __asm volatile("dsb\n isb");
#endif
    _start();
    for (;;) {
    }
}

static void kws_fault_handler(void) {
    for (;;) {
    }
}

__attribute__((section(".vectors"), used)) static void (*const kws_vectors[16])(void) = {
    (void (*)(void))(&__stack_top), kws_reset_handler, kws_fault_handler, kws_fault_handler, kws_fault_handler,
    kws_fault_handler, kws_fault_handler, 0, 0, 0, 0, kws_fault_handler, kws_fault_handler, 0,
    kws_fault_handler, kws_fault_handler,
};
