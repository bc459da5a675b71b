"""The training recipe: TrainConfig (one phase's optimisation hyper-parameters), its optimizer and lr schedule.

Hello Edge (FIELD_FACTS.md): Adam 1e-3 with a cosine schedule stepped per batch, batch 64. Kept apart from the
training loop (kws.train, which re-exports everything here) so that configs and schedules can be built and tested
without the data pipeline; depends only on kws.augment and kws.errors.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch

from kws.augment import AugmentConfig
from kws.errors import KwsError

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Optimisation hyper-parameters of one training phase. augment=None trains on clean cached features."""

    epochs: int = 40
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # adam | adamw | sgd (momentum 0.9, Nesterov)
    weight_decay: float = 0.0
    schedule: str = "cosine"  # cosine (per batch, to 0 at the last step) | constant
    warmup_epochs: int = 0  # linear warm-up before the cosine
    label_smoothing: float = 0.0
    seed: int = 0
    augment: AugmentConfig | None = AugmentConfig()

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 0 or self.batch_size < 1:
            problems.append("--epochs must be >= 0 and --batch-size >= 1")
        if not self.lr > 0:
            problems.append("--lr must be > 0")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"--optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if not 0 <= self.label_smoothing < 1:
            problems.append("--label-smoothing must be in [0, 1)")
        if self.warmup_epochs < 0 or (self.epochs and self.warmup_epochs >= self.epochs):
            problems.append("warmup_epochs must be >= 0 and below --epochs")
        if problems:
            raise KwsError("train config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = None if self.augment is None else asdict(self.augment)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise KwsError(f"train config: unknown field(s) {unknown}; expected a subset of {sorted(known)}")
        kw = dict(d)
        if kw.get("augment") is not None:
            kw["augment"] = AugmentConfig.from_dict(kw["augment"])
        return cls(**kw)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = model.parameters()
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=0.9, nesterov=True, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """Multiplier of the base lr before optimizer step `step` (0-based): linear warm-up, then half a cosine period
    0.5 (1 + cos(pi t / T)) over the remaining steps (Loshchilov & Hutter 2017, SGDR without restarts)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    t, span = step - warmup_steps, max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(t, span) / span))


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int):
    total, warmup = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, cfg.schedule))


__all__ = ["OPTIMIZERS", "SCHEDULES", "TrainConfig", "lr_factor", "make_optimizer", "make_scheduler"]
