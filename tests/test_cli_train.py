"""`kws train` (kws/cli/train.py): --words, --resume against the run's record, bad values as one line, --help.

Data: a yes / no slice (40 real clips per word, 12 of "cat" as unknown, 3 s of noise) copied from the real-speech
miniature with its split lists cut to them, so a 1-epoch run of a width-8 seed takes a couple of seconds.
Run: `.venv/bin/pytest tests/test_cli_train.py -q` (about 30 s).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

import kws.data
from kws.cli import main


def yes_no_slice(root: Path, mini_root: Path, per_word: int = 40) -> Path:
    """yes/, no/ (per_word clips each), cat/ (12) and 3 s of white noise, from the miniature, with its split lists
    cut to these clips (so every split has clips of every word)."""
    kept = set()
    for word, n in (("yes", per_word), ("no", per_word), ("cat", 12)):
        (root / word).mkdir(parents=True)
        files = sorted((mini_root / word).glob("*.wav"))
        for f in files[:: max(1, len(files) // n)][:n]:  # spread over the speakers, hence over the splits
            shutil.copy(f, root / word / f.name)
            kept.add(f"{word}/{f.name}")
    for name in ("validation_list.txt", "testing_list.txt"):
        lines = [x for x in (mini_root / name).read_text().split() if x in kept]
        (root / name).write_text("".join(f"{x}\n" for x in lines))
    noise, rate = sf.read(mini_root / "_background_noise_" / "white_noise.wav", dtype="int16")
    (root / "_background_noise_").mkdir()
    sf.write(root / "_background_noise_" / "white.wav", noise[: 3 * rate], rate, subtype="PCM_16")
    return root


@pytest.fixture(scope="module")
def slice_root(mini_root, tmp_path_factory) -> Path:
    return yes_no_slice(tmp_path_factory.mktemp("yesno") / "ds", mini_root)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))


def _argv(data: Path, out: Path) -> list[str]:
    return ["train", "--data", str(data), "--out", str(out), "--arch", "seed@8", "--words", "yes,no", "--epochs", "1"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("kws train: error: ") and "\n" not in err, err
    return err


def _snapshot(run: Path) -> dict:
    return {p.relative_to(run): (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}


RUN = ["--batch-size", "16", "--no-augment", "--quiet", "--json", "--threads", "1"]


@pytest.fixture(scope="module")
def trained(slice_root, tmp_path_factory):
    """A finished 1-epoch run on the yes/no task."""
    run = tmp_path_factory.mktemp("train") / "run"
    assert main([*_argv(slice_root, run), *RUN]) == 0
    return run


def test_words_choose_micro_speechs_task_and_are_recorded(trained, slice_root, capsys):
    assert json.loads((trained / "labels.json").read_text()) == ["_silence_", "_unknown_", "yes", "no"]
    assert json.loads((trained / "run.json").read_text())["task"]["words"] == ["yes", "no"]
    assert json.loads((trained / "arch.json").read_text())["num_classes"] == 4
    assert main(["train", "--out", str(trained), "--resume", "--quiet", "--json"]) == 0  # the run's own words
    metrics = json.loads(capsys.readouterr().out)
    assert len(metrics["history"]) == 1 and len(metrics["test"]["per_class_acc"]) == 4
    assert main(["train", "--out", str(trained), "--resume", "--words", "yes,no", "--quiet"]) == 0  # equal: fine
    capsys.readouterr()


@pytest.mark.parametrize(
    "words, needle",
    [("yes,maybe", "maybe"), ("yes,yes", "twice"), ("yes,,no", "comma-separated"), ("_silence_", "_silence_")],
)
def test_bad_words_are_one_line_before_any_loading(slice_root, tmp_path, capsys, monkeypatch, words, needle):
    monkeypatch.setattr(kws.data, "load_dataset", _must_not_load)
    argv = _argv(slice_root, tmp_path / "r")
    argv[argv.index("--words") + 1] = words
    assert main([*argv, *RUN]) == 2
    err = _one_error_line(capsys)
    assert "--words" in err and needle in err
    if needle == "maybe":
        assert str(slice_root) in err
    assert not (tmp_path / "r").exists()


def test_resume_with_other_flags_is_refused_and_leaves_the_run_alone(trained, capsys):
    before = _snapshot(trained)
    argv = ["train", "--out", str(trained), "--resume", "--quiet"]
    assert main([*argv, "--epochs", "5", "--lr", "0.1"]) == 2
    err = _one_error_line(capsys)
    assert "--epochs 5 (the run's: 1" in err and "--lr 0.1 (the run's: 0.001" in err
    assert main([*argv, "--words", "yes,no,cat"]) == 2
    assert "--words yes,no,cat (the run's: yes,no" in _one_error_line(capsys)
    assert main([*argv, "--arch", "seed@12", "--dropout", "0.5", "--train-clips", "10"]) == 2
    err = _one_error_line(capsys)
    assert "--arch seed@12" in err and "--dropout 0.5 (the run's: 0.0" in err and "--train-clips 10" in err
    assert main([*argv, "--no-augment", "--epochs", "1", "--arch", "seed@8"]) == 0  # all equal to the record
    capsys.readouterr()
    after = _snapshot(trained)
    assert {k: v for k, v in after.items() if k.parts[0] != "tb"}.keys() == {k for k in before if k.parts[0] != "tb"}
    for name in ("arch.json", "run.json", "train_config.json", "labels.json", "frontend.json", "last.pt"):
        assert after[Path(name)] == before[Path(name)], name  # no record rewritten by any of these resumes


def _must_not_load(*args, **kwargs):
    raise AssertionError("the dataset was loaded before the flags were checked")


BAD = [
    (["--epochs", "0"], "--epochs 0"),
    (["--threads", "0"], "--threads 0"),
    (["--train-clips", "0"], "--train-clips 0"),
    (["--dropout", "2"], "--dropout 2"),
    (["--lr", "nan"], "--lr"),
    (["--device", "nonsense"], "--device 'nonsense'"),
    (["--device", "cuda:99"], "--device cuda:99"),
]
if not torch.cuda.is_available():
    BAD.append((["--device", "cuda"], "--device cuda: this torch"))


@pytest.mark.parametrize("flags, needle", BAD, ids=[" ".join(f) for f, _ in BAD])
def test_bad_values_are_one_line_before_the_data_loads(slice_root, tmp_path, capsys, monkeypatch, flags, needle):
    monkeypatch.setattr(kws.data, "load_dataset", _must_not_load)
    assert main([*_argv(slice_root, tmp_path / "r"), *RUN, *flags]) == 2
    assert needle in _one_error_line(capsys)


def test_help_gives_every_option_text_and_the_recipes_defaults():
    from kws.recipe import TrainConfig

    done = subprocess.run([sys.executable, "-m", "kws", "train", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    cfg = TrainConfig()
    for flag, value in (("--epochs", cfg.epochs), ("--lr", cfg.lr), ("--batch-size", cfg.batch_size)):
        assert f"(default: {value})" in text.split(flag, 2)[2].split(" --", 1)[0], flag
    from kws.cli import build_parser

    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    assert all(a.help for a in train._actions), [a.dest for a in train._actions if not a.help]


def test_building_the_parser_imports_no_torch():
    code = "import sys; from kws.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr
