"""Flash and RAM of a deployed keyword spotter beyond the model: TFLite Micro runtime and the MFCC frontend.

Flash = model bytes + TFLM runtime + frontend code and tables; RAM = measured TFLM arena + frontend buffers.
The application itself (board core, OS, audio driver, stack) is each target's stated reserve (targets.py).

TFLM runtime flash is an ESTIMATE here, because TFLM's sources are not available to build in this project
(docs/device.md, "TFLite Micro on Cortex-M4"). Its basis is a measurement made outside the project: a current
TFLM tree with the core and the reference kernels of every op the exporter emits (no CMSIS-NN), built with
arm-none-eabi-g++ 12.2 for cortex-m4 (hard float), links to 44,280 B at -Os and 57,139 B at -O2, plus about
1.5 KB for this project's backend glue. The report charges the -Os build plus the glue and states the -O2 figure
beside it. TFLM's own overview says ~16 KB core / ~22 KB with KWS ops; a real build is twice that.

The frontend figures come from kws.firmware_build.frontend_footprint (a real arm-none-eabi build of the frontend and
recognizer, `size` output) when it can build; otherwise they are computed from the FrontendConfig for a float32 C
frontend: the buffers it must hold and the tables it must store, plus a stated code size. The computed figures
are also the lower bound of the pre-conversion budget check (no frontend can do without those buffers).
"""

from __future__ import annotations

import tempfile

import numpy as np

from kws.errors import KwsError
from kws.export.convert import ALLOWED_OPS
from kws.frontend import FrontendConfig, mel_filterbank

TFLM_RUNTIME_FLASH_OS_BYTES = 44_280  # measured outside the project: core + the exporter's reference kernels, -Os
TFLM_RUNTIME_FLASH_O2_BYTES = 57_139  # the same build at -O2
TFLM_GLUE_FLASH_BYTES = 1_536  # the project's kws_model_tflm.cpp backend, about 1.5 KB (same build)
TFLM_RUNTIME_FLASH_BASIS = (
    "estimate: TFLM with this exporter's ops (reference kernels) built for cortex-m4 outside the project, "
    f"{TFLM_RUNTIME_FLASH_OS_BYTES:,} B at -Os (charged) / {TFLM_RUNTIME_FLASH_O2_BYTES:,} B at -O2, "
    f"+ {TFLM_GLUE_FLASH_BYTES:,} B backend glue"
)
FRONTEND_CODE_FLASH_BYTES = 6 * 1024  # FFT + mel + log + DCT + quantize loops, estimate for -Os Thumb-2


def tflm_runtime_flash_bytes(ops: list[str]) -> int:
    """Estimated flash of the TFLM runtime and the project's glue for a graph of `ops` (-Os build).

    The measured build registered every op the exporter can emit, so every exported graph's ops are covered; a
    smaller op set would save only part of one kernel file each, which the estimate does not try to price.
    """
    unknown = sorted(set(ops) - ALLOWED_OPS)
    if unknown:
        raise KwsError(f"TFLM flash estimate: ops {unknown} were not in the measured build {sorted(ALLOWED_OPS)}")
    return TFLM_RUNTIME_FLASH_OS_BYTES + TFLM_GLUE_FLASH_BYTES


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


def _built(firmware, firmware_build, cfg: FrontendConfig, labels: list[str], target: str) -> dict:
    # Settings with default quantization and no model hash: the frontend's size depends on the frontend config
    # and the labels only, and a stable settings text keeps kws.firmware's build cache warm across exports.
    with tempfile.TemporaryDirectory(prefix="kws_fp_") as tmp:
        scale, zero_point = firmware.default_input_quantization(cfg)
        firmware.write_settings(tmp, cfg, labels, scale, zero_point, 1.0 / 256.0, -128, "none", {})
        return dict(firmware_build.frontend_footprint(target=target, generated_dir=tmp))


def frontend_footprint(cfg: FrontendConfig, target: str, labels: list[str]) -> dict:
    """Frontend flash_bytes and ram_bytes, with `source` saying whether they were built (and for which core)."""
    try:
        from kws import firmware, firmware_build
    except ImportError:
        return computed_frontend_footprint(cfg, "; kws.firmware is not available")
    failures = []
    # Only some cores are built; Thumb-2 code for the M4 is a close proxy for M7/M33/M55 (M0+ Thumb-1 is larger).
    for core in dict.fromkeys((target, "cortex-m4")):
        try:
            figures = _built(firmware, firmware_build, cfg, labels, core)
        except KwsError as e:
            failures.append(str(e))
            continue
        proxy = "" if core == target else f" (the {core} build, as a proxy for {target})"
        return dict(
            flash_bytes=int(figures["flash_bytes"]),
            ram_bytes=int(figures["ram_bytes"]),
            source=f"arm-none-eabi-size of the C frontend + recognizer, kws.firmware_build.frontend_footprint{proxy}",
            parts=figures,
        )
    return computed_frontend_footprint(cfg, f"; the firmware build failed: {failures[-1]}")
