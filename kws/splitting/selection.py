"""Which units to split this round: a budget-aware greedy choice by predicted loss decrease per unit of cost.

A split of unit j with splitting index lambda_j < 0 and step eps lowers the loss by gain = -(eps^2 / 2) lambda_j
(Liu et al. 2019, docs/splitting.md). Its cost is the exact marginal cost of one more channel in its layer,
counted by kws.cost on the spec (own fan-in + BN, the copied depthwise filter + BN, one more input column of the
next pointwise layer or classifier). That marginal cost grows as neighbouring layers widen, so it is recomputed
after every pick. Units are taken greedily by gain / cost -- what the LP relaxation of Wang et al.'s energy-aware
splitting (arXiv 1910.03103) reduces to -- until the round's growth cap or a HARD budget would be exceeded.

Budgets count deployed parameters (BN folded), MACs, the network's RAM, its flash and the instructions of one
inference on the target's core, predicted by the engine's cost model (kws.engine.costmodel, fitted in QEMU); with
cost_metric "ms" a split is charged its marginal instructions. RAM follows the engine the model will run on: for
kws (the default) the generated engine's planned arena + scratch (kws.engine.spec.engine_ram_bytes, in-place and
fused layers included, equal to the generated plan to the byte); for tflm the peak int8 activation bytes (a layer's
input + output), which is TFLM's arena head. Flash is the generated engine's constants
(kws.engine.spec.engine_const_bytes: weights, biases, requantization constants, tables).
A layer whose next channel does not fit is skipped, not closed: the engine's instructions and memory plan are not
monotone in one layer's width (channel groups of 4, a fused or unfused plan), so it is priced again after every pick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch

from kws.cost import Cost, cost
from kws.device import ENGINES
from kws.errors import KwsError
from kws.models import ArchSpec
from kws.recipe import COST_METRICS


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Hard limits of the grown model; None: unlimited. params are deployed (BN folded) parameters."""

    params: int | None = None
    macs: int | None = None
    ram_bytes: int | None = None  # the network's RAM on `engine` (see ram_of)
    flash_bytes: int | None = None  # the generated engine's constants (engine kws only)
    instructions: int | None = None  # per inference on `core`, predicted by kws.engine.costmodel
    core: str = "cortex-m4"
    engine: str = "kws"

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise KwsError(f"selection: engine {self.engine!r} is not one of {ENGINES}")
        if self.engine != "kws" and (self.flash_bytes is not None or self.instructions is not None):
            raise KwsError(
                "the flash and time budgets count the generated engine (--engine kws); with --engine tflm "
                "use --budget-kparams, --budget-mmacs or --budget-ram-kb"
            )

    def predicted_instructions(self, spec: ArchSpec, num_classes: int = 12) -> float:
        from kws.engine import costmodel

        return costmodel.instructions(spec, self.core, num_classes)

    def charged_instructions(self, spec: ArchSpec, num_classes: int = 12) -> float:
        """What the hard time budget charges: the prediction times (1 + the cost model's stated error on core)."""
        from kws.engine import costmodel

        return self.predicted_instructions(spec, num_classes) * (1 + costmodel.margin(self.core))

    def ram_of(self, spec: ArchSpec, c: Cost, num_classes: int = 12) -> int:
        """The RAM the budget counts: the generated engine's arena + scratch (kws), or TFLM's arena head (tflm)."""
        if self.engine == "tflm":
            return c.peak_activation_bytes
        from kws.engine.spec import engine_ram_bytes

        return engine_ram_bytes(spec, num_classes)

    def flash_of(self, spec: ArchSpec, num_classes: int = 12) -> int:
        from kws.engine.spec import engine_const_bytes

        return engine_const_bytes(spec, num_classes)


class Choice(NamedTuple):
    """One split: the unit, its splitting index, predicted loss decrease, and the marginal cost it was charged."""

    layer: str
    unit: int
    lam: float
    gain: float
    d_params: int  # deployed parameters (BN folded)
    d_macs: int
    d_params_trainable: int  # equals the increase of sum(p.numel()) of the torch module
    peak_ram_bytes: int  # the budget's RAM count of the spec after this split (Budget.ram_of)
    d_instructions: float | None = None  # predicted instructions per inference it adds (time budget or ms metric)
    flash_bytes: int | None = None  # the engine's constants after this split (with a flash budget)


