"""Splitting steepest descent for a DS-CNN (Liu, Wu, Wang, NeurIPS 2019; docs/splitting.md): which units to split,
along which direction, and the split itself. This file is the package's public face: callers import from
`kws.splitting`, never from its modules.

Modules (imports point down this list):
    capture    the splitting units of a DS-CNN, the forward hooks that record their maps, one forward + backward
               per pass batch: what both solvers read
    rows       which (clip, position) rows the dense pass keeps (uniform or by importance), and their gathers
    dense      the splitting matrices S = S_own + S_dw, formed, and their batched eigh (min_eigen)
    lanczos    lambda_min / v_min without forming S: batched Lanczos on matrix-free S v products
    presets    pass presets (SplitPassConfig, FAST, WIDE, EXACT, resolve_preset), the pass's clips
               (pass_batches) and its eigenpairs by the preset's solver (pass_eigs)
    surgery    split(): apply a plan, widening a DS-CNN function-preservingly
    selection  budget-aware greedy choice of the units to split (the plan)

One round of `kws grow`: cfg = resolve_preset(...); eigs = pass_eigs(model, pass_batches(x, y, cfg, model), cfg);
sel = select_splits(spec, eigs, budget, ...); model = split(model, sel.plan, eps).
"""

from kws.splitting.capture import MODES
from kws.splitting.dense import min_eigen, splitting_matrices
from kws.splitting.lanczos import lanczos_eigs, lanczos_min
from kws.splitting.presets import (
    CLIP_SAMPLINGS,
    EXACT,
    FAST,
    SOLVERS,
    WIDE,
    WIDE_MIN_FAN_IN,
    SplitPassConfig,
    pass_batches,
    pass_eigs,
    preset_for,
    resolve_preset,
)
from kws.splitting.rows import SAMPLINGS
from kws.splitting.selection import COST_METRICS, Budget, Choice, Selection, fan_ins, select_random, select_splits
from kws.splitting.surgery import split

__all__ = [
    "CLIP_SAMPLINGS",
    "COST_METRICS",
    "EXACT",
    "FAST",
    "MODES",
    "SAMPLINGS",
    "SOLVERS",
    "WIDE",
    "WIDE_MIN_FAN_IN",
    "Budget",
    "Choice",
    "Selection",
    "SplitPassConfig",
    "fan_ins",
    "lanczos_eigs",
    "lanczos_min",
    "min_eigen",
    "pass_batches",
    "pass_eigs",
    "preset_for",
    "resolve_preset",
    "select_random",
    "select_splits",
    "split",
    "splitting_matrices",
]
