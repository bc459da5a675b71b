"""Training: train_one_epoch / fit, reused by `kws train` (kws.cli.model) and by growing (kws.grow).

Recipe (Hello Edge, docs/device.md): Adam 1e-3 with a cosine schedule stepped per batch, batch 64, background
noise + time shift recomputed on every batch by the data Augmenter, validation each epoch, best-by-validation and
last checkpoints. TrainConfig, the optimizer and the schedule live in kws.recipe, the accuracy routine in
kws.accuracy. fit() trains an EXISTING model (possibly just grown) for cfg.epochs with a fresh optimizer and a
restarted schedule, so growing can call it once per round.

Exact resume: the end-of-epoch checkpoint (last.pt) holds the model, optimizer, scheduler, the shuffle generator
(identical on every rank), each rank's augmentation generator and global torch RNG (dropout), the epoch, the best
validation accuracy and the history. Restoring them replays the remaining epochs bit for bit on the same device.

Scale-out: under `torchrun --nproc-per-node N` the model is wrapped in DistributedDataParallel and each rank
trains on its shard of every epoch (kws.distributed). Only rank 0 writes files
or prints.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from tqdm import tqdm

from kws import checkpoint, files
from kws.accuracy import as_tensor, evaluate
from kws.augment import Augmenter
from kws.data import Dataset
from kws.distributed import (
    average_buffers,
    check_device,
    cpu_fallback_warning,
    dist_info,
    init_distributed,
    select_device,
    shard_batches,
)
from kws.errors import KwsError
from kws.features import features
from kws.recipe import TrainConfig, make_optimizer, make_scheduler
from kws.resume import resume_settings, train_differences
from kws.tblog import ScalarLog


def train_one_epoch(
    model: torch.nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    cfg: TrainConfig,
    generator: torch.Generator,
    *,
    augmenter: Augmenter | None = None,
    augment_generator: torch.Generator | None = None,
    desc: str = "train",
    progress: bool = True,
) -> dict:
    """One pass over the training clips; the scheduler steps per batch.

    inputs: waveforms (N, samples) when `augmenter` is given (features recomputed per batch), else features
    (N, frames, coeffs). `generator` draws the epoch's permutation and must be in the same state on every rank;
    `augment_generator` (default: `generator`) drives the augmentation. Returns loss and acc over all ranks' clips.
    """
    rank, world = dist_info()
    device = next(model.parameters()).device
    order = torch.randperm(len(inputs), generator=generator).numpy()
    batches = shard_batches(order, cfg.batch_size, rank, world)
    aug_gen = augment_generator if augment_generator is not None else generator
    model.train()
    totals = torch.zeros(3, dtype=torch.float64)  # loss sum, correct, clips
    bar = tqdm(batches, desc=desc, leave=False, file=sys.stderr, disable=not progress or rank != 0, unit="batch")
    with bar:
        for idx in bar:
            index = torch.from_numpy(idx)
            x, y = inputs[index].to(device), labels[index].to(device)
            if augmenter is not None:  # on the model's device; the draws come from the CPU generator
                x = augmenter(x, aug_gen)
            logits = model(x)
            loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            totals += torch.tensor(
                [loss.item() * len(y), (logits.argmax(1) == y).sum().item(), len(y)], dtype=torch.float64
            )
            bar.set_postfix(loss=f"{totals[0] / totals[2]:.3f}", acc=f"{totals[1] / totals[2]:.3f}")
    if world > 1:
        dist.all_reduce(totals)
        average_buffers(model)
    return dict(loss=float(totals[0] / totals[2]), acc=float(totals[1] / totals[2]), clips=int(totals[2]))


def _seed_generators(cfg: TrainConfig, rank: int) -> tuple[torch.Generator, torch.Generator]:
    """Shuffle generator (the same seed on every rank) and this rank's augmentation generator; seeds dropout too."""
    torch.manual_seed(cfg.seed * 7919 + rank)
    shuffle = torch.Generator().manual_seed(cfg.seed)
    augment = torch.Generator().manual_seed(cfg.seed * 7919 + 104_729 * (rank + 1))
    return shuffle, augment