@dataclass(frozen=True, kw_only=True)
class Selection:
    """The round's decision. plan feeds kws.splitting.split(); predicted_dloss = (eps^2/2) * sum(lambda)."""

    plan: dict[str, dict[int, torch.Tensor]]
    predicted_dloss: float
    chosen: tuple[Choice, ...]
    new_spec: ArchSpec
    stopped_reason: str

    def to_dict(self) -> dict:
        return dict(
            predicted_dloss=self.predicted_dloss,
            stopped_reason=self.stopped_reason,
            new_widths=list(self.new_spec.unit_widths),
            chosen=[c._asdict() for c in self.chosen],
        )


class _Ledger:
    """Widths grown so far this round, what they cost, and which limit (if any) stops a layer."""

    def __init__(
        self,
        spec: ArchSpec,
        budget: Budget,
        growth_cap: float,
        cost_metric: str,
        max_width: int | None,
        num_classes: int,
    ):
        if cost_metric not in COST_METRICS:
            raise KwsError(f"selection: cost metric {cost_metric!r} is not one of {COST_METRICS}")
        if not growth_cap > 0:
            raise KwsError(f"selection: growth cap must be > 0 (a fraction of the current cost), got {growth_cap}")
        self.spec, self.budget, self.num_classes, self.growth_cap = spec, budget, num_classes, growth_cap
        self.max_width, self.metric = max_width, cost_metric
        self.start = self.now = cost(spec, num_classes)
        self.widths = list(spec.unit_widths)
        timed = budget.instructions is not None or cost_metric == "ms"
        self.instr = {tuple(self.widths): budget.predicted_instructions(spec, num_classes)} if timed else {}
        self.instr0 = self.instr.get(tuple(self.widths), 0.0)
        self.margin = 0.0
        if timed:
            from kws.engine import costmodel

            self.margin = costmodel.margin(budget.core)
        self.ram_memo: dict[tuple, int] = {}
        self.flash_memo: dict[tuple, int] = {}
        p0, m0 = self.start.params_deployed, self.start.macs
        self.cap_params = growth_cap * p0 if cost_metric in ("params", "both") else math.inf
        self.cap_macs = growth_cap * m0 if cost_metric in ("macs", "both") else math.inf

    def instructions(self, widths: list[int]) -> float:
        """Predicted instructions per inference of the spec with these unit widths (memoized)."""
        key = tuple(widths)
        if key not in self.instr:
            self.instr[key] = self.budget.predicted_instructions(self.spec.with_unit_widths(key), self.num_classes)
        return self.instr[key]

    def ram(self, widths: list[int], c: Cost) -> int:
        key = tuple(widths)
        if key not in self.ram_memo:
            self.ram_memo[key] = self.budget.ram_of(self.spec.with_unit_widths(key), c, self.num_classes)
        return self.ram_memo[key]

    def flash(self, widths: list[int]) -> int:
        key = tuple(widths)
        if key not in self.flash_memo:
            self.flash_memo[key] = self.budget.flash_of(self.spec.with_unit_widths(key), self.num_classes)
        return self.flash_memo[key]

    def over_budget(self) -> str | None:
        return self._violation(self.now, self.widths, check_caps=False)

    def _violation(self, c: Cost, widths: list[int], check_caps: bool = True) -> str | None:
        b = self.budget
        if b.instructions is not None and self.instructions(widths) * (1 + self.margin) > b.instructions:
            return f"time budget {b.instructions:,} instructions on {b.core} (prediction + {self.margin:.1%})"
        if b.params is not None and c.params_deployed > b.params:
            return f"params budget {b.params:,}"
        if b.macs is not None and c.macs > b.macs:
            return f"MACs budget {b.macs:,}"
        if b.ram_bytes is not None and self.ram(widths, c) > b.ram_bytes:
            what = "engine arena + scratch" if b.engine == "kws" else "activation"
            return f"RAM budget {b.ram_bytes:,} B ({what})"
        if b.flash_bytes is not None and self.flash(widths) > b.flash_bytes:
            return f"flash budget {b.flash_bytes:,} B (engine constants)"
        if check_caps and c.params_deployed - self.start.params_deployed > self.cap_params:
            return f"growth cap {self.cap_params:,.0f} params this round"
        if check_caps and c.macs - self.start.macs > self.cap_macs:
            return f"growth cap {self.cap_macs:,.0f} MACs this round"
        if (
            check_caps
            and self.metric == "ms"
            and self.instructions(widths) - self.instr0 > self.growth_cap * self.instr0
        ):
            return f"growth cap {self.growth_cap * self.instr0:,.0f} instructions this round"
        return None

    def marginal(self, layer: int) -> tuple[Cost | None, str | None]:
        """The cost after one more channel in `layer`, or the limit that forbids it."""
        if self.max_width is not None and self.widths[layer] + 1 > self.max_width:
            return None, f"max width {self.max_width}"
        widths = list(self.widths)
        widths[layer] += 1
        c = cost(self.spec.with_unit_widths(widths), self.num_classes)
        return c, self._violation(c, widths)

    def price(self, c: Cost, layer: int) -> float:
        """The denominator of the greedy ratio: marginal params, MACs, both relative to the round's start, or
        predicted instructions (ms) of one more channel in `layer`."""
        d_params, d_macs = c.params_deployed - self.now.params_deployed, c.macs - self.now.macs
        if self.metric == "params":
            return float(d_params)
        if self.metric == "macs":
            return float(max(d_macs, 1))
        if self.metric == "ms":
            grown = list(self.widths)
            grown[layer] += 1
            return max(self.instructions(grown) - self.instructions(self.widths), 1.0)
        return d_params / self.start.params_deployed + d_macs / self.start.macs

    def add(self, layer: int, c: Cost, unit: int, lam: float, gain: float) -> Choice:
        choice = Choice(
            layer=self.spec.unit_layer_names[layer],
            unit=unit,
            lam=lam,
            gain=gain,
            d_params=c.params_deployed - self.now.params_deployed,
            d_macs=c.macs - self.now.macs,
            d_params_trainable=c.params_trainable - self.now.params_trainable,
            peak_ram_bytes=0,
        )
        before = list(self.widths)
        self.widths[layer] += 1
        timed = self.budget.instructions is not None or self.metric == "ms"
        choice = choice._replace(
            peak_ram_bytes=self.ram(self.widths, c),
            d_instructions=self.instructions(self.widths) - self.instructions(before) if timed else None,
            flash_bytes=self.flash(self.widths) if self.budget.flash_bytes is not None else None,
        )
        self.now = c
        return choice

    @property
    def new_spec(self) -> ArchSpec:
        return self.spec.with_unit_widths(self.widths)


