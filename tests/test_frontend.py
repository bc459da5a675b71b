"""kws.frontend: the tables against scipy/librosa, the MFCCs against a librosa-built reference on real speech,
the torch frontend against the numpy one, framing by hand, and TFLite-style int8 quantization.

Run: .venv/bin/python -m pytest tests/test_frontend.py -q
"""

from __future__ import annotations

import math

import librosa
import numpy as np
import pytest
import scipy.fft
import scipy.signal
import soundfile as sf
import torch

from kws.errors import KwsError
from kws.frontend import (
    FrontendConfig,
    TorchFrontend,
    compute_mfcc,
    dct_matrix,
    mel_filterbank,
    quantize_features,
    window,
)

OTHER = FrontendConfig(
    window_ms=30.0,
    hop_ms=10.0,
    fft_size=512,
    num_mel_bins=64,
    upper_edge_hz=8000.0,
    lower_edge_hz=0.0,
    num_coefficients=13,
)


@pytest.fixture(scope="module")
def real_clips(mini_root) -> np.ndarray:
    """Every 60th keyword clip of the mini set (about 60 clips), int16 / 32768, padded or cropped to 1 s."""
    paths = sorted(p for p in mini_root.glob("*/*.wav") if not p.parent.name.startswith("_"))[::60]
    clips = []
    for p in paths:
        x, rate = sf.read(p, dtype="int16")
        assert rate == 16000
        x = x[:16000].astype(np.float32) / 32768.0
        clips.append(np.pad(x, (0, 16000 - len(x))))
    return np.stack(clips)


def librosa_mfcc(x: np.ndarray, cfg: FrontendConfig) -> np.ndarray:
    """An independent reference from librosa.stft + librosa.feature.melspectrogram + scipy's DCT.

    librosa centres a short window inside the n_fft frame; padding the signal by (n_fft - window) / 2 on each side
    makes frame k cover exactly samples [hop k, hop k + window) (a circular shift does not change |X|^2).
    """
    pad = (cfg.fft_size - cfg.window_samples) // 2
    xp = np.pad(x.astype(np.float64), [(0, 0), (pad, pad)])
    spec = librosa.stft(
        xp, n_fft=cfg.fft_size, hop_length=cfg.hop_samples, win_length=cfg.window_samples, window="hann", center=False
    )
    mel = librosa.feature.melspectrogram(
        S=np.abs(spec) ** 2,
        sr=cfg.sample_rate_hz,
        n_fft=cfg.fft_size,
        n_mels=cfg.num_mel_bins,
        fmin=cfg.lower_edge_hz,
        fmax=cfg.upper_edge_hz,
        htk=True,
        norm=None,
    )
    mfcc = scipy.fft.dct(np.log(mel + cfg.log_offset), type=2, norm="ortho", axis=-2)[..., : cfg.num_coefficients, :]
    return np.swapaxes(mfcc, -1, -2)[..., : cfg.num_frames, :]


def test_default_geometry_is_hello_edge():
    cfg = FrontendConfig()
    assert (cfg.clip_samples, cfg.window_samples, cfg.hop_samples) == (16000, 640, 320)
    assert (cfg.num_frames, cfg.num_fft_bins, cfg.feature_shape) == (49, 513, (49, 10))


def test_config_round_trip_and_one_line_errors():
    assert FrontendConfig.from_dict(OTHER.to_dict()) == OTHER
    with pytest.raises(KwsError, match="unknown field"):
        FrontendConfig.from_dict({"window_ms": 30.0, "n_mels": 40})
    for bad in ({"upper_edge_hz": 9000.0}, {"window_ms": 80.0}, {"num_coefficients": 41}, {"log_offset": 0.0}):
        with pytest.raises(KwsError) as e:
            FrontendConfig(**bad)
        assert "\n" not in str(e.value)


