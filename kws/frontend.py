"""The MFCC frontend of the Hello Edge DS-CNN: one configuration, the tables, a numpy reference and batched torch.

Features (Zhang et al. 2017, arXiv 1711.07128, the ARM ML-KWS-for-MCU frontend), per 1 s clip at 16 kHz:

    frame k       x[320 k : 320 k + 640], k = 0..48 (no padding, no centering)
    windowed      x_k[n] * w[n], w = periodic Hann of 640 samples
    spectrum      P_k[f] = |rfft(x_k w, n=1024)[f]|^2, f = 0..512
    mel energy    E_k[m] = sum_f M[m, f] P_k[f], M = HTK triangles, 40 bins over 20..4000 Hz, unnormalized
    log           L_k[m] = ln(E_k[m] + 1e-6)
    MFCC          C_k[c] = sum_m D[c, m] L_k[m], D = orthonormal DCT-II, first 10 rows

The window, filterbank and DCT are exposed as float32 tables (window(), mel_filterbank(), dct_matrix()) so that the
C frontend and the exporter use the very numbers the model was trained with: a mismatch there is the most reported
failure of deployed keyword spotters. compute_mfcc() is the reference the C frontend is checked against; it applies
the float32 tables with float64 accumulation. TorchFrontend computes the same features in float32, batched.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from kws.errors import KwsError, known_fields


@dataclass(frozen=True, kw_only=True)
class FrontendConfig:
    """Every number that defines the features. Serialized as frontend.json beside every model."""

    sample_rate_hz: int = 16000
    clip_ms: int = 1000
    window_ms: float = 40.0
    hop_ms: float = 20.0
    fft_size: int = 1024
    num_mel_bins: int = 40
    lower_edge_hz: float = 20.0
    upper_edge_hz: float = 4000.0
    num_coefficients: int = 10
    log_offset: float = 1e-6

    def __post_init__(self) -> None:
        problems = []
        if self.sample_rate_hz <= 0 or self.clip_ms <= 0 or self.window_ms <= 0 or self.hop_ms <= 0:
            problems.append("sample_rate_hz, clip_ms, window_ms and hop_ms must be positive")
        elif self.window_samples > self.fft_size:
            problems.append(f"window of {self.window_samples} samples exceeds fft_size {self.fft_size}")
        elif self.window_samples > self.clip_samples:
            problems.append(f"window of {self.window_samples} samples exceeds the clip ({self.clip_samples})")
        if not 0 <= self.lower_edge_hz < self.upper_edge_hz <= self.sample_rate_hz / 2:
            problems.append(f"need 0 <= lower_edge_hz < upper_edge_hz <= {self.sample_rate_hz / 2} (Nyquist)")
        if not 1 <= self.num_coefficients <= self.num_mel_bins:
            problems.append("need 1 <= num_coefficients <= num_mel_bins")
        if self.log_offset <= 0:
            problems.append("log_offset must be > 0 (it keeps ln() finite on silence)")
        if problems:
            raise KwsError(f"frontend config: {'; '.join(problems)}")

    @property
    def clip_samples(self) -> int:
        return round(self.sample_rate_hz * self.clip_ms / 1000)

    @property
    def window_samples(self) -> int:
        return round(self.sample_rate_hz * self.window_ms / 1000)

    @property
    def hop_samples(self) -> int:
        return round(self.sample_rate_hz * self.hop_ms / 1000)

    @property
    def num_frames(self) -> int:
        """Frames per clip: 1 + (16000 - 640) // 320 = 49 for the defaults."""
        return 1 + (self.clip_samples - self.window_samples) // self.hop_samples

    @property
    def num_fft_bins(self) -> int:
        return self.fft_size // 2 + 1

    @property
    def feature_shape(self) -> tuple[int, int]:
        """(frames, coefficients): the model's input shape."""
        return (self.num_frames, self.num_coefficients)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FrontendConfig:
        return cls(**known_fields(cls, d, "frontend config"))


def window(cfg: FrontendConfig) -> np.ndarray:
    """Periodic Hann window, w[n] = 0.5 - 0.5 cos(2 pi n / N), n = 0..N-1 (N = window_samples), float32."""
    n = np.arange(cfg.window_samples, dtype=np.float64)
    return (0.5 - 0.5 * np.cos(2.0 * np.pi * n / cfg.window_samples)).astype(np.float32)


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: m = 2595 log10(1 + f / 700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of hz_to_mel: f = 700 (10^(m / 2595) - 1)."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: FrontendConfig) -> np.ndarray:
    """Unnormalized HTK triangular filters, (num_mel_bins, num_fft_bins) float32.

    Band edges are num_mel_bins + 2 points equally spaced on the HTK mel scale from lower_edge_hz to
    upper_edge_hz; filter m rises linearly from edge m to a peak of 1 at edge m + 1 and falls to 0 at edge m + 2,
    evaluated at the FFT bin centre frequencies f * sample_rate / fft_size. Peak height 1 (no area normalization).
    """
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(cfg.lower_edge_hz), hz_to_mel(cfg.upper_edge_hz), cfg.num_mel_bins + 2))
    bins_hz = np.linspace(0.0, cfg.sample_rate_hz / 2, cfg.num_fft_bins)
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bins_hz[None, :] - lo) / (mid - lo)
    falling = (hi - bins_hz[None, :]) / (hi - mid)
    return np.maximum(0.0, np.minimum(rising, falling)).astype(np.float32)


