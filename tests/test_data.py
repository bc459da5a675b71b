"""kws.data: split counts on the real-speech slice against its list files, speaker-disjoint splits, the SHA1 split
rule, 12-class proportions and determinism, bad files reported (not fatal) in a tiny dataset, the test-set layout,
Augmenter (determinism, shift and noise checked by brute force), the feature cache, stratified subsets, check_dataset.

Run: .venv/bin/python -m pytest tests/test_data.py -q
"""

from __future__ import annotations

import hashlib
import math
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import kws.data
import kws.features
from kws.augment import AugmentConfig, Augmenter
from kws.data import (
    Split,
    TaskConfig,
    check_dataset,
    load_dataset,
    load_test_set,
    stratified_subset,
    which_set,
)
from kws.errors import KwsError
from kws.features import features
from kws.frontend import FrontendConfig, compute_mfcc

KEYWORDS = set(TaskConfig().words)


def ref_split(name: str) -> str:
    """The TF rule written differently: n mod 2^27 is the low 27 bits of the SHA1 integer."""
    stem = name.split("_nohash_")[0]
    low = int.from_bytes(hashlib.sha1(stem.encode()).digest()[-4:], "big") & (2**27 - 1)
    pct = low * 100.0 / (2**27 - 1)
    return "validation" if pct < 10 else "test" if pct < 20 else "train"


def list_implied(root: Path) -> dict[str, list[str]]:
    """split -> clip paths, from the folder listing and the two list files only."""
    held = {}
    for split, name in (("validation", "validation_list.txt"), ("test", "testing_list.txt")):
        held.update({line.strip(): split for line in (root / name).read_text().split() if line.strip()})
    out: dict[str, list[str]] = {"train": [], "validation": [], "test": []}
    for wav in root.glob("[!_]*/*.wav"):
        rel = f"{wav.parent.name}/{wav.name}"
        out[held.get(rel, "train")].append(rel)
    return out


@pytest.fixture(scope="module")
def mini(mini_root):
    return load_dataset(mini_root, progress=False)


def test_mini_counts_follow_the_lists(mini, mini_root):
    implied = list_implied(mini_root)
    for name, paths in implied.items():
        split = mini.splits[name]
        labels = [mini.labels[i] for i in split.labels]
        known = Counter(p.split("/")[0] for p in paths if p.split("/")[0] in KEYWORDS)
        assert Counter(lab for lab in labels if lab in KEYWORDS) == known
        n_known = sum(known.values())
        others = [p for p in paths if p.split("/")[0] not in KEYWORDS]
        assert labels.count("_unknown_") == min(math.ceil(n_known / 10), len(others))
        assert labels.count("_silence_") == math.ceil(n_known / 10)
        unknown_paths = [p for p, lab in zip(split.paths, labels, strict=True) if lab == "_unknown_"]
        assert set(unknown_paths) <= set(others)
        assert all(
            p.startswith("_background_noise_/")
            for p, lab in zip(split.paths, labels, strict=True)
            if lab == "_silence_"
        )
    assert mini.problems == [] and mini.converted == 0 and len(mini.noise) == 6
    assert sum(len(s) for s in mini.splits.values()) > 3000


def test_speakers_never_span_splits(mini):
    speakers = {n: {Path(p).name.split("_nohash_")[0] for p in s.paths if "#" not in p} for n, s in mini.splits.items()}
    assert not speakers["train"] & speakers["validation"]
    assert not speakers["train"] & speakers["test"]
    assert not speakers["validation"] & speakers["test"]


def test_task_proportions_and_determinism(mini_root, mini):
    task = TaskConfig(silence_percent=20.0, unknown_percent=5.0, seed=7)
    a = load_dataset(mini_root, task=task, splits=("validation",), progress=False).splits["validation"]
    labels = [task.labels[i] for i in a.labels]
    n_known = sum(lab in KEYWORDS for lab in labels)
    assert labels.count("_silence_") == math.ceil(0.2 * n_known)
    assert labels.count("_unknown_") == math.ceil(0.05 * n_known)
    b = load_dataset(mini_root, task=task, splits=("validation",), progress=False).splits["validation"]
    assert a.paths == b.paths and np.array_equal(a.waveforms, b.waveforms)
    default = mini.splits["validation"]
    unknown = {p for p, i in zip(a.paths, a.labels, strict=True) if i == 1}
    assert unknown != {p for p, i in zip(default.paths, default.labels, strict=True) if i == 1}  # another seed