@pytest.mark.parametrize("cfg", [FrontendConfig(), OTHER], ids=["default", "other"])
def test_tables_match_scipy_and_librosa(cfg):
    ref_mel = librosa.filters.mel(
        sr=cfg.sample_rate_hz,
        n_fft=cfg.fft_size,
        n_mels=cfg.num_mel_bins,
        fmin=cfg.lower_edge_hz,
        fmax=cfg.upper_edge_hz,
        htk=True,
        norm=None,
    )
    fb = mel_filterbank(cfg)
    assert fb.dtype == np.float32 and fb.shape == (cfg.num_mel_bins, cfg.num_fft_bins)
    np.testing.assert_allclose(fb, ref_mel, rtol=0, atol=1e-6)
    ref_win = scipy.signal.get_window("hann", cfg.window_samples, fftbins=True)
    np.testing.assert_allclose(window(cfg), ref_win, rtol=0, atol=1e-7)
    ref_dct = scipy.fft.dct(np.eye(cfg.num_mel_bins), type=2, norm="ortho", axis=0)[: cfg.num_coefficients]
    np.testing.assert_allclose(dct_matrix(cfg), ref_dct, rtol=0, atol=1e-7)
    assert window(cfg).dtype == dct_matrix(cfg).dtype == np.float32


def test_frame_k_covers_its_640_samples_only():
    """An impulse at sample 1000 lies in frames 2 ([640, 1280)) and 3 ([960, 1600)) only; every other frame is
    silence, whose MFCC is ln(offset) * DCT(ones) = (sqrt(40) ln(1e-6), 0, ..., 0)."""
    x = np.zeros(16000, np.float32)
    x[1000] = 0.5
    mfcc = compute_mfcc(x)
    silent = np.zeros(10)
    silent[0] = math.sqrt(40) * math.log(1e-6)
    for k in range(49):
        if k in (2, 3):
            assert np.abs(mfcc[k] - silent).max() > 1.0
        else:
            np.testing.assert_allclose(mfcc[k], silent, atol=1e-4)


def test_numpy_and_torch_match_librosa_on_real_speech(real_clips):
    cfg = FrontendConfig()
    ref = librosa_mfcc(real_clips, cfg)
    ours = compute_mfcc(real_clips, cfg)
    theirs = TorchFrontend(cfg)(torch.from_numpy(real_clips)).numpy()
    assert ours.shape == theirs.shape == (len(real_clips), 49, 10) and ours.dtype == theirs.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-3
    assert np.abs(theirs - ref).max() < 1e-3
    assert np.abs(theirs - ours).max() < 1e-4


def test_other_config_matches_librosa(real_clips):
    x = real_clips[:8]
    np.testing.assert_allclose(compute_mfcc(x, OTHER), librosa_mfcc(x, OTHER), rtol=0, atol=1e-3)
    np.testing.assert_allclose(TorchFrontend(OTHER)(torch.from_numpy(x)).numpy(), compute_mfcc(x, OTHER), atol=1e-4)


def test_batch_dimensions_and_short_input(real_clips):
    x = real_clips[:6].reshape(2, 3, 16000)
    np.testing.assert_array_equal(compute_mfcc(x).reshape(6, 49, 10), compute_mfcc(real_clips[:6]))
    assert TorchFrontend()(torch.from_numpy(x)).shape == (2, 3, 49, 10)
    with pytest.raises(KwsError, match="shorter than one window"):
        compute_mfcc(np.zeros(600, np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_torch_on_gpu_matches_numpy(real_clips):
    feats = TorchFrontend().cuda()(torch.from_numpy(real_clips).cuda()).cpu().numpy()
    assert np.abs(feats - compute_mfcc(real_clips)).max() < 1e-4


def test_quantize_features_is_tflite_affine():
    x = np.array([0.0, 0.25, -0.25, 0.75, 1.0, -1.0, 100.0, -100.0], np.float32)
    # x / 0.5 = 0, 0.5, -0.5, 1.5, 2, -2, 200, -200; round half away from zero, + 3, clip to int8
    expected = np.array([3, 4, 2, 5, 5, 1, 127, -128], np.int8)
    q = quantize_features(x, scale=0.5, zero_point=3)
    assert q.dtype == np.int8
    np.testing.assert_array_equal(q, expected)
    with pytest.raises(KwsError):
        quantize_features(x, scale=0.0, zero_point=0)
