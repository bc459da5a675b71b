"""Evaluation and prediction (kws/predict.py) on the real-speech slice and on synthetic wav files.

evaluate_model is checked against a clip-by-clip brute-force count with the torch model; predict_files against
soundfile + the numpy MFCC + softmax computed here; bad models and data must fail with one line (KwsError).
Run: `.venv/bin/pytest tests/test_predict.py -q` (about 15 s: it reads the slice's test split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from kws import checkpoint, predict
from kws.data import TaskConfig, load_dataset
from kws.errors import KwsError
from kws.frontend import FrontendConfig, compute_mfcc
from kws.models import DSCNN, resolve_arch

LABELS = TaskConfig().labels


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def test_clips(mini_root):
    """The slice's test split and its MFCCs, computed here with the numpy reference frontend in one batch."""
    test = load_dataset(mini_root, splits=("test",), progress=False).splits["test"]
    return test, compute_mfcc(test.waveforms, FrontendConfig())


@pytest.fixture()
def run_dir(tmp_path, mini_root, test_clips) -> Path:
    """A seed model with random convolutions, BatchNorm calibrated on real features and a least-squares classifier,
    saved as a run: its predictions vary from clip to clip, so a wrong count would show."""
    torch.manual_seed(4)
    model = DSCNN(resolve_arch("seed"))
    for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.momentum = None  # cumulative average: one pass gives the exact batch statistics
    model.train()
    with torch.no_grad():
        x = torch.from_numpy(test_clips[1])
        model(x)
        pooled = model.eval().features(x).mean(dim=(2, 3))  # a least-squares head: varied, better than chance
        target = torch.nn.functional.one_hot(torch.from_numpy(test_clips[0].labels), 12).float()
        sol = torch.linalg.lstsq(pooled - pooled.mean(0), target - target.mean(0)).solution
        model.classifier.weight.copy_(sol.T)
        model.classifier.bias.copy_(target.mean(0) - pooled.mean(0) @ sol)
    checkpoint.save_run(
        tmp_path / "run",
        model.eval(),
        FrontendConfig(),
        LABELS,
        {},
        extra=dict(data_root=str(mini_root), task=TaskConfig()),
    )
    return tmp_path / "run"


def _tone_wav(path: Path, hz: float, rate: int = 16000, seconds: float = 1.0) -> Path:
    t = np.arange(int(rate * seconds)) / rate
    sf.write(path, (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate, subtype="PCM_16")
    return path


def test_evaluate_model_equals_brute_force_count(run_dir, mini_root, test_clips):
    result = predict.evaluate_model(run_dir, data=mini_root, split="test")
    test, feats = test_clips
    with torch.no_grad():
        pred = checkpoint.load_run(run_dir).model(torch.from_numpy(feats)).argmax(1).numpy()
    confusion = np.zeros((12, 12), np.int64)
    for label, p in zip(test.labels, pred, strict=True):
        confusion[label, p] += 1
    assert result["n"] == len(test.labels) == confusion.sum()
    assert result["confusion"] == confusion.tolist()
    assert result["acc"] == pytest.approx(np.trace(confusion) / confusion.sum())
    assert result["per_class_acc"]["yes"] == pytest.approx(confusion[2, 2] / confusion[2].sum())
    assert np.count_nonzero(confusion.sum(0)) > 2  # the model is not constant: the check has teeth


def test_test_set_missing_classes_fails_with_one_line(run_dir, tmp_path):
    folder = tmp_path / "test_set"
    for label in ("_silence_", "yes", "no"):
        (folder / label).mkdir(parents=True)
        _tone_wav(folder / label / "a.wav", 440)
    with pytest.raises(KwsError, match="no clips of class") as e:
        predict.evaluate_model(run_dir, test_set=folder)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("name, content", [("m.tflite", b"garbage"), ("weights.pt", b"x"), ("missing.tflite", None)])
def test_bad_model_paths_fail_with_one_line(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(KwsError) as e:
        predict.load_predictor(path)
    assert "\n" not in str(e.value)


def test_exactly_one_data_source(run_dir, tmp_path):
    with pytest.raises(KwsError, match="exactly one"):
        predict.evaluate_model(run_dir)
    with pytest.raises(KwsError, match="exactly one"):
        predict.evaluate_model(run_dir, data=tmp_path, test_set=tmp_path)


class _Fake:
    """A predictor whose output width or input shape is wrong, as a mismatched .tflite would be."""

    def __init__(self, outputs: int):
        self.labels, self.frontend, self.outputs = LABELS, FrontendConfig(), outputs

    def predict(self, features):
        return np.full((len(features), self.outputs), 1 / self.outputs, np.float32)


def test_wrong_shape_models_fail_with_one_line():
    with pytest.raises(KwsError, match="outputs"):
        predict.predict_features(_Fake(outputs=10), np.zeros((2, 49, 10), np.float32))
    with pytest.raises(KwsError, match="expects features"):
        predict.predict_features(_Fake(outputs=12), np.zeros((2, 40, 10), np.float32))


def test_predict_files_probabilities_match_a_direct_forward_pass(run_dir, tmp_path):
    files = [_tone_wav(tmp_path / "low.wav", 300), _tone_wav(tmp_path / "high.wav", 2500)]
    results = predict.predict_files(run_dir, files)
    model = checkpoint.load_run(run_dir).model
    for f, r in zip(files, results, strict=True):
        wave, rate = sf.read(f, dtype="float32")
        assert rate == 16000
        with torch.no_grad():
            probs = torch.softmax(model(torch.from_numpy(compute_mfcc(wave[None], FrontendConfig()))), -1)[0]
        assert [r["probs"][lab] for lab in LABELS] == pytest.approx(probs.tolist(), abs=1e-6)
        assert r["label"] == LABELS[int(probs.argmax())]
        assert sum(r["probs"].values()) == pytest.approx(1.0, abs=1e-5)


def test_predict_files_reports_unreadable_audio(run_dir, tmp_path):
    bad = tmp_path / "empty.wav"
    bad.write_bytes(b"")
    good = _tone_wav(tmp_path / "tone.wav", 440, seconds=0.5)
    results = predict.predict_files(run_dir, [bad, good])
    assert results[0] == {"file": str(bad), "error": "empty file (0 bytes)"}
    assert results[1]["note"] == "padded: 0.50 s, zero-padded to 1.00 s" and set(results[1]["probs"]) == set(LABELS)
