"""Resuming a run: what its directory records about how it was made, and checking a resume against that record.

A resume takes the run's own settings. A setting the caller passes again (a flag typed beside --resume) must equal
the record; every one that differs is named, with both values and the file that holds the record, in one KwsError
raised before anything is written. Also here: loading the complete rounds of a growth run back, with one-line
errors naming a damaged round, and removing what a killed run leaves (temp files and half-written round folders).

    train run   arch.json, train_config.json, frontend.json, run.json (kws.checkpoint)
    growth run  grow_config.json (the GrowConfig), grow_data.json (data root, task, frontend), rounds/round_NNN/
"""

from __future__ import annotations

import json
import shutil
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from kws import checkpoint, models
from kws.data import TaskConfig
from kws.errors import KwsError
from kws.frontend import FrontendConfig
from kws.models import resolve_arch
from kws.recipe import GrowConfig, TrainConfig, config_changes, flag


@dataclass(frozen=True)
class RunSettings:
    """What a run directory records about how it was made (arch.json, train_config.json, frontend.json, run.json)."""

    spec: models.ArchSpec
    data_root: str
    cfg: TrainConfig
    task: TaskConfig
    frontend: FrontendConfig
    train_clips: int | None


def resume_settings(run_dir: str | Path) -> RunSettings:
    """The settings saved in a run directory, for --resume (KwsError when its record is incomplete)."""
    run_dir = Path(run_dir)
    if not (run_dir / checkpoint.RUN_FILE).is_file():  # written last of the records (checkpoint.save_run)
        raise KwsError(
            f"--resume: {run_dir / checkpoint.RUN_FILE} is missing, so {run_dir} holds no complete run record (the "
            "run was stopped before its first write finished, or this is not a run directory); start it again "
            "without --resume"
        )
    spec, _ = checkpoint.load_arch(run_dir)
    meta = checkpoint.read_json(run_dir / checkpoint.RUN_FILE)
    if not meta.get("task") or not meta.get("data_root"):
        raise KwsError(f"--resume: {run_dir / checkpoint.RUN_FILE} names no data root or task; cannot rebuild the data")
    return RunSettings(
        spec=spec,
        data_root=meta["data_root"],
        cfg=TrainConfig.from_dict(checkpoint.read_json(run_dir / checkpoint.TRAIN_CONFIG_FILE)),
        task=TaskConfig.from_dict(meta["task"]),
        frontend=FrontendConfig.from_dict(checkpoint.read_json(run_dir / checkpoint.FRONTEND_FILE)),
        train_clips=meta.get("train_clips"),
    )


def train_differences(rec: RunSettings, typed: dict) -> list[str]:
    """'--flag typed (the run's: recorded, in file)' for each setting given on --resume that is not the record's."""
    out = []

    def note(name: str, recorded: Any, value: Any, file: str) -> None:
        shown = {"--no-augment": ("augment", "no augment")}.get(name)
        if shown:
            recorded, value = (shown[0] if recorded else shown[1]), (shown[0] if value else shown[1])
        out.append(f"{name} {value} (the run's: {recorded}, {file})")

    if typed.get("arch") is not None:
        spec = resolve_arch(typed["arch"])
        same = dict(activation=rec.spec.activation, dropout=rec.spec.dropout, input_shape=rec.spec.input_shape)
        if replace(spec, **same) != rec.spec:
            out.append(f"--arch {typed['arch']} (the run's is another architecture, {checkpoint.ARCH_FILE})")
    for name, recorded in (("activation", rec.spec.activation), ("dropout", rec.spec.dropout)):
        if typed.get(name) is not None and typed[name] != recorded:
            note(f"--{name}", recorded, typed[name], checkpoint.ARCH_FILE)
    if typed.get("data_root") is not None and Path(typed["data_root"]).resolve() != Path(rec.data_root).resolve():
        note("--data", rec.data_root, typed["data_root"], checkpoint.RUN_FILE)
    if typed.get("train_clips") is not None and typed["train_clips"] != rec.train_clips:
        note("--train-clips", rec.train_clips or "every clip", typed["train_clips"], checkpoint.RUN_FILE)
    if typed.get("cfg") is not None:
        for name, recorded, value in config_changes(rec.cfg.to_dict(), typed["cfg"].to_dict()):
            note(flag(name.split(".")[0]), recorded, value, checkpoint.TRAIN_CONFIG_FILE)
    if typed.get("task") is not None:
        for name, recorded, value in config_changes(rec.task.to_dict(), typed["task"].to_dict()):
            shown = (",".join(recorded), ",".join(value)) if name == "words" else (recorded, value)
            note(flag(f"task.{name}" if name == "words" else name), *shown, checkpoint.RUN_FILE)
    if typed.get("frontend") is not None and typed["frontend"] != rec.frontend:
        out.append(f"frontend {typed['frontend']} (the run's: {rec.frontend}, {checkpoint.FRONTEND_FILE})")
    return out


