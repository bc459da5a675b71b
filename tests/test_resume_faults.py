"""Kills during a run's writes, then --resume: the records must agree with the weights (kws.checkpoint, kws.train).

A training run commits each epoch with several file writes (last.pt, model.pt, metrics.json; the configs first).
Two ways to stop it between them: in-process, every os.replace into the run directory in turn raises (the state a
kill -9 just before that rename leaves, since each write is atomic), and once a real SIGKILL of a subprocess in the
middle of the final epoch's metrics.json write, which also leaves the temporary sibling behind. After the resume,
metrics.json, last.pt and model.pt must tell the same story as an uninterrupted run, and no temp file may remain.
Data: the synthetic tone task of test_train.py, served in place of the on-disk dataset.
Run: `.venv/bin/pytest tests/test_resume_faults.py -q` (about 20 s on two busy cores).
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from test_train import CFG, FRONTEND, SPEC, tone_dataset

import kws.data
from kws import checkpoint, train
from kws.accuracy import evaluate
from kws.errors import KwsError

# Epoch 2 must improve on epoch 1 (so that a kill can fall between last.pt and the improved model.pt) on every
# CPU: with 24 tones per class and lr 0.03 validation goes from about 7 to 12 of 24 clips, a margin that the
# summation-order differences between CPUs do not close (6 per class and lr 0.1 tied on an Intel Xeon).
PER_CLASS = 24
RUN_CFG = replace(CFG, epochs=2, lr=0.03, batch_size=8, augment=None)


def tones():
    return tone_dataset(per_class=PER_CLASS)


class Killed(BaseException):
    """Stands for the SIGKILL: nothing in the code under test catches a BaseException subclass it does not know."""


@pytest.fixture(autouse=True)
def _tone_data(tmp_path, monkeypatch):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kws.data, "load_dataset", lambda *a, **k: tones())


def _train(run: Path, **kw) -> dict:
    if kw.get("resume"):
        return train.train_run(run, progress=False, **kw)
    return train.train_run(run, arch=SPEC, data_root="synthetic", cfg=RUN_CFG, frontend=FRONTEND, progress=False)


def _replaces_into(run: Path, monkeypatch, kill_at: int | None = None) -> list[str]:
    """Count (and, at call `kill_at`, refuse) the os.replace calls that land a file in `run`."""
    real, seen = os.replace, []

    def counted(src, dst, *a, **k):
        if Path(dst).parent == run:
            seen.append(Path(dst).name)
            if len(seen) == kill_at:
                raise Killed
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "replace", counted)
    return seen


def _check_agrees(run: Path, reference: dict, ref_dir: Path) -> None:
    """metrics.json == last.pt's record == the uninterrupted run's; model.pt holds the best epoch's weights."""
    metrics = checkpoint.read_metrics(run)
    state = checkpoint.load_state(run)
    assert metrics["history"] == state["history"]
    assert len(metrics["history"]) == len(reference["history"])
    for got, want in zip(metrics["history"], reference["history"], strict=True):
        # approx: the subprocess may sum in another order than this process (exact replay is test_train's subject)
        assert {k: v for k, v in got.items() if k != "seconds"} == pytest.approx(
            {k: v for k, v in want.items() if k != "seconds"}
        )
    assert [h["epoch"] for h in state["history"]] == [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert state["epoch"] == RUN_CFG.epochs
    assert metrics["best_epoch"] == state["best_epoch"] == reference["best_epoch"]
    assert metrics["best_val_acc"] == state["best_acc"] == pytest.approx(reference["best_val_acc"])
    assert metrics["test"]["acc"] == pytest.approx(reference["test"]["acc"])
    best = checkpoint.torch_load(run / checkpoint.MODEL_FILE)
    want = checkpoint.torch_load(ref_dir / checkpoint.MODEL_FILE)
    assert all(torch.allclose(best[k].double(), v.double(), atol=1e-5) for k, v in want.items())
    val = tones().splits["validation"]
    model = checkpoint.load_run(run).model
    assert evaluate(model, train.features(val, FRONTEND), val.labels)["acc"] == metrics["best_val_acc"]
    assert not list(run.glob(".*.tmp"))


def test_killed_at_each_write_then_resumed_the_records_agree(tmp_path, monkeypatch):
    ref_dir = tmp_path / "ref"
    writes = _replaces_into(ref_dir, monkeypatch)
    reference = _train(ref_dir)
    assert writes.count("last.pt") == RUN_CFG.epochs and writes[-1] == "metrics.json"
    assert reference["best_epoch"] == 2  # so a kill can fall between last.pt and the improved model.pt
    for n in range(1, len(writes) + 1):
        run = tmp_path / f"killed_{n:02d}"
        _replaces_into(run, monkeypatch, kill_at=n)
        with pytest.raises(Killed):
            _train(run)
        _replaces_into(run, monkeypatch)
        try:
            _train(run, resume=True)
        except KwsError as e:  # killed before the run's record was complete: nothing to resume
            assert "run.json" in str(e) and "without --resume" in str(e), (n, writes[n - 1], e)
            assert not (run / checkpoint.LAST_FILE).exists()
            _train(run)
        _check_agrees(run, reference, ref_dir)


KILL_SCRIPT = """
import os, signal, sys
import torch
torch.set_num_threads(1)  # as the reference run in the test: the same summation order
sys.path.insert(0, {tests!r})
from test_resume_faults import RUN_CFG, _train, tones
import kws.data
kws.data.load_dataset = lambda *a, **k: tones()
real_fsync, calls = os.fsync, []

def fsync(fd):  # the final epoch's metrics.json is the write before the last one (the test result's)
    name = os.readlink(f"/proc/self/fd/{{fd}}")
    if os.path.basename(name).startswith(".metrics.json."):
        calls.append(name)
        if len(calls) == RUN_CFG.epochs:
            os.kill(os.getpid(), signal.SIGKILL)  # mid-write: the temp sibling is on disk, not yet renamed
    real_fsync(fd)

os.fsync = fsync
from pathlib import Path
_train(Path({run!r}))
"""


@pytest.fixture
def one_thread():
    """torch on one thread, as in the subprocess: lr 0.1 amplifies any difference in summation order."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_sigkill_mid_write_leaves_a_temp_file_that_resume_removes(tmp_path, capsys, one_thread):
    reference = _train(tmp_path / "ref")
    run = tmp_path / "run"
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(tests=str(Path(__file__).parent), run=str(run)))
    env = dict(os.environ, KWS_CACHE_DIR=str(tmp_path / "cache"))
    done = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr[-2000:]
    orphans = list(run.glob(".metrics.json.*.tmp"))
    assert len(orphans) == 1 and orphans[0].stat().st_size > 0
    assert checkpoint.load_state(run)["epoch"] == RUN_CFG.epochs  # last.pt landed, metrics.json did not
    assert len(checkpoint.read_metrics(run)["history"]) == RUN_CFG.epochs - 1
    _train(run, resume=True)
    assert f"removed {orphans[0]}" in capsys.readouterr().err
    _check_agrees(run, reference, tmp_path / "ref")