def test_which_set_matches_tf_rule():
    names = [f"{s:08x}_nohash_{k}.wav" for s in range(0, 40_000_000, 99_991) for k in range(2)]
    got = Counter()
    for n in names:
        assert which_set(f"yes/{n}") == ref_split(n) == which_set(f"no/{n.replace('_nohash_', '_nohash_9')}")
        got[which_set(n)] += 1
    assert 0.07 < got["validation"] / len(names) < 0.13 and 0.07 < got["test"] / len(names) < 0.13


def write_clip(path: Path, x: np.ndarray, rate: int = 16000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, rate, subtype="PCM_16")


@pytest.fixture
def tiny(tmp_path, mini_root):
    """A list-free dataset: a few real clips of yes / no / cat, 3 s of noise, and four bad or odd files in yes/."""
    root = tmp_path / "tiny"
    for word, n in (("yes", 12), ("no", 12), ("cat", 6)):
        (root / word).mkdir(parents=True)
        for f in sorted((mini_root / word).glob("*.wav"))[:n]:
            shutil.copy(f, root / word / f.name)
    noise, _ = sf.read(mini_root / "_background_noise_" / "white_noise.wav", dtype="int16")
    write_clip(root / "_background_noise_" / "white.wav", noise[:48000])
    real = sorted((mini_root / "yes").glob("*.wav"))[20]
    raw, _ = sf.read(real, dtype="int16")
    (root / "yes" / "corrupt_nohash_0.wav").write_bytes(b"RIFF not really a wav file" * 9)
    (root / "yes" / "empty_nohash_0.wav").write_bytes(b"")
    stereo = np.stack([raw, raw], axis=1).astype(np.float64) / 32768.0
    write_clip(root / "yes" / "stereo_nohash_0.wav", np.repeat(stereo, 3, axis=0)[:44100], 44100)
    write_clip(root / "yes" / "short_nohash_0.wav", raw[:6400])
    return root


def test_bad_files_are_reported_not_fatal(tiny):
    ds = load_dataset(tiny, task=TaskConfig(words=("yes", "no")), progress=False)
    assert dict(ds.problems).keys() == {"yes/corrupt_nohash_0.wav", "yes/empty_nohash_0.wav"}
    assert "empty" in dict(ds.problems)["yes/empty_nohash_0.wav"]
    assert ds.converted == 1 and ds.issues.padded == [("yes/short_nohash_0.wav", "0.40 s, zero-padded to 1.00 s")]
    loaded = {p: (n, i) for n, s in ds.splits.items() for i, p in enumerate(s.paths)}
    name, i = loaded["yes/short_nohash_0.wav"]
    assert not ds.splits[name].waveforms[i, 6400:].any() and ds.splits[name].waveforms[i, :6400].any()
    assert "yes/stereo_nohash_0.wav" in loaded
    for p, (name, _) in loaded.items():  # no list files: the SHA1 rule decides
        if "#" not in p:
            assert name == ref_split(Path(p).name), p


def test_check_dataset_reports_everything(tiny):
    report = check_dataset(tiny, task=TaskConfig(words=("yes", "no")))
    assert report["split_rule"] == "sha1" and [p["path"] for p in report["converted"]] == ["yes/stereo_nohash_0.wav"]
    assert {p["path"] for p in report["unusable"]} == {"yes/corrupt_nohash_0.wav", "yes/empty_nohash_0.wav"}
    assert [p["path"] for p in report["padded"]] == ["yes/short_nohash_0.wav"]
    files = [f for f in tiny.glob("[!_]*/*.wav") if "corrupt" not in f.name and "empty" not in f.name]
    expected = Counter(ref_split(f.name) for f in files)
    assert {n: s["clips"] for n, s in report["splits"].items()} == {
        n: expected[n] for n in ("train", "validation", "test")
    }
    assert report["speakers_in_several_splits"] == [] and report["noise_files"] == ["white.wav"]