def load_rounds(run_dir: Path, num_classes: int) -> tuple[list[dict], models.DSCNN | None]:
    """The complete rounds so far and the last one's model; a damaged round is a one-line error naming its file."""
    records, model = [], None
    for d in sorted((run_dir / "rounds").glob("round_[0-9][0-9][0-9]")):
        redo = f"delete {d} to redo that round (and those after it) with --resume"
        try:
            records.append(json.loads((d / "round.json").read_text()))
            spec = models.ArchSpec.from_dict(json.loads((d / "arch.json").read_text()))
        except FileNotFoundError as e:
            raise KwsError(f"--resume: {e.filename} is missing; {redo}") from None
        except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
            raise KwsError(f"--resume: {d}/round.json or arch.json is corrupt ({e}); {redo}") from None
        model = models.DSCNN(spec, num_classes=num_classes)
        try:
            model.load_state_dict(checkpoint.torch_load(d / "model.pt"))
        except KwsError as e:
            raise KwsError(f"--resume: {e}; {redo}") from None
        except (RuntimeError, TypeError, AttributeError) as e:
            first = str(e).strip().splitlines()[0][:120]
            raise KwsError(f"--resume: {d / 'model.pt'} does not fit its arch.json ({first}); {redo}") from None
    return records, model


CONFIG_FILE = "grow_config.json"  # the GrowConfig
DATA_FILE = "grow_data.json"  # data root, task and frontend the run grows on


def _recorded(out: Path) -> tuple[GrowConfig | None, dict | None]:
    """The run's GrowConfig and data record (None where a run stopped before writing them)."""
    found = []
    for name in (CONFIG_FILE, DATA_FILE):
        found.append(checkpoint.read_json(out / name) if (out / name).is_file() else None)
    cfg = GrowConfig.from_dict(found[0]) if found[0] is not None else None
    return cfg, found[1]


def grow_config(out_dir: str | Path) -> GrowConfig:
    """The GrowConfig of the run in out_dir, for --resume (KwsError when it has none)."""
    cfg, _ = _recorded(Path(out_dir))
    if cfg is None:
        raise KwsError(f"--resume: {Path(out_dir) / CONFIG_FILE} is missing; start the run again without --resume")
    return cfg


def check_grow(out: Path, cfg: GrowConfig, data_root: Any, task: Any, frontend: Any) -> tuple:
    """(data_root, task, frontend) from the run's record; KwsError naming every given setting that differs."""
    rec_cfg, rec_data = _recorded(out)
    diffs = []
    if rec_cfg is not None:
        for name, was, now in config_changes(rec_cfg.to_dict(), cfg.to_dict()):
            diffs.append(f"{flag(name)} {now} (the run's: {was}, {CONFIG_FILE})")
    if rec_data is not None:
        rec_root = rec_data["data_root"]
        if data_root is not None and Path(data_root).resolve() != Path(rec_root).resolve():
            diffs.append(f"--data {data_root} (the run's: {rec_root}, {DATA_FILE})")
        rec_task = TaskConfig.from_dict(rec_data["task"])
        if task is not None and task.words != rec_task.words:
            diffs.append(f"--words {','.join(task.words)} (the run's: {','.join(rec_task.words)}, {DATA_FILE})")
        elif task is not None and task != rec_task:
            diffs.append(f"task {task} (the run's: {rec_task}, {DATA_FILE})")
        rec_frontend = FrontendConfig.from_dict(rec_data["frontend"])
        if frontend is not None and frontend != rec_frontend:
            diffs.append(f"frontend {frontend} (the run's: {rec_frontend}, {DATA_FILE})")
        data_root, task, frontend = rec_root, rec_task, rec_frontend
    if diffs:
        raise KwsError(
            f"--resume: {'; '.join(diffs)}; a resume takes the run's own settings: leave those flags out, or grow "
            "into a new --out"
        )
    return data_root, task, frontend


def remove_grow_temps(out: Path) -> None:
    """What a killed run leaves: half-written round folders and the temp siblings of atomic writes."""
    stale = sorted((out / "rounds").glob(".tmp_round_*")) if (out / "rounds").is_dir() else []
    for d in stale:
        shutil.rmtree(d, ignore_errors=True)
    for p in [*stale, *checkpoint.remove_temp_files(out)]:
        print(f"grow: removed {p}, left by an interrupted run", file=sys.stderr, flush=True)


__all__ = [
    "CONFIG_FILE",
    "DATA_FILE",
    "RunSettings",
    "check_grow",
    "grow_config",
    "load_rounds",
    "remove_grow_temps",
    "resume_settings",
    "train_differences",
]
