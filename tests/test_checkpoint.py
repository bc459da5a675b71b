"""Run directories (kws/checkpoint.py): atomic writes, save_run/load_run round trip, one-line errors on bad runs.

The round trip is checked against the original in-memory model's outputs; atomicity by failing a write halfway
(the old file must survive, no temp file may remain); TensorBoard scalars by tensorboard's own reader.
Run: `.venv/bin/pytest tests/test_checkpoint.py -q` (a few seconds).
"""

from __future__ import annotations

import json
import os
import stat

import pytest
import torch

from kws import checkpoint, files, tblog
from kws.data import TaskConfig
from kws.errors import KwsError
from kws.frontend import FrontendConfig
from kws.models import DSCNN, resolve_arch

LABELS = TaskConfig().labels


def _trained_like(arch: str = "seed") -> DSCNN:
    """A model with non-default BN statistics, so a load that forgot buffers would show."""
    torch.manual_seed(0)
    model = DSCNN(resolve_arch(arch))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 49, 10) * 3 + 1)
    return model.eval()


def _save(tmp_path, model=None):
    model = model or _trained_like()
    run = tmp_path / "run"
    checkpoint.save_run(
        run,
        model,
        FrontendConfig(),
        LABELS,
        {"epochs": 1},
        extra=dict(data_root="/data/sc", task=TaskConfig(words=tuple(LABELS[2:]))),
    )
    return run, model


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "x.json"
    files.atomic_write_json(path, {"a": 1})

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left behind


def test_written_files_are_readable_by_others(tmp_path):
    files.atomic_write_bytes(tmp_path / "b", b"xyz")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE((tmp_path / "b").stat().st_mode) == 0o666 & ~umask
    assert (tmp_path / "b").read_bytes() == b"xyz"


def test_save_then_load_run_reproduces_the_model_and_configs(tmp_path):
    run_dir, model = _save(tmp_path)
    run = checkpoint.load_run(run_dir)
    x = torch.randn(5, 49, 10)
    with torch.no_grad():
        assert torch.equal(run.model(x), model(x))
    assert not run.model.training
    assert run.spec == model.spec and run.labels == LABELS and run.frontend == FrontendConfig()
    assert run.data_root == "/data/sc" and run.task == TaskConfig()
    assert run.train_config == {"epochs": 1}
    assert json.loads((run_dir / "arch.json").read_text())["num_classes"] == 12


def test_load_run_which_last_reads_the_resume_state(tmp_path):
    run_dir, model = _save(tmp_path)
    other = _trained_like("seed@9")
    with pytest.raises(KwsError, match="does not fit"):  # last.pt from another architecture
        checkpoint.save_state(run_dir, dict(model=other.state_dict()))
        checkpoint.load_run(run_dir, which="last")
    checkpoint.save_state(run_dir, dict(model=model.state_dict(), epoch=3))
    assert checkpoint.load_run(run_dir, which="last").spec == model.spec


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "model.pt").write_bytes(b"not a zip"), "corrupt"),
        (lambda d: (d / "model.pt").unlink(), "missing"),
        (lambda d: (d / "labels.json").write_text("[1, 2"), "corrupt"),
        (lambda d: (d / "labels.json").write_text('["a", "b"]'), "12 class names"),
        (lambda d: (d / "arch.json").write_text(json.dumps({**resolve_arch("seed@8").to_dict()})), "does not fit"),
        (
            lambda d: (d / "frontend.json").write_text(json.dumps({"num_coefficients": 13, "num_mel_bins": 40})),
            "does not match the frontend",
        ),
    ],
)
def test_broken_runs_fail_with_one_line(tmp_path, damage, message):
    run_dir, _ = _save(tmp_path)
    damage(run_dir)
    with pytest.raises(KwsError, match=message) as e:
        checkpoint.load_run(run_dir)
    assert "\n" not in str(e.value)


def test_not_a_run_directory(tmp_path):
    with pytest.raises(KwsError, match="not a directory"):
        checkpoint.load_run(tmp_path / "nope")
    with pytest.raises(KwsError, match="arch.json is missing"):
        checkpoint.load_run(tmp_path)


def test_scalar_log_is_read_back_by_tensorboard(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log = tblog.ScalarLog(tmp_path)
    for step in (1, 2, 3):
        log.add_scalars(step, {"val/acc": step / 10, "train/loss": 3.0 - step})
    log.close()
    reader = EventAccumulator(str(tmp_path / "tb"))
    reader.Reload()
    assert [(e.step, round(e.value, 6)) for e in reader.Scalars("val/acc")] == [(1, 0.1), (2, 0.2), (3, 0.3)]
    assert [e.value for e in reader.Scalars("train/loss")] == [2.0, 1.0, 0.0]


def test_remove_temp_files_takes_only_the_temp_siblings_of_atomic_writes(tmp_path):
    files.atomic_write_json(tmp_path / "metrics.json", {"a": 1})
    (tmp_path / ".metrics.json.k3j4h5.tmp").write_text("{")  # what a kill -9 mid-write leaves
    (tmp_path / ".last.pt.abcdef.tmp").write_bytes(b"PK")
    (tmp_path / "notes.tmp").write_text("the user's")  # not one of ours: no leading dot
    (tmp_path / "tb").mkdir()
    removed = checkpoint.remove_temp_files(tmp_path)
    assert sorted(p.name for p in removed) == [".last.pt.abcdef.tmp", ".metrics.json.k3j4h5.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "notes.tmp", "tb"]
    assert checkpoint.remove_temp_files(tmp_path / "absent") == []
