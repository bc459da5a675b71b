"""kws.splitting.selection: hard budgets, the tau threshold, and the greedy gain/cost order against a hand-counted
reference.

The reference greedy below prices one more channel with hand formulas (own fan-in + folded bias, the copied
depthwise 3x3 filter + bias, one more column of the next pointwise layer or of the classifier), not kws.cost.

Run: .venv/bin/pytest tests/test_selection.py -q   (about 2 s)
"""

from __future__ import annotations

import math

import pytest
import torch

from kws.cost import cost
from kws.engine.spec import engine_const_bytes, engine_ram_bytes
from kws.errors import KwsError
from kws.models import PRESETS, ArchSpec
from kws.splitting import Budget, fan_ins, select_random, select_splits

SPEC = ArchSpec(conv1_width=4, widths=(4, 4, 4), strides=((1, 1),) * 3, input_shape=(12, 6))


def _eigs(spec: ArchSpec, lams: list[list[float]]) -> dict:
    return {
        name: (torch.tensor(lam, dtype=torch.float64), torch.eye(len(lam), d, dtype=torch.float64))
        for name, lam, d in zip(spec.unit_layer_names, lams, fan_ins(spec), strict=True)
    }


def _random_eigs(spec: ArchSpec, seed: int, low: float = -1.0, high: float = 0.0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    lams = [(low + (high - low) * torch.rand(w, generator=gen, dtype=torch.float64)).tolist() for w in spec.unit_widths]
    return _eigs(spec, lams)


def _hand_marginal_params(widths: list[int], layer: int, kernel_area: int, num_classes: int = 12) -> int:
    fan_in = kernel_area if layer == 0 else widths[layer - 1]
    if layer == len(widths) - 1:
        return fan_in + 1 + num_classes
    return fan_in + 1 + 9 + 1 + widths[layer + 1]


def _reference_greedy(spec: ArchSpec, lams: list[list[float]], eps: float, limit_params: int) -> list[tuple]:
    """Exhaustive re-scan each step: the candidate with the best gain / hand-counted marginal params that fits."""
    widths, used, picks = list(spec.unit_widths), 0, []
    left = [sorted((lam, j) for j, lam in enumerate(row) if lam < 0) for row in lams]
    area = spec.conv1_kernel[0] * spec.conv1_kernel[1]
    while True:
        options = []
        for i, row in enumerate(left):
            if row and used + _hand_marginal_params(widths, i, area) <= limit_params:
                cost_i = _hand_marginal_params(widths, i, area)
                options.append((-(eps**2 / 2) * row[0][0] / cost_i, i))
        if not options:
            return picks
        _, i = max(options)
        used += _hand_marginal_params(widths, i, area)
        picks.append((spec.unit_layer_names[i], left[i].pop(0)[1]))
        widths[i] += 1


def test_greedy_order_matches_hand_counted_reference():
    lams = [[-10.0, -1.0, -0.2, 0.3], [-3.0, -2.9, -0.1, -0.05], [-2.5, 0.1, -2.0, -1.5], [-4.0, -0.5, -0.4, 1.0]]
    start = cost(SPEC).params_deployed
    for cap in (0.05, 0.15, 0.3, 1.0):
        sel = select_splits(SPEC, _eigs(SPEC, lams), Budget(), eps=0.01, growth_cap=cap)
        ref = _reference_greedy(SPEC, lams, 0.01, int(cap * start))
        assert [(c.layer, c.unit) for c in sel.chosen] == ref, cap
        assert sel.predicted_dloss == pytest.approx(0.01**2 / 2 * sum(c.lam for c in sel.chosen))
        assert all(c.gain == pytest.approx(-(0.01**2) / 2 * c.lam) for c in sel.chosen)
    # The best ratio, not the best gain, goes first: conv1's -10 is dearer (40-wide fan-in) than the last layer's -4.
    assert (sel.chosen[0].layer, sel.chosen[0].unit) == ("blocks.2.pw", 0)


@pytest.mark.parametrize("metric", ["params", "macs", "both"])
def test_budgets_are_hard(metric):
    spec = PRESETS["seed"].uniform(12)
    eigs = _random_eigs(spec, seed=3)
    base = cost(spec)
    budgets = [
        Budget(params=base.params_deployed + 1500),
        Budget(macs=base.macs + 200_000),
        Budget(ram_bytes=base.peak_activation_bytes + 500, engine="tflm"),
        Budget(ram_bytes=engine_ram_bytes(spec) + 300),
        Budget(flash_bytes=engine_const_bytes(spec) + 2000),
        Budget(params=base.params_deployed + 3000, macs=base.macs + 150_000),
    ]

    def within(budget, grown):
        after = cost(grown)
        ram = after.peak_activation_bytes if budget.engine == "tflm" else engine_ram_bytes(grown)
        for limit, have in (
            (budget.params, after.params_deployed),
            (budget.macs, after.macs),
            (budget.ram_bytes, ram),
            (budget.flash_bytes, engine_const_bytes(grown)),
        ):
            assert limit is None or have <= limit, (budget, have)

    for budget in budgets:
        sel = select_splits(spec, eigs, budget, eps=0.01, growth_cap=10.0, cost_metric=metric)
        assert sel.chosen
        within(budget, sel.new_spec)
        assert "budget" in sel.stopped_reason
        rnd = select_random(spec, budget, growth_cap=10.0, cost_metric=metric, generator=torch.Generator())
        assert rnd.chosen
        within(budget, rnd.new_spec)


def test_the_ram_budget_counts_the_engine_the_model_runs_on():
    """kws: the generated engine's planned arena + scratch, which runs the pointwise layers in place and so needs
    less than TFLM's (input + output) head; a RAM budget between the two grows further with the engine's count.
    Each split's recorded RAM is the count of its engine; flash and time budgets are refused with tflm."""
    spec = PRESETS["seed"].uniform(12)
    eigs = _random_eigs(spec, seed=5)
    assert engine_ram_bytes(spec) < cost(spec).peak_activation_bytes
    limit = cost(spec).peak_activation_bytes + 600
    kws = select_splits(spec, eigs, Budget(ram_bytes=limit), eps=0.01, growth_cap=10.0)
    tflm = select_splits(spec, eigs, Budget(ram_bytes=limit, engine="tflm"), eps=0.01, growth_cap=10.0)
    assert cost(kws.new_spec).params_deployed > cost(tflm.new_spec).params_deployed
    assert kws.chosen[-1].peak_ram_bytes == engine_ram_bytes(kws.new_spec) <= limit
    assert tflm.chosen[-1].peak_ram_bytes == cost(tflm.new_spec).peak_activation_bytes <= limit
    for bad in (dict(flash_bytes=10**6), dict(instructions=10**8)):
        with pytest.raises(KwsError, match="--engine tflm"):
            Budget(engine="tflm", **bad)
    with pytest.raises(KwsError, match="engine"):
        Budget(engine="cmsis")


def test_growth_cap_and_max_width():
    spec = PRESETS["seed"].uniform(12)
    eigs = _random_eigs(spec, seed=4)
    base = cost(spec)
    sel = select_splits(spec, eigs, Budget(), eps=0.01, growth_cap=0.2, cost_metric="macs")
    assert 0 < cost(sel.new_spec).macs - base.macs <= 0.2 * base.macs
    sel = select_splits(spec, eigs, Budget(), eps=0.01, growth_cap=10.0, max_width=14)
    assert max(sel.new_spec.unit_widths) == 14 and "max width" in sel.stopped_reason


def test_tau_is_respected():
    spec = PRESETS["seed"].uniform(10)
    eigs = _random_eigs(spec, seed=5, low=-1.0, high=0.5)
    sel = select_splits(spec, eigs, Budget(), eps=0.01, tau=0.3, growth_cap=100.0)
    expected = {(n, j) for n, (lam, _) in eigs.items() for j in range(len(lam)) if lam[j] < -0.3}
    assert {(c.layer, c.unit) for c in sel.chosen} == expected
    none = select_splits(spec, eigs, Budget(), eps=0.01, tau=2.0)
    assert not none.chosen and "lambda_min" in none.stopped_reason and none.new_spec == spec


def test_plan_holds_the_eigenvectors():
    eigs = _random_eigs(SPEC, seed=6)
    sel = select_splits(SPEC, eigs, Budget(), eps=0.01, growth_cap=0.2)
    for c in sel.chosen:
        assert torch.equal(sel.plan[c.layer][c.unit], eigs[c.layer][1][c.unit])


def test_random_selector_count_and_directions():
    spec = PRESETS["seed"].uniform(12)
    mats = {
        n: torch.eye(d, dtype=torch.float64).expand(w, d, d) * -2.0
        for n, w, d in zip(spec.unit_layer_names, spec.unit_widths, fan_ins(spec), strict=True)
    }
    sel = select_random(spec, Budget(), count=7, growth_cap=1.0, generator=torch.Generator().manual_seed(1), mats=mats)
    assert len(sel.chosen) == 7 and len({(c.layer, c.unit) for c in sel.chosen}) == 7
    for c in sel.chosen:
        v = sel.plan[c.layer][c.unit]
        assert v.numel() == fan_ins(spec)[spec.unit_layer_names.index(c.layer)]
        assert v.norm().item() == pytest.approx(1.0) and c.lam == pytest.approx(-2.0)
    assert math.isnan(select_random(spec, Budget(), count=1).predicted_dloss)


def test_bad_arguments_are_one_line_errors():
    eigs = _random_eigs(SPEC, seed=7)
    with pytest.raises(KwsError, match="cost metric"):
        select_splits(SPEC, eigs, Budget(), eps=0.01, cost_metric="flops")
    with pytest.raises(KwsError, match="no eigenvalues"):
        select_splits(SPEC, {"conv1": eigs["conv1"]}, Budget(), eps=0.01)
    with pytest.raises(KwsError, match="eps"):
        select_splits(SPEC, eigs, Budget(), eps=0.0)
    over = select_splits(SPEC, eigs, Budget(params=10), eps=0.01)
    assert not over.chosen and "already exceeds" in over.stopped_reason


@pytest.mark.parametrize("metric", ["params", "ms"])
def test_a_time_budget_is_hard(metric):
    """Budget.instructions: the grown spec's predicted instructions (kws.engine.costmodel, fitted in QEMU), plus the
    model's stated error on the core, doubled (2.9% on the M4), never exceed it, whatever the split is charged; with
    cost_metric ms each split is charged its marginal instructions."""
    from kws.engine import costmodel

    spec = PRESETS["seed"].uniform(12)
    eigs = _random_eigs(spec, seed=3)
    start = costmodel.instructions(spec, "cortex-m4")
    margin = costmodel.margin("cortex-m4")
    assert 0.005 < margin < 0.05
    budget = Budget(instructions=int(start * 1.5), core="cortex-m4")
    sel = select_splits(spec, eigs, budget, eps=0.01, growth_cap=10.0, cost_metric=metric)
    grown = costmodel.instructions(sel.new_spec, "cortex-m4") * (1 + margin)
    assert sel.chosen and start < grown <= budget.instructions
    # each split records the instructions it adds: they sum to the grown network's prediction less the seed's
    added = sum(c.d_instructions for c in sel.chosen)
    assert added == pytest.approx(costmodel.instructions(sel.new_spec, "cortex-m4") - start, rel=1e-9)
    assert "time budget" in sel.stopped_reason
    # one more channel in any layer that still had candidates would have crossed it
    for i, name in enumerate(spec.unit_layer_names):
        widths = list(sel.new_spec.unit_widths)
        widths[i] += 1
        wider = costmodel.instructions(sel.new_spec.with_unit_widths(widths), "cortex-m4") * (1 + margin)
        assert wider > budget.instructions or (sum(1 for c in sel.chosen if c.layer == name) == spec.unit_widths[i])
    over = select_splits(spec, eigs, Budget(instructions=int(start) - 1), eps=0.01)
    assert not over.chosen and "time budget" in over.stopped_reason
