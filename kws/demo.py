"""`make demo` / `kws demo`: the whole pipeline end to end on data this machine can make offline.

dataset (data/speech_commands_v0.02 when present, else an espeak-ng dataset spoken here) -> grow a DS-CNN from
a seed to a small parameter budget -> export int8 TFLite + C for a Cortex-M4 board -> growth report. The
schedule is short so that it finishes in minutes on two CPU cores; it demonstrates the pipeline, not the
recipe's accuracy (docs/results.md).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import replace
from pathlib import Path

from kws.errors import KwsError

REAL_DATA = Path("data/speech_commands_v0.02")


def _log(msg: str) -> None:
    print(f"demo: {msg}", file=sys.stderr, flush=True)


def dataset(out: Path, per_word: int) -> Path:
    """The real dataset when downloaded, else a synthetic one (made once, reused on later runs)."""
    if (REAL_DATA / "validation_list.txt").is_file():
        _log(f"using the real dataset at {REAL_DATA}")
        return REAL_DATA
    from kws.synth import SYNTH_NOTE, SynthConfig, synthesize

    synth_dir = out / "synth_data"
    if not (synth_dir / "testing_list.txt").is_file():
        _log(f"speaking a dataset with espeak-ng into {synth_dir} ({per_word} clips per word)")
        synthesize(synth_dir, SynthConfig(per_word=per_word))
    _log(SYNTH_NOTE)
    return synth_dir


def run_demo(
    out: str | Path = "demo_out",
    *,
    budget_kparams: float = 12.0,
    per_word: int = 100,
    target: str = "cortex-m4",
    words: tuple[str, ...] | None = None,
) -> dict:
    """Run the pipeline into `out`; returns where everything is. Re-running resumes finished steps, and a re-run
    whose settings (budget, words) differ from the first one's is a KwsError, not a silent reuse.

    words: the keywords to classify (default: the 10 of Speech Commands); ("yes", "no") is micro_speech's task.
    """
    from kws.data import TaskConfig
    from kws.export import export_run
    from kws.grow import grow
    from kws.recipe import GrowConfig
    from kws.report import write_report
    from kws.resume import check_grow
    from kws.synth import SynthConfig

    if per_word < 1:
        raise KwsError(f"--per-word {per_word} must be >= 1")
    base = GrowConfig()
    cfg = GrowConfig(  # checked (budget finite and > 0) before minutes of speech synthesis
        budget_kparams=budget_kparams,
        seed_width=16,
        seed_epochs=5,
        epochs_per_round=1,
        final_epochs=20,
        max_rounds=6,
        split_clips=256,
        train=replace(base.train, batch_size=64),
    )
    task = TaskConfig(words=words) if words else TaskConfig()
    spoken = SynthConfig().words
    if not (REAL_DATA / "validation_list.txt").is_file() and set(task.words) - set(spoken):
        missing = ", ".join(w for w in task.words if w not in spoken)
        raise KwsError(f"--words: the demo's synthetic dataset has no {missing}; choose from {', '.join(spoken)}")
    out = Path(out)
    run_dir = out / "grown"
    if run_dir.is_dir():  # a finished or interrupted earlier demo: its settings must be these
        check_grow(run_dir, cfg, None, task, None)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    root = dataset(out, per_word)
    if not (run_dir / "growth_report.json").is_file():
        _log(f"growing a DS-CNN to {budget_kparams:g}K parameters into {run_dir}")
        grow(root, run_dir, cfg, task=task, resume=run_dir.exists())
    export_dir = run_dir / "export"
    _log(f"exporting for {target} into {export_dir}")
    try:
        report = export_run(run_dir / "final", export_dir, target=target)
    except KwsError as e:
        raise KwsError(f"export failed: {e}") from None
    html = write_report(run_dir)
    grown = json.loads((run_dir / "growth_report.json").read_text())
    return dict(
        test_acc=grown["final"][grown["chosen_finish"]]["test_acc"],
        int8_test_acc=report["parity"]["int8_accuracy"],
        dataset=str(root),
        run_dir=str(run_dir),
        model=str(run_dir / "final"),
        export=str(export_dir),
        report=str(html),
        params=report.get("params"),
        macs=report.get("macs"),
        flash_bytes=report.get("flash_bytes"),
        ram_bytes=report.get("ram_bytes"),
        minutes=(time.perf_counter() - t0) / 60,
    )