def _summary_line(rec: dict, epochs: int) -> str:
    val = f"  val loss {rec['val_loss']:.3f} acc {rec['val_acc']:.3f}" if "val_acc" in rec else ""
    return (
        f"epoch {rec['epoch']}/{epochs}  train loss {rec['train_loss']:.3f} acc {rec['train_acc']:.3f}{val}"
        f"  lr {rec['lr']:.2e}  {rec['seconds']:.1f}s"
    )


@dataclass
class _Session:
    """The live objects of one fit() call; `live` is what last.pt saves and restores."""

    model: torch.nn.Module
    net: torch.nn.Module  # the model, wrapped in DistributedDataParallel under torchrun
    cfg: TrainConfig
    optimizer: torch.optim.Optimizer
    scheduler: Any
    shuffle: torch.Generator
    augment: torch.Generator
    inputs: torch.Tensor
    labels: torch.Tensor
    augmenter: Augmenter | None

    @property
    def live(self) -> dict:
        return dict(
            model=self.model,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            train_config=self.cfg.to_dict(),
            shuffle=self.shuffle,
            augment=self.augment,
        )


def _session(model: torch.nn.Module, dataset: Dataset, cfg: TrainConfig, dev: torch.device) -> _Session:
    rank, world = dist_info()
    model.to(dev)
    shuffle, augment = _seed_generators(cfg, rank)
    split = dataset.splits["train"]
    if cfg.augment is None:
        inputs, augmenter = as_tensor(features(split, dataset.frontend)), None
    else:
        inputs, augmenter = as_tensor(split.waveforms), Augmenter(cfg.augment, dataset.noise, dataset.frontend)
    optimizer = make_optimizer(model, cfg)
    steps = len(shard_batches(np.arange(len(split.labels)), cfg.batch_size, rank, world))
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    return _Session(
        model=model,
        net=net,
        cfg=cfg,
        optimizer=optimizer,
        scheduler=make_scheduler(optimizer, cfg, steps),
        shuffle=shuffle,
        augment=augment,
        inputs=inputs,
        labels=as_tensor(split.labels, torch.int64),
        augmenter=augmenter,
    )


def _epoch(s: _Session, epoch: int, val, val_x: np.ndarray | None, progress: bool) -> dict:
    """Train one epoch and validate; the history record (epoch is 0-based here, 1-based in the record)."""
    t0, lr = time.perf_counter(), s.optimizer.param_groups[0]["lr"]
    stats = train_one_epoch(
        s.net,
        s.inputs,
        s.labels,
        s.optimizer,
        s.scheduler,
        s.cfg,
        s.shuffle,
        augmenter=s.augmenter,
        augment_generator=s.augment,
        desc=f"epoch {epoch + 1}/{s.cfg.epochs}",
        progress=progress,
    )
    rec = dict(epoch=epoch + 1, train_loss=stats["loss"], train_acc=stats["acc"], clips=stats["clips"], lr=lr)
    if val_x is not None:
        ev = evaluate(s.model, val_x, val.labels)
        rec.update(val_loss=ev["loss"], val_acc=ev["acc"])
    rec["seconds"] = time.perf_counter() - t0
    return rec