def dct_matrix(cfg: FrontendConfig) -> np.ndarray:
    """Orthonormal DCT-II rows, (num_coefficients, num_mel_bins) float32.

    D[c, m] = s_c cos(pi c (2m + 1) / (2 M)), s_0 = sqrt(1 / M), s_c = sqrt(2 / M) otherwise (M = num_mel_bins),
    i.e. scipy.fft.dct(type=2, norm="ortho"); c0 is positive for positive log energies.
    """
    m = cfg.num_mel_bins
    c = np.arange(cfg.num_coefficients, dtype=np.float64)[:, None]
    k = np.arange(m, dtype=np.float64)[None, :]
    d = np.cos(np.pi * c * (2 * k + 1) / (2 * m)) * math.sqrt(2.0 / m)
    d[0] *= 1.0 / math.sqrt(2.0)
    return d.astype(np.float32)


def frame_count(cfg: FrontendConfig, num_samples: int) -> int:
    """Frames that fit in num_samples without padding: 1 + (num_samples - window) // hop."""
    if num_samples < cfg.window_samples:
        raise KwsError(f"frontend: {num_samples} samples is shorter than one window ({cfg.window_samples})")
    return 1 + (num_samples - cfg.window_samples) // cfg.hop_samples


def compute_mfcc(waveforms: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
    """The reference MFCCs of waveforms (..., samples) in [-1, 1] -> float32 (..., frames, num_coefficients).

    A clip of clip_samples gives num_frames frames; any length >= one window is accepted (streaming uses longer
    buffers). Uses the float32 tables with float64 accumulation, the numbers the C frontend must reproduce.
    """
    x = np.asarray(waveforms, dtype=np.float32)
    if x.ndim == 0:
        raise KwsError("frontend: compute_mfcc needs waveforms shaped (..., samples)")
    num_frames = frame_count(cfg, x.shape[-1])
    starts = np.arange(num_frames) * cfg.hop_samples
    frames = x[..., starts[:, None] + np.arange(cfg.window_samples)].reshape(-1, cfg.window_samples)
    spectrum = np.fft.rfft(frames.astype(np.float64) * window(cfg).astype(np.float64), n=cfg.fft_size, axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # 2-D so that the products below are single BLAS calls
    log_mel = np.log(power @ mel_filterbank(cfg).astype(np.float64).T + cfg.log_offset)
    mfcc = (log_mel @ dct_matrix(cfg).astype(np.float64).T).astype(np.float32)
    return mfcc.reshape(*x.shape[:-1], num_frames, cfg.num_coefficients)


class TorchFrontend(torch.nn.Module):
    """compute_mfcc in torch: batched, differentiable, CPU or GPU. Tables are buffers (they follow .to(device)).

    forward(x) takes (..., samples) float and returns (..., frames, num_coefficients) float32.

    The spectrum and log-mel are computed in spectrum_dtype (float64 by default) from the float32 tables: a mel
    bin can hold 1e-6 of its frame's peak energy, and float32 FFT rounding there moves ln(E) by up to 3e-4
    [measured on real clips], 3x the 1e-4 agreement we promise with compute_mfcc. The cost is small next to the
    network (49 frames of 1024 points per clip). Pass torch.float32 for speed where that agreement does not matter.
    """

    def __init__(self, cfg: FrontendConfig = FrontendConfig(), spectrum_dtype: torch.dtype = torch.float64) -> None:
        super().__init__()
        self.cfg = cfg
        self.spectrum_dtype = spectrum_dtype
        self.register_buffer("window", torch.from_numpy(window(cfg)), persistent=False)
        self.register_buffer("mel_t", torch.from_numpy(mel_filterbank(cfg).T.copy()), persistent=False)
        self.register_buffer("dct_t", torch.from_numpy(dct_matrix(cfg).T.copy()), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg, dt = self.cfg, self.spectrum_dtype
        frame_count(cfg, x.shape[-1])
        frames = x.to(torch.float32).unfold(-1, cfg.window_samples, cfg.hop_samples)
        spectrum = torch.fft.rfft(frames.to(dt) * self.window.to(dt), n=cfg.fft_size, dim=-1)
        power = spectrum.real.square() + spectrum.imag.square()
        log_mel = torch.log(power @ self.mel_t.to(dt) + cfg.log_offset)
        return log_mel.to(torch.float32) @ self.dct_t


def quantize_features(features: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """TFLite affine int8 quantization, q = round(x / scale) + zero_point clipped to [-128, 127].

    Rounds half away from zero, like TFLite's reference Quantize kernel (std::round) and C's roundf().
    """
    if not scale > 0:
        raise KwsError(f"quantize_features: scale must be > 0, got {scale}")
    v = np.asarray(features, dtype=np.float64) / float(scale)
    q = np.sign(v) * np.floor(np.abs(v) + 0.5) + int(zero_point)
    return np.clip(q, -128, 127).astype(np.int8)
