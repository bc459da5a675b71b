"""`kws cost|train|eval|predict` (kws/cli/model.py), in-process through main([...]) plus one real subprocess.

Covers: cost JSON keys and the Hello Edge figures; a 1-epoch train on a small class-balanced subset of the
real-speech slice writing a complete run directory; eval of that run reproducing the test accuracy train recorded
(train's in-memory best weights vs eval's reload of model.pt through the predictor route); predict on clips of the
slice read in place; --resume of a finished run; one-line errors with exit code 2.
Run: `.venv/bin/pytest tests/test_cli_model.py -q` (about 30 s: it reads the slice twice).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from kws.cli import main


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))


def test_cost_json(capsys):
    assert main(["cost", "--arch", "ds-cnn-m", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"params_trainable", "params_deployed", "macs", "peak_activation_bytes", "per_layer"} <= set(out)
    assert (out["params_deployed"], out["macs"], out["peak_activation_bytes"]) == (135_032, 9_816_384, 54_180)
    assert sum(layer["macs"] for layer in out["per_layer"]) == out["macs"]


def test_cli_activation_choices_are_the_models():
    from kws.cli import ACTIVATIONS
    from kws.models import ACTIVATIONS as MODEL_ACTIVATIONS

    assert ACTIVATIONS == MODEL_ACTIVATIONS


@pytest.mark.parametrize("activation,peak", [("silu", 24_000), ("hardswish", 16_000)])
def test_cost_activation_changes_only_the_ram_peak(capsys, activation, peak):
    # ds-cnn-s: every layer outputs 25x5x64 = 8,000 int8; the TFLM heads measured on the host are 24,000 B (SiLU:
    # LOGISTIC + MUL keep three of them live) and 16,000 B (hard swish, as ReLU), docs/results.md "Activations".
    assert main(["cost", "--arch", "ds-cnn-s", "--activation", activation, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["params_deployed"], out["macs"], out["peak_activation_bytes"]) == (22_604, 2_656_768, peak)


@pytest.mark.parametrize(
    "argv", [["cost", "--arch", "ds-cnn-xxl"], ["eval", "--model", "nowhere.tflite", "--test-set", "x"]]
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"kws {argv[0]}: error:") and "\n" not in err


def test_train_eval_predict_resume_on_the_slice(tmp_path, mini_root, capsys, monkeypatch):
    from kws import distributed

    monkeypatch.setattr(distributed, "CPU_WARN_CLIPS", 50)  # 96 clips: "large", so training on the CPU warns
    run = tmp_path / "run"
    argv = [
        "train",
        "--arch",
        "seed@12",
        "--data",
        str(mini_root),
        "--out",
        str(run),
        "--epochs",
        "1",
        "--train-clips",
        "96",
        "--batch-size",
        "32",
        "--quiet",
        "--threads",
        "1",
        "--json",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["history"][0]["clips"] == 96 and metrics["test"]["n"] > 500
    assert ("train: warning: no GPU found; 96 training clips" in captured.err) != torch.cuda.is_available()
    for name in (
        "model.pt",
        "last.pt",
        "arch.json",
        "frontend.json",
        "labels.json",
        "train_config.json",
        "run.json",
        "metrics.json",
    ):
        assert (run / name).is_file(), name
    assert json.loads((run / "run.json").read_text())["data_root"] == str(mini_root)

    assert main(["eval", "--model", str(run), "--data", str(mini_root), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["n"] == metrics["test"]["n"]
    assert ev["acc"] == metrics["test"]["acc"]  # reloaded model.pt == the best weights train tested
    assert sum(map(sum, ev["confusion"])) == ev["n"]
    for i, (label, row) in enumerate(zip(ev["labels"], ev["confusion"], strict=True)):
        assert ev["per_class_acc"][label] == pytest.approx(row[i] / sum(row))

    clips = [
        mini_root / "yes" / sorted(p.name for p in (mini_root / "yes").glob("*.wav"))[0],
        mini_root / "no" / sorted(p.name for p in (mini_root / "no").glob("*.wav"))[0],
    ]
    assert main(["predict", "--model", str(run), *map(str, clips), "--json"]) == 0
    preds = json.loads(capsys.readouterr().out)
    assert [p["file"] for p in preds] == list(map(str, clips))
    assert all(p["label"] == max(p["probs"], key=p["probs"].get) for p in preds)

    assert main(["train", "--out", str(run), "--resume", "--quiet", "--json"]) == 0  # finished: nothing to redo
    assert len(json.loads(capsys.readouterr().out)["history"]) == 1
    assert main(argv) == 2  # the same --out again without --resume
    assert "already holds a run" in capsys.readouterr().err


def test_subprocess_smoke():
    done = subprocess.run(
        [sys.executable, "-m", "kws", "cost", "--arch", "ds-cnn-s"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0
    assert "22,604 deployed" in done.stdout and "2,656,768" in done.stdout