def test_missing_or_empty_folder_says_what_to_run(tmp_path):
    for root in (tmp_path / "nope", tmp_path):
        with pytest.raises(KwsError, match="kws data synth --out") as e:
            load_dataset(root, progress=False)
        assert "\n" not in str(e.value)


def test_official_test_set_layout(tmp_path, mini_root):
    root = tmp_path / "test_set"
    expect = {}
    for label, src in (("_silence_", None), ("_unknown_", "cat"), ("yes", "yes"), ("go", "go")):
        (root / label).mkdir(parents=True)
        for k in range(3):
            target = root / label / f"{src or 'silence'}_{k:08x}_nohash_0.wav"
            if src:
                shutil.copy(sorted((mini_root / src).glob("*.wav"))[k], target)
            else:
                write_clip(target, np.zeros(16000, np.int16))
        expect[label] = 3
    ds = load_test_set(root)
    split = ds.splits["test"]
    assert Counter(ds.labels[i] for i in split.labels) == expect
    assert all(Path(p).parts[0] == ds.labels[i] for p, i in zip(split.paths, split.labels, strict=True))
    assert split.waveforms.shape == (12, 16000)


def test_augmenter_is_deterministic_and_changes_inputs(mini):
    x = torch.from_numpy(mini.splits["validation"].waveforms[:16])
    aug = Augmenter(AugmentConfig(), mini.noise, mini.frontend)
    a = aug(x, torch.Generator().manual_seed(1))
    assert torch.equal(a, aug(x, torch.Generator().manual_seed(1)))
    assert not torch.equal(a, aug(x, torch.Generator().manual_seed(2)))
    clean = compute_mfcc(x.numpy())
    assert a.shape == clean.shape
    assert (np.abs(a.numpy() - clean).max(axis=(1, 2)) > 0.1).sum() >= 12
    off = Augmenter(AugmentConfig(noise_prob=0.0, time_shift_ms=0.0), mini.noise, mini.frontend)
    np.testing.assert_allclose(off(x, torch.Generator()).numpy(), clean, atol=1e-3)


def test_augmenter_shift_and_noise_by_brute_force():
    fe = FrontendConfig()
    rng = np.random.default_rng(0)
    x = rng.uniform(-0.5, 0.5, (8, fe.clip_samples)).astype(np.float32)
    shifter = Augmenter(AugmentConfig(noise_prob=0.0), [], fe)
    y = shifter.augment(torch.from_numpy(x), torch.Generator().manual_seed(3)).numpy()
    for xi, yi in zip(x, y, strict=True):  # every shift in range; the cheap first-sample test filters candidates
        shifts = [
            s
            for s in range(-1600, 1601)
            if (yi[max(s, 0)] == xi[max(-s, 0)]) and np.array_equal(yi, np.roll(xi, s) * _mask(s, len(xi)))
        ]
        assert len(shifts) == 1
    noise = [rng.uniform(-1, 1, 17000).astype(np.float32), rng.uniform(-1, 1, 16500).astype(np.float32)]
    mixer = Augmenter(AugmentConfig(noise_prob=0.8, noise_volume_max=0.1, time_shift_ms=0.0), noise, fe)
    small = x[:4] * 0.1
    y = mixer.augment(torch.from_numpy(np.repeat(small, 100, axis=0)), torch.Generator().manual_seed(4)).numpy()
    residual = y - np.repeat(small, 100, axis=0)
    windows = [np.lib.stride_tricks.sliding_window_view(n, 16000) for n in noise]  # every (file, offset) segment
    noisy = 0
    for r in residual:
        if not r.any():
            continue
        noisy += 1
        fits = []
        for w in windows:  # least-squares volume per offset on 64 samples, then the full check
            head = w[:, :64]
            v = head @ r[:64] / (head * head).sum(axis=1)
            o = int(np.argmin(np.abs(head * v[:, None] - r[:64]).max(axis=1)))
            if np.abs(w[o] * v[o] - r).max() < 1e-6:
                fits.append(v[o])
        assert len(fits) == 1 and 0 < fits[0] <= 0.1
    assert 0.7 < noisy / len(residual) < 0.9


