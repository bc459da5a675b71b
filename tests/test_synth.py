"""kws.synth: espeak-ng speech parsed and placed correctly, coloured noise with the right spectral slope, and a
small dataset whose layout, speaker-disjoint splits and bytes (for a given seed, any --jobs) are as promised.

References: espeak-ng's own -w wav file read by soundfile, librosa's resampler, scipy's Welch PSD, file names
parsed here. Needs the espeak-ng binary (Debian package espeak-ng). Run: .venv/bin/pytest tests/test_synth.py -q
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import welch

from kws import synth
from kws.errors import KwsError

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

# 12 voices for 50 clips: speakers repeat, so a clip-level (instead of speaker-level) split would show up.
SMALL = synth.SynthConfig(
    words=("yes", "no", "stop"),
    unknown_words=("bed", "cat"),
    per_word=10,
    noise_seconds=2.0,
    accents=("en-us", "en-gb-x-rp", "en-029"),
    variants=("m1", "m3", "f2", "f4"),
)


def test_speak_matches_espeak_wav_file(tmp_path):
    wav = tmp_path / "ref.wav"
    subprocess.run(["espeak-ng", "-v", "en-gb-x-rp+f2", "-p", "60", "-s", "150", "-w", str(wav), "left"], check=True)
    ref, ref_rate = sf.read(wav, dtype="int16")
    audio, rate = synth.speak("left", "en-gb-x-rp+f2", 60, 150)
    assert rate == ref_rate == 22050
    np.testing.assert_array_equal(np.round(audio * 32768).astype(np.int16), ref)


def test_render_clip_places_the_resampled_word_at_its_offset():
    cfg = synth.SynthConfig()
    clip = synth.Clip(
        word="down",
        rel_path="down/x_nohash_0.wav",
        split="train",
        voice="en-us+m3",
        pitch=50,
        speed_wpm=175,
        peak=0.5,
        offset_fraction=0.75,
        noise_floor=0.0,
        noise_seed=1,
    )
    out = synth.render_clip(clip, cfg).astype(np.float32) / 32767
    assert out.shape == (16000,)
    raw, rate = synth.speak("down", "en-us+m3", 50, 175)
    ref = librosa.resample(raw, orig_sr=rate, target_sr=16000)
    loud = np.flatnonzero(np.abs(ref) > 0.02 * np.abs(ref).max())
    ref = ref[loud[0] : loud[-1] + 1] * (0.5 / np.abs(ref).max())
    start = int(0.75 * (16000 - ref.size))
    assert abs(np.abs(out).max() - 0.5) < 1e-3
    assert np.all(out[:start] == 0) and np.all(out[start + ref.size + 50 :] == 0)
    segment = out[start : start + ref.size]
    assert np.corrcoef(segment, ref)[0, 1] > 0.99  # same word, same place; resamplers differ slightly


@pytest.mark.parametrize(("kind", "slope_db_per_decade"), [("white", 0.0), ("pink", -10.0), ("brown", -20.0)])
def test_noise_colour_has_the_textbook_spectral_slope(kind, slope_db_per_decade):
    x = synth.make_noise(kind, 20.0, 16000, np.random.default_rng(3))
    f, psd = welch(x, fs=16000, nperseg=4096)
    band = (f >= 50) & (f <= 5000)
    slope = np.polyfit(np.log10(f[band]), 10 * np.log10(psd[band]), 1)[0]
    assert abs(slope - slope_db_per_decade) < 1.5
    assert abs(np.sqrt(np.mean(x**2)) - 0.1) < 1e-4 and np.abs(x).max() < 1


def test_hum_peaks_at_50_hz():
    x = synth.make_noise("hum", 4.0, 16000, np.random.default_rng(0))
    f, psd = welch(x, fs=16000, nperseg=16000)
    assert f[np.argmax(psd)] == 50.0


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("synth") / "ds"
    return out, synth.synthesize(out, SMALL, jobs=2, progress=False)


def test_layout_splits_and_speakers(small):
    root, summary = small
    assert summary["clips"] == 5 * 10
    for word in ("yes", "no", "stop", "bed", "cat"):
        wavs = sorted((root / word).glob("*.wav"))
        assert len(wavs) == 10
        for wav in wavs[:3]:
            info = sf.info(wav)
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
    noise = sorted(p.name for p in (root / "_background_noise_").glob("*.wav"))
    assert noise == ["brown_noise.wav", "hum_noise.wav", "pink_noise.wav", "white_noise.wav"]
    split_of: dict[str, set[str]] = {}
    listed = set()
    for split, name in (("validation", "validation_list.txt"), ("testing", "testing_list.txt")):
        lines = (root / name).read_text().split()
        assert len(lines) == 5  # 10% of 10 clips for each of 5 words
        for line in lines:
            assert (root / line).is_file()
            listed.add(line)
            split_of.setdefault(line.split("/")[1].split("_nohash_")[0], set()).add(split)
    for wav in root.glob("*/*_nohash_*.wav"):
        rel = f"{wav.parent.name}/{wav.name}"
        if rel not in listed:
            split_of.setdefault(wav.name.split("_nohash_")[0], set()).add("train")
    assert all(len(s) == 1 for s in split_of.values()), "a speaker spans two splits"
    assert len(split_of) <= 12 and summary["speakers"] == {"train": 10, "validation": 1, "testing": 1}
    assert "32%" in (root / "README.md").read_text()


def test_same_seed_same_bytes_for_any_jobs_and_new_seed_differs(small, tmp_path):
    root, _ = small
    again = tmp_path / "again"
    synth.synthesize(again, SMALL, jobs=1, progress=False)
    assert _digest(again) == _digest(root)
    other = tmp_path / "other"
    synth.synthesize(other, synth.SynthConfig(**{**SMALL.to_dict(), "seed": 1}), jobs=2, progress=False)
    assert _digest(other) != _digest(root)


def test_missing_espeak_and_bad_output_folder_are_one_line_errors(small, tmp_path):
    with pytest.raises(KwsError, match="espeak-ng.*apt-get install espeak-ng") as err:
        synth.synthesize(tmp_path / "x", synth.SynthConfig(espeak_binary="espeak-ng-missing"), progress=False)
    assert "\n" not in str(err.value)
    with pytest.raises(KwsError, match="not empty"):
        synth.synthesize(small[0], SMALL, progress=False)
    with pytest.raises(KwsError, match="--per-word"):
        synth.synthesize(tmp_path / "y", synth.SynthConfig(per_word=0), progress=False)
