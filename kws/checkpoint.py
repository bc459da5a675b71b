"""Run directories: atomic writes, weights beside human-readable JSON configs, and loading a run back.

A run directory is self-contained: everything needed to evaluate, predict with or export a model comes from it.

    model.pt           best weights (a state_dict; loaded with weights_only=True)
    last.pt            resume state: weights, optimizer, scheduler, RNG states, epoch, best so far (and its
                       weights), history
    arch.json          the ArchSpec plus num_classes
    frontend.json      the FrontendConfig the features were computed with
    labels.json        class names in output order
    train_config.json  the TrainConfig
    run.json           data root, task config and anything else the writer adds (Run.meta)
    metrics.json       per-epoch history, best epoch, test result
    tb/                TensorBoard scalars

Every file is written to a temporary sibling and moved into place with os.replace, so an interrupted write
(Ctrl-C, a killed job) leaves either the old file or the new one, never half of one. A kill -9 can leave the
temporary sibling itself; a resume removes those (remove_temp_files).

One commit point per epoch: last.pt is written first and holds everything the epoch produced (the best weights
and the history too); model.pt and metrics.json are derived from it and written after it. A kill between those
writes leaves them a step behind last.pt, never ahead, and a resume rewrites both from last.pt before anything
else, so weights and metrics always agree.
"""

from __future__ import annotations

import io
import json
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from kws.data import TaskConfig
from kws.distributed import dist_info
from kws.errors import KwsError
from kws.files import atomic_write_bytes, atomic_write_json
from kws.frontend import FrontendConfig
from kws.models import DSCNN, ArchSpec

MODEL_FILE = "model.pt"
LAST_FILE = "last.pt"
ARCH_FILE = "arch.json"
FRONTEND_FILE = "frontend.json"
LABELS_FILE = "labels.json"
TRAIN_CONFIG_FILE = "train_config.json"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
WEIGHT_FILES = {"best": MODEL_FILE, "last": LAST_FILE}


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """torch.save into memory first, then an atomic write: a crash never leaves a truncated .pt."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _config_dict(cfg: Any) -> dict:
    if cfg is None:
        return {}
    if isinstance(cfg, dict):
        return cfg
    return cfg.to_dict() if hasattr(cfg, "to_dict") else asdict(cfg)


def save_weights(run_dir: str | Path, model: torch.nn.Module, name: str = MODEL_FILE) -> Path:
    """The model's state_dict (CPU tensors) as run_dir/name."""
    model = getattr(model, "module", model)  # unwrap DistributedDataParallel
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    path = Path(run_dir) / name
    atomic_torch_save(path, state)
    return path


def save_run(
    run_dir: str | Path,
    model: DSCNN,
    frontend: FrontendConfig,
    labels: list[str],
    train_config: Any,
    extra: dict | None = None,
    weights: bool = True,
) -> Path:
    """Write the configs (and, unless weights=False, model.pt) of a run; `extra` goes to run.json (Run.meta).

    Put `data_root` (str) and `task` (TaskConfig or dict) in `extra` so `kws eval` can rebuild the same splits.
    """
    run_dir = Path(run_dir)
    model = getattr(model, "module", model)
    if len(labels) != model.num_classes:
        raise KwsError(f"{run_dir}: {len(labels)} labels but the model has {model.num_classes} outputs")
    atomic_write_json(run_dir / ARCH_FILE, dict(model.spec.to_dict(), num_classes=model.num_classes))
    atomic_write_json(run_dir / FRONTEND_FILE, frontend.to_dict())
    atomic_write_json(run_dir / LABELS_FILE, list(labels))
    atomic_write_json(run_dir / TRAIN_CONFIG_FILE, _config_dict(train_config))
    meta = dict(extra or {})
    if isinstance(meta.get("task"), TaskConfig):
        meta["task"] = meta["task"].to_dict()
    atomic_write_json(run_dir / RUN_FILE, meta)  # last of the configs: its presence means the others are there
    if weights:
        save_weights(run_dir, model)
    return run_dir


def save_state(run_dir: str | Path, state: dict) -> Path:
    """The resume state (last.pt): tensors, ints, floats, strings, lists and dicts only (weights_only loadable)."""
    path = Path(run_dir) / LAST_FILE
    atomic_torch_save(path, state)
    return path


