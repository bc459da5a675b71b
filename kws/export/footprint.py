"""Flash and RAM of a deployed keyword spotter beyond the model: TFLite Micro runtime and the MFCC frontend.

Flash = model bytes + TFLM runtime + frontend code and tables; RAM = measured TFLM arena + frontend buffers.
The application itself (board core, OS, audio driver, stack) is each target's stated reserve (targets.py).

TFLM runtime flash is an ESTIMATE (nothing that links TFLM can be built here, FIELD_FACTS.md): ~16 KB for the
interpreter core, ~22 KB with the ops a ReLU DS-CNN needs; the ~6 KB difference is split over those five
kernels below, and SiLU's LOGISTIC and MUL get the size of the smaller ones.

The frontend figures come from kws.firmware.frontend_footprint (a real arm-none-eabi build of the C frontend and
recognizer, `size` output) when it can build; otherwise they are computed from the FrontendConfig for a float32 C
frontend: the buffers it must hold and the tables it must store, plus a stated code size. The computed figures
are also the lower bound of the pre-conversion budget check (no frontend can do without those buffers).
"""

from __future__ import annotations

import tempfile

import numpy as np

from kws.errors import KwsError
from kws.frontend import FrontendConfig, mel_filterbank

TFLM_CORE_FLASH_BYTES = 16 * 1024
TFLM_OP_FLASH_BYTES = {
    "CONV_2D": 1600,
    "DEPTHWISE_CONV_2D": 1600,
    "AVERAGE_POOL_2D": 800,
    "FULLY_CONNECTED": 1000,
    "SOFTMAX": 1144,
    "LOGISTIC": 800,
    "MUL": 800,
    "HARD_SWISH": 1600,  # int8 requantizes twice per element; priced like the larger kernels
    "RESHAPE": 300,
}
FRONTEND_CODE_FLASH_BYTES = 6 * 1024  # FFT + mel + log + DCT + quantize loops, estimate for -Os Thumb-2


def tflm_runtime_flash_bytes(ops: list[str]) -> int:
    """Estimated flash of the TFLM interpreter with only `ops` registered (MicroMutableOpResolver)."""
    return TFLM_CORE_FLASH_BYTES + sum(TFLM_OP_FLASH_BYTES.get(op, 1600) for op in sorted(set(ops)))


def frontend_buffers(cfg: FrontendConfig) -> dict[str, int]:
    """RAM in bytes of each working buffer of a streaming float32 C frontend."""
    return dict(
        audio_window_int16=2 * cfg.window_samples,  # the last window of samples, shifted by one hop per frame
        audio_capture_int16=2 * 2 * cfg.hop_samples,  # double-buffered hop from the microphone driver
        fft_float32=4 * cfg.fft_size,  # in-place real FFT of the zero-padded window
        power_float32=4 * cfg.num_fft_bins,
        mel_float32=4 * cfg.num_mel_bins,
        feature_ring_int8=cfg.num_frames * cfg.num_coefficients,  # quantized MFCC history the model reads
    )


def frontend_tables(cfg: FrontendConfig) -> dict[str, int]:
    """Flash in bytes of each constant table: window, sparse mel weights + bin ranges, DCT, FFT twiddles."""
    nonzero = int(np.count_nonzero(mel_filterbank(cfg)))
    return dict(
        window_float32=4 * cfg.window_samples,
        mel_weights_float32=4 * nonzero,
        mel_ranges_int16=2 * 2 * cfg.num_mel_bins,
        dct_float32=4 * cfg.num_coefficients * cfg.num_mel_bins,
        fft_twiddles_float32=4 * cfg.fft_size,
    )


def computed_frontend_footprint(cfg: FrontendConfig, reason: str = "") -> dict:
    """Frontend figures computed from the config: the buffers and tables a float32 C frontend cannot do without."""
    buffers, tables = frontend_buffers(cfg), frontend_tables(cfg)
    return dict(
        flash_bytes=sum(tables.values()) + FRONTEND_CODE_FLASH_BYTES,
        ram_bytes=sum(buffers.values()),
        source="computed from the frontend config (float32 C frontend; code size estimated)" + reason,
        parts=dict(buffers=buffers, tables=tables, code_bytes=FRONTEND_CODE_FLASH_BYTES),
    )


def _built(firmware, cfg: FrontendConfig, labels: list[str], target: str) -> dict:
    # Settings with default quantization and no model hash: the frontend's size depends on the frontend config
    # and the labels only, and a stable settings text keeps kws.firmware's build cache warm across exports.
    with tempfile.TemporaryDirectory(prefix="kws_fp_") as tmp:
        scale, zero_point = firmware.default_input_quantization(cfg)
        firmware.write_settings(tmp, cfg, labels, scale, zero_point, 1.0 / 256.0, -128, "none", {})
        return dict(firmware.frontend_footprint(target=target, generated_dir=tmp))


def frontend_footprint(cfg: FrontendConfig, target: str, labels: list[str]) -> dict:
    """Frontend flash_bytes and ram_bytes, with `source` saying whether they were built (and for which core)."""
    try:
        from kws import firmware
    except ImportError:
        return computed_frontend_footprint(cfg, "; kws.firmware is not available")
    if not hasattr(firmware, "frontend_footprint"):
        return computed_frontend_footprint(cfg, "; kws.firmware has no frontend_footprint")
    failures = []
    # Only some cores are built; Thumb-2 code for the M4 is a close proxy for M7/M33/M55 (M0+ Thumb-1 is larger).
    for core in dict.fromkeys((target, "cortex-m4")):
        try:
            figures = _built(firmware, cfg, labels, core)
        except KwsError as e:
            failures.append(str(e))
            continue
        proxy = "" if core == target else f" (the {core} build, as a proxy for {target})"
        return dict(
            flash_bytes=int(figures["flash_bytes"]),
            ram_bytes=int(figures["ram_bytes"]),
            source=f"arm-none-eabi-size of the C frontend + recognizer, kws.firmware.frontend_footprint{proxy}",
            parts=figures,
        )
    return computed_frontend_footprint(cfg, f"; the firmware build failed: {failures[-1]}")
