"""TFLite's int8 requantization parameters, computed exactly as its kernels' Prepare() computes them.

Every function names the TFLite routine it reproduces (tflite/kernels/kernel_util.cc, quantization_util.cc,
activations.cc, mul.cc) and keeps its arithmetic types: where TFLite multiplies float32 scales in float32 the
code here does so in numpy float32, where it widens to double first it uses Python floats (IEEE doubles).
Bit-exactness of the generated engine rests on this; tests/test_engine.py checks it against LiteRT's reference
kernels. The int8 activations an exported DS-CNN applies (LOGISTIC, SiLU = MUL(x, LOGISTIC(x)), HARD_SWISH) are
functions of one int8 value, so they can also be tabulated here into 256-entry tables (`*_table`), emulating
the C kernels' integer arithmetic step by step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math

import numpy as np

from kws.errors import KwsError

INT32_MAX = 2**31 - 1
INT32_MIN = -(2**31)


def round_half_away(x: float) -> int:
    """std::round / TfLiteRound: nearest integer, halves away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def quantize_multiplier(real: float) -> tuple[int, int]:
    """QuantizeMultiplier: real = q * 2^shift with q a Q31 mantissa in [2^30, 2^31) (frexp, round, renormalize)."""
    if real == 0.0:
        return 0, 0
    mantissa, shift = math.frexp(real)
    q = round_half_away(mantissa * (1 << 31))
    if q == 1 << 31:
        q //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if q > INT32_MAX:
        raise KwsError(f"engine: multiplier {real!r} does not fit a Q31 mantissa")
    return q, shift


def conv_multipliers(input_scale: float, filter_scales: np.ndarray, output_scale: float) -> tuple[list, list]:
    """PopulateConvolutionQuantizationParams: per output channel, double(in) * double(filter) / double(out)."""
    mults, shifts = [], []
    for s in np.asarray(filter_scales, np.float32):
        m, sh = quantize_multiplier(float(input_scale) * float(s) / float(output_scale))
        mults.append(m)
        shifts.append(sh)
    return mults, shifts


def fc_effective_scales(input_scale: float, filter_scales: np.ndarray, output_scale: float) -> list[float]:
    """FullyConnectedPerChannel (reference): the double scale each accumulator is multiplied by, then rounded."""
    return [float(input_scale) * float(s) / float(output_scale) for s in np.asarray(filter_scales, np.float32)]


def _roundf(value: float, scale: np.float32) -> float:
    """kernel_util.cc Quantize() before the zero point: TfLiteRound(f / scale) in float32."""
    q = np.float32(value) / np.float32(scale)
    return float(np.sign(q) * np.floor(np.abs(q) + np.float32(0.5)))