def remove_temp_files(run_dir: str | Path) -> list[Path]:
    """Delete the temporary siblings (.<name>.XXXX.tmp) an atomic write killed mid-way left in run_dir."""
    run_dir = Path(run_dir)
    stale = sorted(p for p in run_dir.glob(".*.tmp") if p.is_file()) if run_dir.is_dir() else []
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def metrics_of(state: dict | ResumeState) -> dict:
    """metrics.json as derived from a resume state (last.pt's dict or the live ResumeState)."""
    if isinstance(state, ResumeState):
        return dict(history=state.history, best_epoch=state.best_epoch, best_val_acc=state.best_acc)
    return dict(history=state["history"], best_epoch=state["best_epoch"], best_val_acc=state["best_acc"])


def read_json(path: Path) -> Any:
    if not path.is_file():
        raise KwsError(f"{path} is missing; is {path.parent} a run directory written by `kws train`?")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise KwsError(f"{path} is corrupt ({e}); retrain or restore the run directory") from None


def torch_load(path: str | Path) -> Any:
    """torch.load(weights_only=True) with one-line errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise KwsError(f"{path} is missing; is {path.parent} a run directory written by `kws train`?")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle, zip and unpickler errors all mean the same thing to the user
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise KwsError(f"{path} is corrupt or not a kws checkpoint ({reason[:120]})") from None


def load_state(run_dir: str | Path) -> dict:
    """The resume state written by save_state (KwsError when absent or corrupt)."""
    return torch_load(Path(run_dir) / LAST_FILE)


def read_metrics(run_dir: str | Path) -> dict:
    path = Path(run_dir) / METRICS_FILE
    return read_json(path) if path.is_file() else {}


@dataclass
class Run:
    """A loaded run directory: the model in eval mode and every config it was trained with."""

    path: Path
    model: DSCNN
    spec: ArchSpec
    frontend: FrontendConfig
    labels: list[str]
    data_root: str | None = None
    task: TaskConfig | None = None
    meta: dict = field(default_factory=dict)
    train_config: dict = field(default_factory=dict)


def load_arch(run_dir: str | Path) -> tuple[ArchSpec, int]:
    """(spec, num_classes) from run_dir/arch.json."""
    d = dict(read_json(Path(run_dir) / ARCH_FILE))
    num_classes = int(d.pop("num_classes", 12))
    try:
        return ArchSpec.from_dict(d), num_classes
    except (KeyError, TypeError, ValueError) as e:
        raise KwsError(f"{Path(run_dir) / ARCH_FILE} is not a valid arch spec ({e})") from None


def load_run(run_dir: str | Path, which: str = "best") -> Run:
    """Load a run directory; which="best" reads model.pt, which="last" the weights in last.pt."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise KwsError(f"{run_dir} is not a directory; give a run directory written by `kws train`")
    if which not in WEIGHT_FILES:
        raise KwsError(f"which={which!r}: choose one of {sorted(WEIGHT_FILES)}")
    spec, num_classes = load_arch(run_dir)
    try:
        frontend = FrontendConfig.from_dict(read_json(run_dir / FRONTEND_FILE))
    except TypeError as e:
        raise KwsError(f"{run_dir / FRONTEND_FILE} is not a valid frontend config ({e})") from None
    labels = read_json(run_dir / LABELS_FILE)
    if not isinstance(labels, list) or len(labels) != num_classes:
        raise KwsError(f"{run_dir / LABELS_FILE}: expected a list of {num_classes} class names")
    if tuple(spec.input_shape) != tuple(frontend.feature_shape):
        raise KwsError(
            f"{run_dir}: model input {tuple(spec.input_shape)} does not match the frontend's "
            f"{frontend.feature_shape}; the arch.json and frontend.json belong to different runs"
        )
    meta = read_json(run_dir / RUN_FILE) if (run_dir / RUN_FILE).is_file() else {}
    task = TaskConfig.from_dict(meta["task"]) if meta.get("task") else None
    train_config = read_json(run_dir / TRAIN_CONFIG_FILE) if (run_dir / TRAIN_CONFIG_FILE).is_file() else {}
    state = torch_load(run_dir / WEIGHT_FILES[which])
    if which == "last":
        state = state.get("model", {}) if isinstance(state, dict) else {}
    model = DSCNN(spec, num_classes=num_classes)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0][:160]
        raise KwsError(f"{run_dir / WEIGHT_FILES[which]} does not fit {ARCH_FILE} ({first})") from None
    return Run(
        path=run_dir,
        model=model.eval(),
        spec=spec,
        frontend=frontend,
        labels=list(labels),
        data_root=meta.get("data_root"),
        task=task,
        meta=meta,
        train_config=train_config,
    )


