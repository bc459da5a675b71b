"""Flash and RAM of a deployed keyword spotter beyond the model: TFLite Micro runtime and the MFCC frontend.

Flash = model bytes + TFLM runtime + frontend code and tables; RAM = measured TFLM arena + frontend buffers.
The application itself (board core, OS, audio driver, stack) is each target's stated reserve (targets.py).

TFLM runtime flash is an ESTIMATE (nothing that links TFLM can be built here, FIELD_FACTS.md): ~16 KB for the
interpreter core, ~22 KB with the ops a ReLU DS-CNN needs; the ~6 KB difference is split over those five
kernels below, and SiLU's LOGISTIC and MUL get the size of the smaller ones.

The frontend figures come from kws.firmware.frontend_footprint (a real arm-none-eabi build, `size` output) when
that module exists; otherwise they are computed from the FrontendConfig for a float32 C frontend: the buffers
it must hold and the tables it must store, plus a stated code size.
"""

from __future__ import annotations

import numpy as np

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


def frontend_footprint(cfg: FrontendConfig, target: str) -> dict:
    """Frontend flash_bytes and ram_bytes, with `source` saying whether they were built or computed."""
    try:
        from kws import firmware
    except ImportError:
        firmware = None
    built = getattr(firmware, "frontend_footprint", None)
    if built is not None:
        figures = dict(built(target=target))
        return dict(
            flash_bytes=int(figures["flash_bytes"]),
            ram_bytes=int(figures["ram_bytes"]),
            source="arm-none-eabi-size of the C frontend (kws.firmware.frontend_footprint)",
            parts=figures,
        )
    buffers, tables = frontend_buffers(cfg), frontend_tables(cfg)
    return dict(
        flash_bytes=sum(tables.values()) + FRONTEND_CODE_FLASH_BYTES,
        ram_bytes=sum(buffers.values()),
        source="computed from the frontend config (float32 C frontend; code size estimated)",
        parts=dict(buffers=buffers, tables=tables, code_bytes=FRONTEND_CODE_FLASH_BYTES),
    )