def fit(
    model: torch.nn.Module,
    dataset: Dataset,
    cfg: TrainConfig,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    epoch_offset: int = 0,
    device: str | None = None,
    keep: str = "best",
    extra: dict | None = None,
) -> list[dict]:
    """Train `model` (fresh or just grown) for cfg.epochs with a fresh optimizer and a restarted schedule.

    Validates on dataset.splits["validation"] after every epoch (if present; else selects by training accuracy).
    With run_dir, writes a complete run directory (configs, model.pt = best, last.pt, metrics.json, tb/) after
    every epoch, and resume=True continues from its last.pt. keep="best" leaves the best weights in `model` at the
    end, keep="last" the final ones. `extra` goes to run.json. Returns the per-epoch history, epoch numbers
    shifted by epoch_offset (growing's global epoch axis).
    """
    if keep not in ("best", "last"):
        raise KwsError(f"fit: keep={keep!r} must be 'best' or 'last'")
    rank, _ = dist_info()
    run_dir = Path(run_dir) if run_dir is not None else None
    s = _session(model, dataset, cfg, select_device(device))
    val = dataset.splits.get("validation")
    val_x = features(val, dataset.frontend) if val is not None and len(val.labels) else None
    state = checkpoint.ResumeState()
    restored = resume and run_dir is not None and (run_dir / checkpoint.LAST_FILE).is_file()
    if resume and run_dir is not None and rank == 0:
        for stale in checkpoint.remove_temp_files(run_dir):
            print(f"resume: removed {stale}, left by an interrupted write", file=sys.stderr, flush=True)
    if restored:
        state = checkpoint.restore_epoch(run_dir, **s.live)
    if run_dir is not None and rank == 0 and not restored:  # a restored run keeps its records as they are
        checkpoint.save_run(
            run_dir,
            model,
            dataset.frontend,
            dataset.labels,
            cfg,
            extra=_run_meta(dataset, extra),
        )
    writer = ScalarLog(run_dir) if run_dir is not None and rank == 0 else None
    try:
        for epoch in range(state.start_epoch, cfg.epochs):
            rec = _epoch(s, epoch, val, val_x, progress)
            rec["epoch"] += epoch_offset
            state.history.append(rec)
            improved = rec.get("val_acc", rec["train_acc"]) > state.best_acc
            if improved:
                state.best_acc = rec.get("val_acc", rec["train_acc"])
                state.best_epoch, state.best_weights = rec["epoch"], checkpoint.cpu_state_dict(model)
            if run_dir is not None:
                checkpoint.write_epoch(run_dir, **s.live, state=state, epoch=epoch + 1, improved=improved)
            if rank == 0:
                _log_epoch(writer, rec, cfg.epochs + epoch_offset, progress)
    finally:
        if writer is not None:
            writer.close()
    if keep == "best" and state.best_weights is not None:
        model.load_state_dict(state.best_weights)
    return state.history


def _run_meta(dataset: Dataset, extra: dict | None) -> dict:
    meta = dict(data_root=str(dataset.root) if dataset.root is not None else None, task=dataset.task)
    meta.update(extra or {})
    return meta


def _log_epoch(writer: ScalarLog | None, rec: dict, epochs: int, progress: bool) -> None:
    if writer is not None:
        keys = ("train_loss", "train_acc", "val_loss", "val_acc", "lr")
        writer.add_scalars(rec["epoch"], {k.replace("_", "/", 1): rec[k] for k in keys if k in rec})
    if progress:
        print(_summary_line(rec, epochs), file=sys.stderr, flush=True)


def limit_train(dataset: Dataset, clips: int, seed: int = 0) -> Dataset:
    """The dataset with its training split cut to a fixed class-balanced subset of `clips` (smoke tests)."""
    from kws.data import stratified_subset

    train = dataset.splits["train"]
    idx = np.sort(stratified_subset(train.labels, clips, seed=seed))
    small = replace(
        train, waveforms=train.waveforms[idx], labels=train.labels[idx], paths=[train.paths[i] for i in idx]
    )
    return replace(dataset, splits={**dataset.splits, "train": small})


def _check_new(cfg: TrainConfig, dropout: float | None, train_clips: int | None) -> None:
    if cfg.epochs < 1:
        raise KwsError(f"--epochs {cfg.epochs} must be >= 1")
    if dropout is not None and not 0 <= dropout < 1:
        raise KwsError(f"--dropout {dropout} must be a probability in [0, 1)")
    if train_clips is not None and train_clips < 1:
        raise KwsError(f"--train-clips {train_clips} must be >= 1 (leave it out to train on every clip)")


