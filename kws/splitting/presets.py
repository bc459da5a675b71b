"""Splitting-pass presets: how many clips, which rows, which solver (SplitPassConfig, FAST, WIDE, EXACT), the
pass's clips (pass_batches: a stratified subset, or clips drawn by importance) and its eigenpairs (pass_eigs: by
the preset's solver, kws.splitting.dense or kws.splitting.lanczos).

`kws grow` picks a preset per round with resolve_preset().
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from kws.errors import KwsError
from kws.models import DSCNN
from kws.splitting.dense import min_eigen, splitting_matrices
from kws.splitting.lanczos import lanczos_eigs
from kws.splitting.rows import sample_rows

SOLVERS = ("dense", "lanczos")
CLIP_SAMPLINGS = ("stratified", "importance")


@dataclass(frozen=True, kw_only=True)
class SplitPassConfig:
    """How to compute the splitting matrices: a speed/accuracy preset (see FAST, EXACT and bench/splitting_cost.py).

    clips: size of the fixed class-stratified subset of training clips (None: all of them).
    position_stride: keep about 1 in this many (clip, position) rows of every layer, at random (unbiased, reweighted).
    sampling: how the rows are drawn: "uniform", or "importance" (probability proportional to each row's weight
        in S, see kws.splitting.rows.sample_rows: at equal rows it picks the exact units more often).
    dtype: accumulation dtype ("float32" or "float64"; None: the model's). The eigen-decomposition is float64.
    solver: "dense" forms every S and takes a batched eigh; "lanczos" never forms S: lanczos_iters batched Lanczos
        steps on S v products over every position of the clips (kws.splitting.lanczos; position_stride must be 1).
    clip_sampling: "stratified" (a fixed class-stratified subset) or "importance" (clips drawn by how wrong the
        network is on them, reweighted; one extra forward over every clip, see pass_batches).
    matmul_dtype: the lanczos solver's product dtype: "auto" (bfloat16 on CPUs with AMX), "float32", "bfloat16".
    """

    clips: int | None = 1024
    batch_size: int = 128
    position_stride: int = 1
    sampling: str = "uniform"
    dtype: str | None = None
    mode: str = "exact"
    surrogate_beta: float = 3.0
    seed: int = 0
    solver: str = "dense"
    lanczos_iters: int = 32
    clip_sampling: str = "stratified"
    matmul_dtype: str = "auto"

    def __post_init__(self):
        if self.solver not in SOLVERS:
            raise KwsError(f"splitting: solver {self.solver!r} is not one of {SOLVERS}")
        if self.solver == "lanczos" and self.position_stride != 1:
            raise KwsError("splitting: the lanczos solver uses every position; set the position stride to 1")
        if self.clip_sampling not in CLIP_SAMPLINGS:
            raise KwsError(f"splitting: clip sampling {self.clip_sampling!r} is not one of {CLIP_SAMPLINGS}")
        if self.lanczos_iters < 1:
            raise KwsError(f"splitting: lanczos iterations must be >= 1, got {self.lanczos_iters}")

    def matrix_kwargs(self) -> dict:
        """Keyword arguments for splitting_matrices()."""
        return dict(
            mode=self.mode,
            surrogate_beta=self.surrogate_beta,
            position_stride=self.position_stride,
            sampling=self.sampling,
            dtype=None if self.dtype is None else getattr(torch, self.dtype),
            seed=self.seed,
        )


# What `kws grow` uses while the network is narrow. bench/splitting_cost.py on ds-cnn-s (2 quiet threads, 5 sampling
# seeds, 3 repeats; bench/README.md): 640 clips, about 1 in 8 rows by importance, pick on average 90.9% (min 87.3%) of
# the units the all-rows pass over every position of all 3,220 train clips picks, in 0.81-0.89 training epochs.
# 768 clips (this preset until the latest measurement) picked 92.8% but took 0.97-1.09 epochs in the same session
# (0.65-0.84 in an earlier one), over the 1-epoch goal. On ds-cnn-l FAST picks only 77% in 3.0 epochs: WIDE below.
FAST = SplitPassConfig(clips=640, batch_size=128, position_stride=8, sampling="importance", dtype="float32")
# What `kws grow` uses for wide networks (widest unit fan-in >= WIDE_MIN_FAN_IN): the matrix-free Lanczos pass over
# every position of 1,536 clips drawn by importance, 6 steps. bench/splitting_cost.py on ds-cnn-l (2 cores, quiet):
# it picks 93.9% (3 seeds, min 93.0%) of the units the all-rows pass over all 3,220 clips picks, in 2.55-2.72
# training epochs, where FAST picks 77% in 2.9-3.1. 1,280 clips x 8 steps: 90.5% (min 88.5%) in 2.0-2.5 epochs.
# WIDE_MIN_FAN_IN: FAST was measured at 64 (ds-cnn-s, 92% in <= 0.84 epochs) and WIDE at 276; 160 splits the gap.
WIDE = SplitPassConfig(
    clips=1536,
    batch_size=128,
    position_stride=1,
    solver="lanczos",
    lanczos_iters=6,
    clip_sampling="importance",
    dtype="float32",
)
WIDE_MIN_FAN_IN = 160


def preset_for(spec) -> SplitPassConfig:
    """FAST for narrow networks, WIDE once the widest splitting unit has a fan-in of WIDE_MIN_FAN_IN or more."""
    widest = max([spec.conv1_kernel[0] * spec.conv1_kernel[1], *spec.unit_widths[:-1]])
    return WIDE if widest >= WIDE_MIN_FAN_IN else FAST


# The reference: every clip, every position, float64.
EXACT = SplitPassConfig(clips=None, batch_size=128, position_stride=1, dtype="float64")


def resolve_preset(solver: str, spec, **overrides) -> SplitPassConfig:
    """The preset for `solver` ("auto": preset_for(spec); "dense": FAST; "lanczos": WIDE) with the overrides that are
    not None. Row sampling (position_stride, sampling) belongs to the dense solver: the lanczos preset that "auto"
    picks ignores it, and asking for lanczos with a position stride is an error."""
    if solver not in ("auto", *SOLVERS):
        raise KwsError(f"--split-solver {solver!r}: use auto, dense or lanczos")
    if solver == "lanczos" and overrides.get("position_stride") not in (None, 1):
        raise KwsError("--split-solver lanczos uses every position: drop --split-stride or pass --split-stride 1")
    base = {"auto": preset_for(spec), "dense": FAST, "lanczos": WIDE}[solver]
    if base.solver == "lanczos":
        overrides.update(position_stride=None, sampling=None)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})


def pass_batches(features, labels, cfg: SplitPassConfig = FAST, model: torch.nn.Module | None = None) -> list[tuple]:
    """The pass's cfg.clips clips in cfg.batch_size batches: (features, labels) or (features, labels, 1/pi).

    clip_sampling "stratified": a fixed class-stratified subset (kws.data.stratified_subset). "importance": one
    eval-mode forward of `model` over every clip, then cfg.clips clips drawn with probability proportional to
    ||softmax - onehot||, the factor every backpropagated signal of the clip, hence its share of S, scales with
    (systematic sampling, kws.splitting.rows.sample_rows); the batches carry the weights 1/pi, so S stays unbiased
    while the clips the network already gets right, which add almost nothing to S, are rarely drawn.
    """
    from kws.data import stratified_subset

    x, y = torch.as_tensor(features), torch.as_tensor(labels)
    if cfg.clips is None or cfg.clips >= len(y):
        return [(x[i : i + cfg.batch_size], y[i : i + cfg.batch_size]) for i in range(0, len(y), cfg.batch_size)]
    if cfg.clip_sampling == "stratified":
        idx = torch.from_numpy(stratified_subset(y.numpy(), cfg.clips, seed=cfg.seed))
        x, y = x[idx], y[idx]
        return [(x[i : i + cfg.batch_size], y[i : i + cfg.batch_size]) for i in range(0, len(y), cfg.batch_size)]
    if model is None:
        raise KwsError("splitting: importance-sampled clips need the model (pass_batches(..., model=))")
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    with torch.no_grad():
        resid = []
        for i in range(0, len(y), 256):
            p = torch.softmax(model(x[i : i + 256].to(device=param.device, dtype=param.dtype)).double(), 1).cpu()
            p[torch.arange(len(p)), y[i : i + 256]] -= 1.0
            resid.append(p.norm(dim=1))
    model.train(was_training)
    gen = torch.Generator().manual_seed(cfg.seed)
    idx, w = sample_rows(torch.cat(resid), max(1.0, len(y) / cfg.clips), "importance", gen)
    idx, order = idx.sort()
    share = len(y) / cfg.clips  # sum(pi) = m = cfg.clips: each kept clip's share of the all-clip count N is N/m
    x, y, w = x[idx], y[idx], w[order]
    return [
        (
            x[i : i + cfg.batch_size],
            y[i : i + cfg.batch_size],
            w[i : i + cfg.batch_size],
            share * len(y[i : i + cfg.batch_size]),
        )
        for i in range(0, len(y), cfg.batch_size)
    ]


def pass_eigs(model: DSCNN, batches, cfg: SplitPassConfig, progress: bool = False) -> dict:
    """{layer: (lambda_min (C,), v_min (C, D))} of one splitting pass with preset cfg, by its solver."""
    if cfg.solver == "lanczos":
        mm = cfg.matmul_dtype if cfg.matmul_dtype == "auto" else getattr(torch, cfg.matmul_dtype)
        dtype = None if cfg.dtype is None else getattr(torch, cfg.dtype)
        return lanczos_eigs(
            model,
            batches,
            mode=cfg.mode,
            surrogate_beta=cfg.surrogate_beta,
            iters=cfg.lanczos_iters,
            dtype=dtype,
            seed=cfg.seed,
            matmul_dtype=mm,
            progress=progress,
        )
    return min_eigen(splitting_matrices(model, batches, **cfg.matrix_kwargs(), progress=progress))


__all__ = [
    "CLIP_SAMPLINGS",
    "EXACT",
    "FAST",
    "SOLVERS",
    "WIDE",
    "WIDE_MIN_FAN_IN",
    "SplitPassConfig",
    "pass_batches",
    "pass_eigs",
    "preset_for",
    "resolve_preset",
]