def select_splits(
    spec: ArchSpec,
    eigs: dict[str, tuple[torch.Tensor, torch.Tensor]],
    budget: Budget,
    *,
    eps: float,
    tau: float = 0.0,
    growth_cap: float = 0.4,
    max_width: int | None = None,
    cost_metric: str = "params",
    num_classes: int = 12,
) -> Selection:
    """Greedy budget-aware choice among units with lambda_min < -tau, by gain / exact marginal cost.

    eigs: {layer: (lambda_min (C,), v_min (C, D))} from kws.splitting.min_eigen. growth_cap: the most the round may
    add, as a fraction of the current params (cost_metric params), MACs (macs) or both (both). The plan's
    directions are unit-norm eigenvectors in each layer's current input space (split() maps them).
    """
    if not eps > 0:
        raise KwsError(f"selection: eps must be > 0, got {eps}")
    if tau < 0:
        raise KwsError(f"selection: tau must be >= 0 (split only when lambda_min < -tau), got {tau}")
    names = spec.unit_layer_names
    missing = [n for n in names if n not in eigs]
    if missing:
        raise KwsError(f"selection: no eigenvalues for layers {missing}; run splitting_matrices on this model")
    ledger = _Ledger(spec, budget, growth_cap, cost_metric, max_width, num_classes)
    queues = []
    for i, name in enumerate(names):
        lam = eigs[name][0].detach().double().cpu()
        if lam.numel() != spec.unit_widths[i]:
            raise KwsError(f"selection: {name} has {lam.numel()} eigenvalues but width {spec.unit_widths[i]}")
        order = torch.argsort(lam)
        queues.append([(int(j), float(lam[j])) for j in order if lam[j] < -tau])
    chosen, reason = _greedy(ledger, queues, eps)
    if not any(queues) and not chosen:
        reason = f"no unit has lambda_min < -tau ({-tau:g})"
    return _selection(ledger, chosen, reason, eps, {n: eigs[n][1] for n in names})