@dataclass
class ResumeState:
    """What training carries across epochs and into last.pt (besides the live model/optimizer/scheduler)."""

    start_epoch: int = 0
    best_acc: float = -1.0
    best_epoch: int = 0
    best_weights: dict | None = None
    history: list = field(default_factory=list)


def cpu_state_dict(model: torch.nn.Module) -> dict:
    """A detached CPU copy of the (DDP-unwrapped) model's state_dict."""
    return {k: v.detach().cpu().clone() for k, v in getattr(model, "module", model).state_dict().items()}


def _rank_rng(augment: torch.Generator) -> dict:
    state = dict(augment=augment.get_state(), torch=torch.get_rng_state())
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def write_epoch(
    run_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    train_config: dict,
    shuffle: torch.Generator,
    augment: torch.Generator,
    state: ResumeState,
    epoch: int,
    improved: bool,
) -> None:
    """End-of-epoch checkpoint: model.pt (when improved), last.pt and metrics.json, written by rank 0 only.

    Every rank must call it: each rank's augmentation generator and torch RNG (dropout) are gathered so a resume
    under the same number of processes replays them exactly.
    """
    rank, world = dist_info()
    rng = [_rank_rng(augment)]
    if world > 1:
        rng = [None] * world
        torch.distributed.all_gather_object(rng, _rank_rng(augment))
    if rank != 0:
        return
    run_dir = Path(run_dir)
    save_state(  # the commit point: model.pt and metrics.json below are derived from it (module docstring)
        run_dir,
        dict(
            epoch=epoch,
            model=cpu_state_dict(model),
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            shuffle_rng=shuffle.get_state(),
            rank_rng=rng,
            best_acc=state.best_acc,
            best_epoch=state.best_epoch,
            best_weights=state.best_weights,
            history=state.history,
            train_config=train_config,
        ),
    )
    if improved:
        atomic_torch_save(run_dir / MODEL_FILE, state.best_weights)
    atomic_write_json(run_dir / METRICS_FILE, metrics_of(state))


def restore_epoch(
    run_dir: str | Path,
    *,
    model: torch.nn.Module,
    optimizer: Any,
    scheduler: Any,
    train_config: dict,
    shuffle: torch.Generator,
    augment: torch.Generator,
) -> ResumeState:
    """Load last.pt into the live objects; KwsError if it was written for another config or architecture.

    Rank 0 then rewrites model.pt and metrics.json from it: they are derived from last.pt, and a kill between the
    writes of an epoch leaves them one epoch behind it.
    """
    run_dir = Path(run_dir)
    saved = load_state(run_dir)
    if saved.get("train_config") != train_config:
        raise KwsError(
            f"--resume: {run_dir / LAST_FILE} was written with another training config; "
            "resume with the run's own settings or start a new --out"
        )
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError:
        raise KwsError(f"--resume: {run_dir / LAST_FILE} holds another architecture; start a new --out") from None
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    shuffle.set_state(saved["shuffle_rng"])
    rank, world = dist_info()
    ranks = saved["rank_rng"]
    if len(ranks) == world:
        augment.set_state(ranks[rank]["augment"])
        torch.set_rng_state(ranks[rank]["torch"])
        if "cuda" in ranks[rank] and torch.cuda.is_available():
            torch.cuda.set_rng_state(ranks[rank]["cuda"])
    elif rank == 0:
        print(
            f"resuming {run_dir} with {world} processes instead of {len(ranks)}: augmentation draws will differ "
            "from an uninterrupted run",
            file=sys.stderr,
        )
    best = saved.get("best_weights")
    if best is None and (run_dir / MODEL_FILE).is_file():  # a last.pt written before it held the best weights
        best = torch_load(run_dir / MODEL_FILE)
    if rank == 0 and best is not None:  # a kill may have left them behind last.pt: rewrite both from it
        atomic_torch_save(run_dir / MODEL_FILE, best)
        atomic_write_json(run_dir / METRICS_FILE, metrics_of(saved))
    return ResumeState(
        start_epoch=int(saved["epoch"]),
        best_acc=float(saved["best_acc"]),
        best_epoch=int(saved["best_epoch"]),
        best_weights=best,
        history=list(saved["history"]),
    )


__all__ = [
    "ResumeState",
    "Run",
    "cpu_state_dict",
    "restore_epoch",
    "write_epoch",
    "atomic_torch_save",
    "load_arch",
    "load_run",
    "load_state",
    "metrics_of",
    "read_metrics",
    "remove_temp_files",
    "save_run",
    "save_state",
    "save_weights",
    "torch_load",
]
