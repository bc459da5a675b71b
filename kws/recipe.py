"""The recipes: TrainConfig (one training phase's optimisation hyper-parameters) and GrowConfig (the growth
schedule), the optimizer and the lr schedule.

Hello Edge (docs/device.md): Adam 1e-3 with a cosine schedule stepped per batch, batch 64. Kept apart from the
training loop (kws.train and kws.grow re-export everything here) so that configs and schedules can be built and
tested without the data pipeline. Importing this module imports no torch: the command line reads its defaults and
choices from these dataclasses while building its parsers (tests/test_cli_model.py checks it), so torch and
kws.augment are imported inside the functions that need them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from kws.device import ENGINES
from kws.errors import KwsError, known_fields

if TYPE_CHECKING:
    import torch

    from kws.augment import AugmentConfig

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("cosine", "constant")
COST_METRICS = ("params", "macs", "both", "ms")  # ms: predicted instructions on the core (kws.engine.costmodel)
SELECTORS = ("exact", "own", "random")
FINISHES = ("continue", "retrain")
SPLIT_SOLVERS = ("auto", "dense", "lanczos")
SPLIT_SAMPLINGS = ("importance", "uniform")
SPLIT_CLIP_SAMPLINGS = ("stratified", "importance")


def _default_augment() -> AugmentConfig:
    from kws.augment import AugmentConfig

    return AugmentConfig()


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
    augment: AugmentConfig | None = field(default_factory=_default_augment)  # Hello Edge noise + time shift

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 0 or self.batch_size < 1:
            problems.append("--epochs must be >= 0 and --batch-size >= 1")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            problems.append("--lr must be a finite number > 0")
        if not (self.weight_decay >= 0 and math.isfinite(self.weight_decay)):
            problems.append("--weight-decay must be a finite number >= 0")
        if self.optimizer not in OPTIMIZERS:
            problems.append(f"--optimizer {self.optimizer!r} is not one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            problems.append(f"schedule {self.schedule!r} is not one of {', '.join(SCHEDULES)}")
        if not 0 <= self.label_smoothing < 1:
            problems.append("--label-smoothing must be in [0, 1)")
        if self.warmup_epochs < 0 or (self.epochs and self.warmup_epochs >= self.epochs):
            problems.append("--warmup-epochs must be >= 0 and below --epochs")
        if problems:
            raise KwsError("train config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["augment"] = None if self.augment is None else asdict(self.augment)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        kw = known_fields(cls, d, "train config")
        if kw.get("augment") is not None:
            from kws.augment import AugmentConfig

            kw["augment"] = AugmentConfig.from_dict(kw["augment"])
        return cls(**kw)


@dataclass(frozen=True, kw_only=True)
class GrowConfig:
    """The growth recipe (kws.grow). Defaults chosen on the validation split of the mini set (bench/grow_vs_fixed)."""

    seed_arch: str = "seed"
    seed_width: int | None = 32  # uniform width of the seed; None keeps the preset's widths
    # silu: best on validation at 22.6K, 56.5K and 135K retrained (docs/results.md, activation search); 1.5x ReLU's RAM,
    # counted by kws.cost / --budget-ram-kb. hardswish keeps ReLU's RAM in the seed geometry.
    activation: str = "silu"
    budget_kparams: float | None = None
    budget_mmacs: float | None = None
    # the network's RAM on `engine`: kws, the generated engine's planned arena + scratch; tflm, TFLM's arena head
    budget_ram_kb: float | None = None
    budget_flash_kb: float | None = None  # the generated engine's constants: weights, biases, requant, tables
    # time per inference on the target's core at its clock, predicted by the engine's cost model (fitted in QEMU,
    # kws.engine.costmodel); `kws grow --target` sets it from the board's real-time budget
    budget_ms: float | None = None
    target: str | None = None  # the board the time budget was taken from (recorded; kws.export.targets)
    core: str = "cortex-m4"
    clock_mhz: float = 64.0
    engine: str = "kws"  # the runtime the RAM, flash and time budgets count (kws.device.ENGINES)
    # after growing, export the final model with the engine and measure it in QEMU when a device budget is set
    device_check: bool = True
    seed_epochs: int = 6
    epochs_per_round: int = 1
    final_epochs: int = 31
    total_epochs: int | None = None  # when set, final_epochs = total - seed - rounds (equal-epoch comparisons)
    max_rounds: int = 12
    growth_per_round: float = 0.5  # cap per round, as a fraction of the current cost
    max_width: int | None = 512
    eps: float = 1e-2
    tau: float = 0.0
    cost_metric: str = "params"  # params | macs | both | ms
    selector: str = "exact"  # exact (S_own + S_dw) | own (public code's S_own) | random (ablation)
    # softplus surrogate for ReLU's a'': kws.splitting.SplitPassConfig's default, spelled out so that this
    # module needs no torch (tests/test_grow.py checks they agree)
    surrogate_beta: float = 3.0
    # Each round's pass: splitting.resolve_preset (FAST while narrow, WIDE once wide); set fields override it.
    split_solver: str = "auto"  # auto | dense (form S, eigh; FAST) | lanczos (matrix-free, every position; WIDE)
    split_clips: int | None = None  # clips of the splitting pass
    position_stride: int | None = None  # keep ~1 in N (clip, position) rows (unbiased); dense solver only
    split_sampling: str | None = None  # how those rows are drawn: importance | uniform
    split_clip_sampling: str | None = None  # how the clips are drawn: stratified | importance
    lanczos_iters: int | None = None  # Lanczos steps per layer with the lanczos solver
    # retrain: chosen on the validation split of the mini set (bench/grow_vs_fixed.py, SiLU, 5 seeds at 22.6K:
    # val 88.0 +- 0.6% retrained vs 86.4 +- 1.5% continued vs 85.9 +- 0.9% uniform width; the same order at
    # 56.5K and 135K, docs/results.md "Does growing beat hand-sizing?").
    finish: str = "retrain"  # continue | retrain
    compare_retrain: bool = False
    seed: int = 0
    train: TrainConfig = field(default_factory=TrainConfig)

    def __post_init__(self) -> None:
        problems = []
        for name in ("budget_kparams", "budget_mmacs", "budget_ram_kb", "budget_flash_kb", "budget_ms", "clock_mhz"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value > 0):
                problems.append(f"{flag(name)} {value} must be a finite number > 0")
        for name in ("seed_epochs", "epochs_per_round", "final_epochs", "total_epochs", "max_rounds", "max_width"):
            value = getattr(self, name)
            least = 0 if name in ("seed_epochs", "max_rounds") else 1
            if value is not None and value < least:
                problems.append(f"{flag(name)} {value} must be >= {least}")
        for name in ("growth_per_round", "eps"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                problems.append(f"{flag(name)} {value} must be a finite number > 0")
        if not math.isfinite(self.tau):
            problems.append(f"--tau {self.tau} must be a finite number")
        if self.seed_width is not None and self.seed_width < 1:
            problems.append(f"--seed-width {self.seed_width} must be >= 1 (0 on the command line: the preset's)")
        for name, choices in (
            ("cost_metric", COST_METRICS),
            ("selector", SELECTORS),
            ("finish", FINISHES),
            ("split_solver", SPLIT_SOLVERS),
            ("engine", ENGINES),
        ):
            if getattr(self, name) not in choices:
                problems.append(f"{flag(name)} {getattr(self, name)!r} is not one of {', '.join(choices)}")
        if self.engine == "tflm":
            for name in ("budget_ms", "budget_flash_kb"):
                if getattr(self, name) is not None:
                    problems.append(
                        f"{flag(name)} counts the generated engine (--engine kws), not TFLM; drop it or the --engine"
                    )
        if problems:
            raise KwsError("grow config: " + "; ".join(problems))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["train"] = self.train.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict) -> GrowConfig:
        kw = known_fields(cls, d, "grow config")
        if kw.get("train") is not None:
            kw["train"] = TrainConfig.from_dict(kw["train"])
        return cls(**kw)


# Config fields whose command-line flag is not --<field with dashes>; the nested TrainConfig of GrowConfig is
# "train.<field>" (kws grow --lr sets train.lr).
FLAGS = {"position_stride": "--split-stride", "augment": "--no-augment", "data_root": "--data", "task.words": "--words"}


def flag(name: str) -> str:
    """The command-line flag that sets config field `name` (for error messages that name what the user typed)."""
    name = name.removeprefix("train.")
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def config_changes(recorded: dict, given: dict, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(field, recorded value, given value) for every field whose values differ; nested dicts are walked."""
    out = []
    for key in sorted(set(recorded) | set(given)):
        a, b = recorded.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict) and key != "augment":
            out += config_changes(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append((f"{prefix}{key}", a, b))
    return out


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

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
    import torch

    total, warmup = cfg.epochs * steps_per_epoch, cfg.warmup_epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total, warmup, cfg.schedule))


__all__ = [
    "FLAGS",
    "OPTIMIZERS",
    "SCHEDULES",
    "GrowConfig",
    "TrainConfig",
    "config_changes",
    "flag",
    "lr_factor",
    "make_optimizer",
    "make_scheduler",
]