def _greedy(ledger: _Ledger, queues: list[list[tuple[int, float]]], eps: float) -> tuple[list[Choice], str]:
    """Take the best gain / marginal-cost head of the per-layer queues until every layer is closed or empty."""
    over = ledger.over_budget()
    if over is not None:
        return [], f"the current model already exceeds the {over}"
    open_layers = {i for i, q in enumerate(queues) if q}
    chosen, reason = [], "every candidate was split"
    while open_layers:
        best, blocked = None, []
        for i in sorted(open_layers):
            c, why = ledger.marginal(i)
            if why is not None:  # skipped, not closed: the engine's time and RAM are not monotone in one width
                blocked.append(f"{ledger.spec.unit_layer_names[i]}: {why}")  # (channel groups of 4, fused plans)
                continue
            gain = -(eps * eps / 2) * queues[i][0][1]
            ratio = gain / ledger.price(c, i)
            if best is None or ratio > best[0]:
                best = (ratio, i, c, gain)
        if best is None:
            reason = blocked[0]
            break
        _, i, c, gain = best
        unit, lam = queues[i].pop(0)
        chosen.append(ledger.add(i, c, unit, lam, gain))
        if not queues[i]:
            open_layers.discard(i)
    return chosen, reason


def _selection(
    ledger: _Ledger, chosen: list[Choice], reason: str, eps: float, directions: dict[str, torch.Tensor]
) -> Selection:
    plan: dict[str, dict[int, torch.Tensor]] = {}
    for ch in chosen:
        plan.setdefault(ch.layer, {})[ch.unit] = directions[ch.layer][ch.unit]
    lams = [ch.lam for ch in chosen]
    predicted = (eps * eps / 2) * sum(lams) if all(math.isfinite(x) for x in lams) else math.nan
    return Selection(
        plan=plan, predicted_dloss=predicted, chosen=tuple(chosen), new_spec=ledger.new_spec, stopped_reason=reason
    )


def fan_ins(spec: ArchSpec) -> tuple[int, ...]:
    """D of every splitting layer: conv1's kernel area (one input channel), then the previous layer's width."""
    return (spec.conv1_kernel[0] * spec.conv1_kernel[1], *spec.unit_widths[:-1])


def select_random(
    spec: ArchSpec,
    budget: Budget,
    *,
    count: int | None = None,
    growth_cap: float = 0.4,
    max_width: int | None = None,
    cost_metric: str = "params",
    num_classes: int = 12,
    generator: torch.Generator | None = None,
    mats: dict[str, torch.Tensor] | None = None,
    eps: float = 1e-2,
) -> Selection:
    """The ablation: random units with random unit-norm directions, under the same hard budget and growth cap.

    count: stop after this many splits (e.g. as many as select_splits chose); None fills the cap. With the
    splitting matrices `mats` the prediction (eps^2/2) v^T S v of each random split is reported, else NaN.
    """
    ledger = _Ledger(spec, budget, growth_cap, cost_metric, max_width, num_classes)
    names = spec.unit_layer_names
    gen = generator or torch.Generator().manual_seed(0)
    pool = [(i, j) for i, w in enumerate(spec.unit_widths) for j in range(w)]
    order = torch.randperm(len(pool), generator=gen).tolist()
    dims = fan_ins(spec)
    chosen, closed = [], {}
    reason = ledger.over_budget()
    reason = "every unit was split" if reason is None else f"the current model already exceeds the {reason}"
    directions = {
        n: torch.zeros(w, d, dtype=torch.float64) for n, w, d in zip(names, spec.unit_widths, dims, strict=True)
    }
    for k in order if ledger.over_budget() is None else []:
        if count is not None and len(chosen) >= count:
            reason = f"{count} splits chosen"
            break
        i, j = pool[k]
        if i in closed:
            continue
        c, why = ledger.marginal(i)
        if why is not None:
            closed[i] = why
            continue
        v = torch.randn(dims[i], generator=gen, dtype=torch.float64)
        v /= v.norm()
        directions[names[i]][j] = v
        lam = float(v @ mats[names[i]][j].double().cpu() @ v) if mats is not None else math.nan
        chosen.append(ledger.add(i, c, j, lam, -(eps * eps / 2) * lam))
    if closed and (count is None or len(chosen) < count):
        reason = "; ".join(f"{names[i]}: {why}" for i, why in sorted(closed.items()))
    return _selection(ledger, chosen, reason, eps, directions)


__all__ = ["Budget", "COST_METRICS", "Choice", "Selection", "fan_ins", "select_random", "select_splits"]
