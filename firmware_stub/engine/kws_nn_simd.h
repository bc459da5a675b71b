/* The Cortex-M DSP instructions the kernels use, one name each: ACLE intrinsics (arm_acle.h) where the compiler
   targets a core with the DSP extension (__ARM_FEATURE_DSP: M4, M7, M33, M55), a bit-exact C model of the same
   instruction when KWS_NN_EMULATE_DSP is defined (so the host build runs and tests the DSP code path), and
   KWS_NN_DSP 0 otherwise (ARMv6-M, plain hosts): the kernels then take their portable loops.
   Lane notation: a word holds two int16 lanes, bottom (bits 0-15) and top (bits 16-31). */
#ifndef KWS_NN_SIMD_H
#define KWS_NN_SIMD_H

#include <stdint.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define KWS_NN_DSP 1
/* bytes 0 and 2 of x, sign-extended into the bottom and top lanes */
#define kws_sxtb16(x) ((uint32_t)__sxtb16(x))
/* a + kws_sxtb16(x), lane by lane (wrapping) */
#define kws_sxtab16(a, x) ((uint32_t)__sxtab16((a), (x)))
/* acc + bottom(a) * bottom(b) + top(a) * top(b) */
#define kws_smlad(a, b, acc) ((int32_t)__smlad((a), (b), (acc)))
/* acc + bottom(a) * bottom(b); acc + top(a) * top(b) */
#define kws_smlabb(a, b, acc) ((int32_t)__smlabb((a), (b), (acc)))
#define kws_smlatt(a, b, acc) ((int32_t)__smlatt((a), (b), (acc)))
static inline uint32_t kws_ror8(uint32_t x) { return (x >> 8) | (x << 24); }
/* kws_sxtab16(a, kws_ror8(x)) in one instruction (the compiler does not fold the rotation itself) */
static inline uint32_t kws_sxtab16_ror8(uint32_t a, uint32_t x) {
    uint32_t r;
    __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
    return r;
}
#elif defined(KWS_NN_EMULATE_DSP)
#define KWS_NN_DSP 1
static inline int32_t kws_lane_b(uint32_t x) { return (int16_t)(x & 0xFFFFu); }
static inline int32_t kws_lane_t(uint32_t x) { return (int16_t)(x >> 16); }
static inline uint32_t kws_pack(int32_t bottom, int32_t top) {
    return ((uint32_t)bottom & 0xFFFFu) | ((uint32_t)top << 16);
}
static inline uint32_t kws_sxtb16(uint32_t x) { return kws_pack((int8_t)(x & 0xFFu), (int8_t)((x >> 16) & 0xFFu)); }
static inline uint32_t kws_sxtab16(uint32_t a, uint32_t x) {
    return kws_pack(kws_lane_b(a) + (int8_t)(x & 0xFFu), kws_lane_t(a) + (int8_t)((x >> 16) & 0xFFu));
}
static inline int32_t kws_smlad(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(kws_lane_b(a) * kws_lane_b(b)) + (uint32_t)(kws_lane_t(a) * kws_lane_t(b)));
}
static inline int32_t kws_smlabb(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(kws_lane_b(a) * kws_lane_b(b)));
}
static inline int32_t kws_smlatt(uint32_t a, uint32_t b, int32_t acc) {
    return (int32_t)((uint32_t)acc + (uint32_t)(kws_lane_t(a) * kws_lane_t(b)));
}
static inline uint32_t kws_ror8(uint32_t x) { return (x >> 8) | (x << 24); }
static inline uint32_t kws_sxtab16_ror8(uint32_t a, uint32_t x) { return kws_sxtab16(a, kws_ror8(x)); }
#else
#define KWS_NN_DSP 0
#endif

#endif /* KWS_NN_SIMD_H */
