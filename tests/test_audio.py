"""kws.audio: reading real clips exactly, converting stereo / 44.1 kHz files, padding short and cropping long clips,
and reporting (not crashing on) empty, truncated and non-audio files.

Run: .venv/bin/python -m pytest tests/test_audio.py -q
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from kws.audio import UnusableAudio, fit_length, read_audio, read_clip


@pytest.fixture(scope="module")
def real_wav(mini_root):
    return sorted((mini_root / "yes").glob("*.wav"))[0]


def test_real_clip_is_int16_over_32768(real_wav):
    raw, rate = sf.read(real_wav, dtype="int16")
    audio = read_audio(real_wav)
    assert rate == 16000 and not audio.converted and audio.samples.dtype == np.float32
    np.testing.assert_array_equal(audio.samples, raw.astype(np.float32) / 32768.0)


def test_stereo_44k1_is_downmixed_and_resampled(tmp_path):
    t = np.arange(44100) / 44100
    left, right = 0.4 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 440 * t)
    sf.write(tmp_path / "s.wav", np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    audio = read_audio(tmp_path / "s.wav", 16000)
    assert audio.converted and (audio.source_rate_hz, audio.source_channels) == (44100, 2)
    assert audio.conversion == "2 channels averaged to mono, resampled 44100 -> 16000 Hz"
    assert len(audio.samples) == 16000
    expected = 0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)  # mean of the channels, sampled at 16 kHz
    np.testing.assert_allclose(audio.samples[200:-200], expected[200:-200], atol=2e-3)


def test_short_clip_is_zero_padded_and_long_cropped(tmp_path, real_wav):
    raw, _ = sf.read(real_wav, dtype="int16")
    sf.write(tmp_path / "short.wav", raw[:6400], 16000, subtype="PCM_16")
    short = read_clip(tmp_path / "short.wav", 16000, 16000)
    assert short.samples.shape == (16000,) and not short.converted and not short.cropped
    assert short.padded == "0.40 s, zero-padded to 1.00 s"
    np.testing.assert_array_equal(short.samples[:6400], raw[:6400] / 32768.0)
    assert not short.samples[6400:].any()
    long = np.concatenate([raw, raw])
    sf.write(tmp_path / "long.wav", long, 16000, subtype="PCM_16")
    cropped = read_clip(tmp_path / "long.wav", 16000, 16000)
    np.testing.assert_array_equal(cropped.samples, long[:16000] / 32768.0)
    assert cropped.cropped == "2.00 s, cut to its first 1.00 s" and not cropped.padded
    assert not read_clip(real_wav, 16000, 16000).padded  # a whole 1 s clip is left as it is
    np.testing.assert_array_equal(fit_length(np.ones(3, np.float32), 5), [1, 1, 1, 0, 0])


def test_float_wav_reads_unscaled(tmp_path):
    x = np.linspace(-0.5, 0.5, 8000).astype(np.float32)
    sf.write(tmp_path / "f.wav", x, 16000, subtype="FLOAT")
    np.testing.assert_array_equal(read_audio(tmp_path / "f.wav").samples, x)


@pytest.mark.parametrize(
    ("name", "make", "reason"),
    [
        ("empty.wav", lambda b: b"", "empty file"),
        ("cut.wav", lambda b: b[:5000], "truncated"),
        ("header_only.wav", lambda b: b[:30], "truncated"),
        ("text.wav", lambda b: b"this is not audio\n" * 20, "not readable audio"),
    ],
)
def test_unusable_files_raise_their_reason(tmp_path, real_wav, name, make, reason):
    (tmp_path / name).write_bytes(make(real_wav.read_bytes()))
    with pytest.raises(UnusableAudio, match=reason) as e:
        read_audio(tmp_path / name)
    assert "\n" not in str(e.value)