def activation_range(activation: str, scale: np.float32, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int8 output and a fused activation (none, relu, relu6)."""
    lo, hi = -128, 127
    if activation in ("relu", "relu6"):
        lo = max(lo, zero_point + int(_roundf(0.0, scale)))
    if activation == "relu6":
        hi = min(hi, zero_point + int(_roundf(6.0, scale)))
    if activation not in ("none", "relu", "relu6"):
        raise KwsError(f"engine: fused activation {activation!r} is not supported")
    return lo, hi


def mul_multiplier(scale1: np.float32, scale2: np.float32, scale_out: np.float32) -> tuple[int, int]:
    """mul.cc Prepare: in1 * in2 / out, multiplied and divided in float32, then QuantizeMultiplier(double)."""
    real = np.float32(scale1) * np.float32(scale2) / np.float32(scale_out)
    return quantize_multiplier(float(real))


def softmax_params(beta: float, input_scale: np.float32) -> tuple[int, int, int]:
    """activations.cc SoftmaxPrepare (reference): (input multiplier, left shift, diff_min) for Q5.26 differences."""
    integer_bits = 5
    real = min(float(np.float32(beta)) * float(input_scale) * (1 << (31 - integer_bits)), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    if shift < 0:
        raise KwsError(f"engine: softmax input scale {float(input_scale)!r} gives a negative shift")
    radius = math.floor(1.0 * ((1 << integer_bits) - 1) * (1 << (31 - integer_bits)) / (1 << shift))
    return mult, shift, -radius


def _downscale_to_int16(m: int) -> int:
    """DownScaleInt32ToInt16Multiplier: round a Q31 multiplier to Q15."""
    return 32767 if m >= INT32_MAX - (1 << 15) else (m + (1 << 15)) >> 16


def hard_swish_params(input_scale: np.float32, input_zp: int, output_scale: np.float32, output_zp: int) -> dict:
    """activations.cc HardSwishPrepare: Q15 multipliers and exponents, from float32 scale arithmetic."""
    hires = np.float32(1.0 / 128.0) * np.float32(input_scale)
    reluish_scale = np.float32(3.0) / np.float32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires / np.float32(output_scale)))
    rel_m, rel_e = quantize_multiplier(float(hires / reluish_scale))
    if out_e > 0:
        raise KwsError("engine: HARD_SWISH output multiplier exponent > 0 (TFLite rejects this model too)")
    return dict(
        input_zero_point=int(input_zp),
        output_zero_point=int(output_zp),
        output_multiplier=_downscale_to_int16(out_m),
        output_exponent=int(out_e),
        reluish_multiplier=_downscale_to_int16(rel_m),
        reluish_exponent=int(rel_e),
    )


def _libm_expf():
    name = ctypes.util.find_library("m")
    if name:
        fn = ctypes.CDLL(name).expf
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        return lambda x: np.float32(fn(float(x)))
    return lambda x: np.float32(np.exp(np.float64(x)))


def logistic_table(input_scale: np.float32, input_zp: int, output_scale: np.float32, output_zp: int) -> np.ndarray:
    """LUTPopulate<int8_t> with 1 / (1 + exp(-x)) in float32 (what LOGISTIC's reference kernel looks up).

    Returned in int8 input order (index 0 is input -128); the C side indexes it with (uint8_t)(x + 128).
    expf is the C library's, as TFLite calls it.
    """
    expf = _libm_expf()
    inv = np.float32(1.0) / np.float32(output_scale)
    table = np.zeros(256, np.int8)
    for val in range(-128, 128):
        x = np.float32(input_scale) * np.float32(val - input_zp)
        y = np.float32(1.0) / (np.float32(1.0) + expf(-x))
        r = y * inv
        rounded = np.float32(np.sign(r) * np.floor(np.abs(r) + np.float32(0.5)))
        q = int(rounded + np.float32(output_zp))
        table[val + 128] = min(127, max(-128, q))
    return table


# --- integer emulation of the C kernels, used to tabulate unary activations --------------------------------------


def srdhm32(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int32."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _trunc_div(ab + nudge, 1 << 31)


def _trunc_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def rdbpot(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT: x / 2^exponent, halves away from zero."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, mult: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier (double rounding): SRDHM(x * 2^left, mult), then RDBPOT by right."""
    left, right = max(shift, 0), max(-shift, 0)
    v = (x * (1 << left) + 2**31) % 2**32 - 2**31  # the int32 product TFLite forms
    return rdbpot(srdhm32(v, mult), right)


def mul_table(x_table_in: np.ndarray, in1_zp: int, in2_zp: int, out_zp: int, mult: int, shift: int, act=(-128, 127)):
    """MUL(x, t(x)) for every int8 x, t given as a table in input order: reference_integer_ops::MulElementwise."""
    out = np.zeros(256, np.int8)
    for val in range(-128, 128):
        a = val - in1_zp
        b = int(x_table_in[val + 128]) - in2_zp
        y = out_zp + multiply_by_quantized_multiplier(a * b, mult, shift)
        out[val + 128] = min(act[1], max(act[0], y))
    return out


def _wrap16(x: int) -> int:
    return (x + 2**15) % 2**16 - 2**15


def _srdhm16(a: int, b: int) -> int:
    if a == b == -(2**15):
        return 2**15 - 1
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return _wrap16(_trunc_div(ab + nudge, 1 << 15))


def _sat_lshift16(x: int, amount: int) -> int:
    return min(2**15 - 1, max(-(2**15), x * (1 << amount)))


def hard_swish_table(p: dict) -> np.ndarray:
    """reference_ops::HardSwish (int8) for every input, in int16 arithmetic as the reference writes it."""
    out = np.zeros(256, np.int8)
    for val in range(-128, 128):
        v = _wrap16(val - p["input_zero_point"])
        hires = _wrap16(v * 128)
        preshift = _srdhm16(hires, p["output_multiplier"])
        reluish = hires
        if p["reluish_exponent"] > 0:
            reluish = _sat_lshift16(reluish, p["reluish_exponent"] - 1)
        reluish = _srdhm16(reluish, p["reluish_multiplier"])
        if p["reluish_exponent"] > 0:
            reluish = _sat_lshift16(reluish, 1)
        if p["reluish_exponent"] < 0:
            reluish = _wrap16(rdbpot(reluish, -p["reluish_exponent"]))
        reluish = _wrap16((reluish + (1 << 15)) >> 1)
        pre = _wrap16(_trunc_div(reluish * preshift, 1 << 15)) if not (reluish == preshift == -(2**15)) else 2**15 - 1
        y = _wrap16(_wrap16(rdbpot(pre, -p["output_exponent"])) + p["output_zero_point"])
        out[val + 128] = min(127, max(-128, y))
    return out
