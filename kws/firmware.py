"""The device side of a model: generated C settings and tables, from the one Python source of truth.

Every number the firmware needs is written here from kws.frontend's FrontendConfig and tables and the export's
quantization parameters and figures, never typed by hand in C:

    kws_settings.h   sizes (sample rate, window, hop, FFT, frames, coefficients), int8 input/output scale and
                     zero point, label count, TFLM arena and op list, audio ring, recognizer constants
    kws_tables.h/.c  periodic Hann window, sparse mel filterbank (first bin + weights per mel), DCT-II rows,
                     FFT twiddles, labels in output order

The first line of each generated file says that it is generated, from which model (sha256) and with which
flash / RAM / MAC figures. Project assembly and the Cortex-M footprint build live in kws.firmware_build
(assemble_project, frontend_footprint, DEPLOY_DIR, PLATFORMS), which imports this module, never the reverse.

Run `python -m kws.firmware settings --out DIR` for default settings (the host build does this itself), or
`python -m kws.firmware_build --target cortex-m4` for the Cortex-M4 flash/RAM of the frontend + recognizer.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws import frontend as fe
from kws.errors import KwsError
from kws.files import atomic_write_text

REPO = Path(__file__).resolve().parents[1]
FIRMWARE_DIR = REPO / "firmware_stub"
# TFLM MicroMutableOpResolver methods for the builtin ops an exported DS-CNN uses (docs/device.md: TFLite graph).
TFLM_OP_METHODS = {
    "CONV_2D": "AddConv2D",
    "DEPTHWISE_CONV_2D": "AddDepthwiseConv2D",
    "AVERAGE_POOL_2D": "AddAveragePool2D",
    "FULLY_CONNECTED": "AddFullyConnected",
    "RESHAPE": "AddReshape",
    "SOFTMAX": "AddSoftmax",
    "MEAN": "AddMean",
    "PAD": "AddPad",
    "QUANTIZE": "AddQuantize",
    "DEQUANTIZE": "AddDequantize",
    "LOGISTIC": "AddLogistic",
    "MUL": "AddMul",
    "HARD_SWISH": "AddHardSwish",
    "ADD": "AddAdd",
}
DEFAULT_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "RESHAPE", "SOFTMAX")
# Until a model exists: the standard int8 softmax output (scale 1/256, zero point -128) and an input range that
# covers the c0 of digital silence, ln(log_offset) * sqrt(num_mel_bins), symmetrically.
DEFAULT_OUTPUT_SCALE, DEFAULT_OUTPUT_ZERO_POINT = 1.0 / 256.0, -128
ARENA_MARGIN = 0.05  # TFLM on Cortex-M with CMSIS-NN needs ~1% more arena than the host measurement (docs/device.md)


@dataclass(frozen=True, kw_only=True)
class DeviceConfig:
    """How the device streams: inference period, audio buffering and the recognizer (posterior smoothing).

    The recognizer averages the int8 scores of the inferences in the last average_window_ms, reports the top
    keyword when its average reaches detection_threshold (a probability) over at least minimum_count inferences,
    and stays quiet for suppression_ms after a detection. kws.stream.Recognizer mirrors the C one exactly.
    """

    inference_period_hops: int = 10  # one inference per 10 hops = 200 ms of audio
    audio_ring_ms: int = 1000  # audio buffered while an inference runs (rounded up to a power of two samples)
    average_window_ms: int = 1000
    detection_threshold: float = 0.7
    suppression_ms: int = 1500
    minimum_count: int = 3

    def __post_init__(self) -> None:
        if self.inference_period_hops < 1 or self.audio_ring_ms < 1 or self.average_window_ms < 1:
            raise KwsError("device config: inference_period_hops, audio_ring_ms, average_window_ms must be >= 1")
        if not 0.0 < self.detection_threshold <= 1.0 or self.minimum_count < 1 or self.suppression_ms < 0:
            raise KwsError("device config: need 0 < detection_threshold <= 1, minimum_count >= 1, suppression_ms >= 0")

    def queue_capacity(self, frontend: fe.FrontendConfig) -> int:
        """Inference results that can fall in one averaging window (+1 for the boundary), the C queue size."""
        period_ms = self.inference_period_hops * frontend.hop_samples * 1000 / frontend.sample_rate_hz
        return max(self.minimum_count, math.ceil(self.average_window_ms / period_ms) + 1)

    def threshold_q(self, output_scale: float) -> int:
        """The detection threshold in int8 score steps above the output zero point."""
        return max(1, round(self.detection_threshold / output_scale))


def _c_float(x: float) -> str:
    """A float32 literal that round-trips exactly (9 significant digits)."""
    s = f"{float(np.float32(x)):.9g}"
    return s + ("f" if any(c in s for c in ".en") else ".0f")


def _c_array(ctype: str, name: str, values: Sequence, per_line: int = 8, fmt=str) -> str:
    items = [fmt(v) for v in values]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return f"const {ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def sparse_filterbank(frontend: fe.FrontendConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Each mel filter as (first FFT bin, bin count, offset into weights) + the concatenated float32 weights.

    A filter's support is contiguous (a triangle), so its first..last non-zero bins hold all its weight.
    """
    mel = fe.mel_filterbank(frontend)
    starts, counts, offsets, weights = [], [], [], []
    for row in mel:
        nz = np.flatnonzero(row)
        first, last = (int(nz[0]), int(nz[-1])) if nz.size else (0, -1)
        starts.append(first)
        counts.append(last - first + 1)
        offsets.append(sum(len(w) for w in weights))
        weights.append(row[first : last + 1])
    flat = np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, np.float32)
    return np.array(starts), np.array(counts), np.array(offsets), flat