def train_run(
    run_dir: str | Path,
    *,
    arch: Any = None,
    data_root: str | Path | None = None,
    cfg: TrainConfig | None = None,
    task: Any = None,
    frontend: Any = None,
    activation: str | None = None,
    dropout: float | None = None,
    train_clips: int | None = None,
    resume: bool = False,
    progress: bool = True,
    device: str | None = None,
) -> dict:
    """The `kws train` job: load the data, build the model, fit, then test the best weights. Returns metrics.

    With resume=True every setting comes from run_dir (arch.json, train_config.json, frontend.json, run.json) and
    training continues from last.pt; a setting also passed here must equal the record (KwsError naming each that
    does not), and nothing in run_dir is written before that check.
    """
    from kws.data import TaskConfig, check_words, load_dataset
    from kws.frontend import FrontendConfig
    from kws.models import create

    run_dir = Path(run_dir)
    check_device(device)
    if resume:
        rec = resume_settings(run_dir)
        typed = dict(arch=arch, data_root=data_root, cfg=cfg, task=task, frontend=frontend)
        typed.update(activation=activation, dropout=dropout, train_clips=train_clips)
        diffs = train_differences(rec, typed)
        if diffs:
            raise KwsError(
                f"--resume: {'; '.join(diffs)}; a resume takes the run's own settings: leave those flags out, or "
                "train into a new --out"
            )
        arch, data_root, cfg = rec.spec, rec.data_root, rec.cfg
        task, frontend, train_clips = rec.task, rec.frontend, rec.train_clips
        activation = dropout = None  # already in the saved spec
    elif (run_dir / checkpoint.LAST_FILE).is_file():
        raise KwsError(f"--out {run_dir} already holds a run; add --resume to continue it or choose a new --out")
    if arch is None or data_root is None:
        raise KwsError("kws train needs --arch and --data (or --resume on an existing --out)")
    cfg, task, frontend = cfg or TrainConfig(), task or TaskConfig(), frontend or FrontendConfig()
    if not resume:
        _check_new(cfg, dropout, train_clips)
        check_words(data_root, task.words)
    rank, _ = init_distributed()
    dataset = load_dataset(data_root, task=task, frontend=frontend, progress=progress and rank == 0)
    if rank == 0:
        dataset.issues.report(dataset.root, run_dir, "train")  # one line; the list goes to audio_issues.json
    if train_clips:
        dataset = limit_train(dataset, train_clips, seed=cfg.seed)
    warning = cpu_fallback_warning(len(dataset.splits["train"].labels), select_device(device))
    if warning and rank == 0:
        print(f"train: {warning}", file=sys.stderr, flush=True)
    torch.manual_seed(cfg.seed)  # the same initial weights on every rank (DDP also broadcasts rank 0's)
    model = create(arch, num_classes=len(dataset.labels), activation=activation, dropout=dropout)
    history = fit(
        model,
        dataset,
        cfg,
        run_dir=run_dir,
        resume=resume,
        progress=progress,
        device=device,
        extra=dict(train_clips=train_clips),
    )
    if rank != 0:
        return {}
    metrics = checkpoint.read_metrics(run_dir)
    metrics["seconds_per_epoch"] = float(np.mean([h["seconds"] for h in history])) if history else None
    test = dataset.splits.get("test")
    if test is not None and len(test):
        ev = evaluate(model, features(test, dataset.frontend), test.labels)  # fit left the best weights in model
        per_class = dict(zip(dataset.labels, ev["per_class_acc"], strict=True))
        metrics["test"] = dict(acc=ev["acc"], loss=ev["loss"], n=ev["n"], per_class_acc=per_class)
    files.atomic_write_json(run_dir / checkpoint.METRICS_FILE, metrics)
    return metrics


__all__ = ["fit", "limit_train", "train_one_epoch", "train_run"]