def _mask(shift: int, n: int) -> np.ndarray:
    m = np.ones(n, np.float32)
    if shift > 0:
        m[:shift] = 0
    elif shift < 0:
        m[shift:] = 0
    return m


def test_features_cache_hit(tmp_path, mini, monkeypatch):
    test = mini.splits["test"]
    split = Split("test", test.waveforms[::10], test.labels[::10], test.paths[::10])
    first = features(split, mini.frontend, cache_dir=tmp_path)
    np.testing.assert_array_equal(first[:5], compute_mfcc(split.waveforms[:5], mini.frontend))
    assert len(list(tmp_path.glob("*.npy"))) == 1 and not list(tmp_path.glob("*.tmp"))

    def boom(*_, **__):
        raise AssertionError("cache miss")

    monkeypatch.setattr(kws.features, "compute_mfcc", boom)
    np.testing.assert_array_equal(features(split, mini.frontend, cache_dir=tmp_path), first)
    with pytest.raises(AssertionError, match="cache miss"):
        features(split, FrontendConfig(num_coefficients=13), cache_dir=tmp_path)


def test_stratified_subset_is_balanced_and_fixed():
    labels = np.array([0] * 50 + [1] * 30 + [2] * 4)
    idx = stratified_subset(labels, 24, seed=5)
    assert np.array_equal(idx, stratified_subset(labels, 24, seed=5)) and len(set(idx.tolist())) == 24
    assert Counter(labels[idx].tolist()) == {0: 10, 1: 10, 2: 4}
    assert not np.array_equal(idx, stratified_subset(labels, 24, seed=6))
    assert len(stratified_subset(labels, 100, seed=0)) == len(labels)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_augmenter_same_clips_on_gpu(mini):
    x = torch.from_numpy(mini.splits["validation"].waveforms[:32])
    aug = Augmenter(AugmentConfig(), mini.noise, mini.frontend)
    cpu = aug.augment(x, torch.Generator().manual_seed(9))
    gpu = aug.augment(x.cuda(), torch.Generator().manual_seed(9)).cpu()
    torch.testing.assert_close(gpu, cpu, rtol=0, atol=1e-6)
    torch.testing.assert_close(
        aug(x.cuda(), torch.Generator().manual_seed(9)).cpu(),
        aug(x, torch.Generator().manual_seed(9)),
        rtol=0,
        atol=2e-3,
    )


def test_a_dataset_path_that_is_a_file_is_not_said_to_be_missing(tmp_path):
    """A file where a folder is expected is said to be one, not to be missing (issue 19 item 12)."""
    (tmp_path / "file").write_text("x")
    for load in (load_dataset, load_test_set):
        with pytest.raises(KwsError, match="is a file, expected a folder") as e:
            load(tmp_path / "file")
        assert "does not exist" not in str(e.value)
        with pytest.raises(KwsError, match="does not exist"):
            load(tmp_path / "nope")


def test_messages_name_the_flag_not_the_config_field(tmp_path, mini_root):
    root = tmp_path / "ds"
    (root / "yes").mkdir(parents=True)
    shutil.copy(sorted((mini_root / "yes").glob("*.wav"))[0], root / "yes")
    with pytest.raises(KwsError) as e:
        load_dataset(root, task=TaskConfig(words=("yes",)), progress=False)  # no noise: no _silence_ clips
    assert "silence_percent" not in str(e.value) and "_background_noise_" in str(e.value)
    with pytest.raises(KwsError, match="--words") as e:
        load_dataset(root, task=TaskConfig(words=("yes", "no")), progress=False)
    assert "TaskConfig" not in str(e.value)