def _header_line(model_sha256: str, figures: dict) -> str:
    figs = " ".join(f"{k}={v}" for k, v in sorted(figures.items()) if isinstance(v, (int, float, str)))
    sha = model_sha256 or "none"
    return f"/* GENERATED by kws.firmware from model sha256={sha}; {figs or 'no figures'}. Do not edit. */\n"


def _arena_bytes(figures: dict, arena_bytes: int | None) -> int:
    measured = arena_bytes if arena_bytes is not None else figures.get("tflm_arena_bytes", figures.get("arena_bytes"))
    if not measured:
        return 0
    return int(math.ceil(int(measured) * (1 + ARENA_MARGIN) / 16) * 16)


def _settings_h(frontend, labels, quant, model_sha256, figures, arena, ops, device) -> str:
    in_scale, in_zp, out_scale, out_zp = quant
    fft_log2 = int(round(math.log2(frontend.fft_size)))
    ring = 1 << math.ceil(
        math.log2(max(frontend.window_samples, device.audio_ring_ms * frontend.sample_rate_hz // 1000))
    )
    unknown = [op for op in ops if op not in TFLM_OP_METHODS]
    if unknown:
        raise KwsError(
            f"write_settings: no TFLM resolver method known for op(s) {unknown}; add them to TFLM_OP_METHODS"
        )
    _, _, _, weights = sparse_filterbank(frontend)
    defs = {
        "KWS_MODEL_SHA256": f'"{model_sha256}"',
        "KWS_SAMPLE_RATE_HZ": frontend.sample_rate_hz,
        "KWS_CLIP_SAMPLES": frontend.clip_samples,
        "KWS_WINDOW_SAMPLES": frontend.window_samples,
        "KWS_HOP_SAMPLES": frontend.hop_samples,
        "KWS_FFT_SIZE": frontend.fft_size,
        "KWS_FFT_LOG2": fft_log2,
        "KWS_NUM_FFT_BINS": frontend.num_fft_bins,
        "KWS_NUM_MEL_BINS": frontend.num_mel_bins,
        "KWS_MEL_WEIGHT_COUNT": len(weights),
        "KWS_NUM_COEFFICIENTS": frontend.num_coefficients,
        "KWS_NUM_FRAMES": frontend.num_frames,
        "KWS_FEATURE_ELEMENTS": frontend.num_frames * frontend.num_coefficients,
        "KWS_LOG_OFFSET": _c_float(frontend.log_offset),
        "KWS_INPUT_SCALE": _c_float(in_scale),
        "KWS_INPUT_ZERO_POINT": int(in_zp),
        "KWS_OUTPUT_SCALE": _c_float(out_scale),
        "KWS_OUTPUT_ZERO_POINT": int(out_zp),
        "KWS_NUM_LABELS": len(labels),
        "KWS_ARENA_BYTES": arena,
        "KWS_AUDIO_RING_SAMPLES": ring,
        "KWS_INFERENCE_PERIOD_HOPS": device.inference_period_hops,
        "KWS_RECOGNIZER_WINDOW_MS": device.average_window_ms,
        "KWS_RECOGNIZER_THRESHOLD_Q": device.threshold_q(out_scale),
        "KWS_RECOGNIZER_SUPPRESSION_MS": device.suppression_ms,
        "KWS_RECOGNIZER_MIN_COUNT": device.minimum_count,
        "KWS_RECOGNIZER_QUEUE": device.queue_capacity(frontend),
        "KWS_TFLM_NUM_OPS": len(ops),
        "KWS_TFLM_OPS(X)": " ".join(f"X({TFLM_OP_METHODS[op]})" for op in ops),
    }
    body = "".join(f"#define {k} {v}\n" for k, v in defs.items())
    return (
        _header_line(model_sha256, figures)
        + "/* Every constant the device needs; sizes in samples/bins/frames, times in ms, arena in bytes. */\n"
        + "#ifndef KWS_SETTINGS_H\n#define KWS_SETTINGS_H\n\n"
        + body
        + "\n#endif /* KWS_SETTINGS_H */\n"
    )


def _tables(frontend, labels, model_sha256, figures) -> tuple[str, str]:
    starts, counts, offsets, weights = sparse_filterbank(frontend)
    k = np.arange(frontend.fft_size // 2, dtype=np.float64)
    angle = 2.0 * np.pi * k / frontend.fft_size
    twiddle = np.stack([np.cos(angle), np.sin(angle)], axis=1).astype(np.float32).ravel()
    keyword = [0 if lab.startswith("_") else 1 for lab in labels]
    head = _header_line(model_sha256, figures)
    h = (
        head
        + "/* Frontend tables (float32, from kws.frontend) and labels; sizes are the kws_settings.h constants. */\n"
        + '#ifndef KWS_TABLES_H\n#define KWS_TABLES_H\n\n#include <stdint.h>\n\n#include "kws_settings.h"\n\n'
        + '#ifdef __cplusplus\nextern "C" {\n#endif\n\n'
        + "/* Periodic Hann window, one weight per sample of a frame. */\n"
        + "extern const float kws_window[KWS_WINDOW_SAMPLES];\n"
        + "/* Sparse HTK mel filterbank: filter m weights FFT bins kws_mel_start[m] .. + kws_mel_count[m] - 1 with\n"
        + "   kws_mel_weights[kws_mel_offset[m] ...]. */\n"
        + "extern const uint16_t kws_mel_start[KWS_NUM_MEL_BINS];\n"
        + "extern const uint16_t kws_mel_count[KWS_NUM_MEL_BINS];\n"
        + "extern const uint16_t kws_mel_offset[KWS_NUM_MEL_BINS];\n"
        + "extern const float kws_mel_weights[KWS_MEL_WEIGHT_COUNT];\n"
        + "/* Orthonormal DCT-II rows, row-major [coefficient][mel]. */\n"
        + "extern const float kws_dct[KWS_NUM_COEFFICIENTS * KWS_NUM_MEL_BINS];\n"
        + "/* (cos, sin) of 2 pi k / KWS_FFT_SIZE for k < KWS_FFT_SIZE / 2, interleaved. */\n"
        + "extern const float kws_fft_twiddle[KWS_FFT_SIZE];\n"
        + "/* Labels in model output order; 1 where a label is a keyword (not _silence_/_unknown_). */\n"
        + "extern const char *const kws_labels[KWS_NUM_LABELS];\n"
        + "extern const uint8_t kws_label_is_keyword[KWS_NUM_LABELS];\n\n"
        + "#ifdef __cplusplus\n}\n#endif\n\n#endif /* KWS_TABLES_H */\n"
    )
    c = (
        head
        + '#include "kws_tables.h"\n\n'
        + _c_array("float", "kws_window", fe.window(frontend), fmt=_c_float)
        + _c_array("uint16_t", "kws_mel_start", starts, per_line=16)
        + _c_array("uint16_t", "kws_mel_count", counts, per_line=16)
        + _c_array("uint16_t", "kws_mel_offset", offsets, per_line=16)
        + _c_array("float", "kws_mel_weights", weights, fmt=_c_float)
        + _c_array("float", "kws_dct", fe.dct_matrix(frontend).ravel(), fmt=_c_float)
        + _c_array("float", "kws_fft_twiddle", twiddle, fmt=_c_float)
        + _c_array("char *const", "kws_labels", labels, per_line=4, fmt=lambda s: json.dumps(str(s)))
        + _c_array("uint8_t", "kws_label_is_keyword", keyword, per_line=16)
    )
    return h, c


def write_settings(
    out_dir: str | os.PathLike,
    frontend: fe.FrontendConfig,
    labels: Sequence[str],
    input_scale: float,
    input_zero_point: int,
    output_scale: float,
    output_zero_point: int,
    model_sha256: str,
    figures: dict,
    *,
    arena_bytes: int | None = None,
    ops: Sequence[str] = DEFAULT_OPS,
    device: DeviceConfig = DeviceConfig(),
) -> list[Path]:
    """Write kws_settings.h, kws_tables.h and kws_tables.c into out_dir; return their paths.

    figures: the export's numbers (flash_bytes, ram_bytes, macs, tflm_arena_bytes...) quoted on each first line.
    The TFLM arena is the measured one (arena_bytes, else figures["tflm_arena_bytes"]) plus ARENA_MARGIN.
    """
    if fe.FrontendConfig is not type(frontend):
        raise KwsError("write_settings: frontend must be a kws.frontend.FrontendConfig")
    if frontend.fft_size & (frontend.fft_size - 1):
        raise KwsError(f"write_settings: fft_size {frontend.fft_size} is not a power of two (the C FFT is radix-2)")
    if not labels or not input_scale > 0 or not output_scale > 0:
        raise KwsError("write_settings: need at least one label and positive input/output scales")
    quant = (input_scale, input_zero_point, output_scale, output_zero_point)
    arena = _arena_bytes(figures, arena_bytes)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables_h, tables_c = _tables(frontend, list(labels), model_sha256, figures)
    texts = {
        "kws_settings.h": _settings_h(frontend, list(labels), quant, model_sha256, figures, arena, ops, device),
        "kws_tables.h": tables_h,
        "kws_tables.c": tables_c,
    }
    paths = []
    for name, text in texts.items():
        paths.append(atomic_write_text(out / name, text))
    return paths


def default_input_quantization(frontend: fe.FrontendConfig) -> tuple[float, int]:
    """(scale, zero point) covering +-|c0 of digital silence|, for builds without a model."""
    bound = abs(math.log(frontend.log_offset)) * math.sqrt(frontend.num_mel_bins)
    return 2 * bound / 255.0, 0


def write_default_settings(
    out_dir: str | os.PathLike,
    frontend: fe.FrontendConfig = fe.FrontendConfig(),
    input_scale: float | None = None,
    input_zero_point: int | None = None,
) -> list[Path]:
    """Settings for a host build without an exported model: default task labels and quantization."""
    from kws.data import TaskConfig

    scale, zp = default_input_quantization(frontend)
    return write_settings(
        out_dir,
        frontend,
        TaskConfig().labels,
        input_scale or scale,
        zp if input_zero_point is None else input_zero_point,
        DEFAULT_OUTPUT_SCALE,
        DEFAULT_OUTPUT_ZERO_POINT,
        "none",
        {},
    )


def main(argv: list[str] | None = None) -> int:
    """`python -m kws.firmware settings --out DIR`: the default settings and tables."""
    parser = argparse.ArgumentParser(prog="python -m kws.firmware", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("settings", help="write default kws_settings.h + tables (no model)")
    s.add_argument("--out", required=True)
    s.add_argument("--input-scale", type=float)
    s.add_argument("--input-zero-point", type=int)
    args = parser.parse_args(argv)
    try:
        for p in write_default_settings(args.out, input_scale=args.input_scale, input_zero_point=args.input_zero_point):
            print(p)
    except KwsError as e:
        print(f"kws.firmware: error: {e}", file=os.sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
