"""bench/grow_vs_fixed.py's bookkeeping: the uniform width, the training-compute count and the paired summary.

The numbers the README reports come from these functions, so each is checked against figures computed by hand
(Hello Edge's ds-cnn-s count, MACs x clips x epochs, differences of made-up accuracies).
"""

from __future__ import annotations

import pytest
from conftest import load_bench


@pytest.fixture(scope="module")
def gvf():
    return load_bench("grow_vs_fixed")


@pytest.fixture(scope="module")
def summary_mod():
    return load_bench("gvf_summary")


def test_uniform_width_is_the_widest_that_fits(gvf):
    # ds-cnn-s is the uniform width-64 DS-CNN-S geometry: 22,604 deployed params (Hello Edge, docs/device.md)
    assert gvf.uniform_width("ds-cnn-s", 22_604) == 64
    assert gvf.uniform_width("ds-cnn-s", 22_603) == 63


def test_training_macs_without_passes_is_three_forwards_per_clip_epoch(gvf):
    rounds = [dict(macs=1_000, train_epochs=6), dict(macs=2_500, train_epochs=1), dict(macs=4_000, train_epochs=1)]
    # 3 x (1000*6 + 2500*1 + 4000*1 + 4000*32) x 100 clips, by hand
    assert gvf.training_macs(rounds, 32, 100, None) == 3 * (6_000 + 2_500 + 4_000 + 128_000) * 100


def _run(arm, seed, val, test, params=1000):
    return dict(arm=arm, budget_k=22.6, seed=seed, val_acc=val, test_acc=test, params=params, macs=1, train_macs=1e9)


def test_summary_pairs_arms_with_the_uniform_net_of_the_same_seed(summary_mod):
    results = [
        _run("uniform", 0, 0.80, 0.70),
        _run("uniform", 1, 0.90, 0.90),
        _run("retrain", 0, 0.85, 0.68),  # +5 / -2 points
        _run("retrain", 1, 0.91, 0.94),  # +1 / +4 points
        _run("retrain", 2, 0.99, 0.99),  # no uniform run of seed 2: left out of the pairing
    ]
    row = summary_mod.summarize(results)["22.6K"]["retrain"]
    assert row["n"] == 3
    assert row["val_acc"] == pytest.approx(100 * (0.85 + 0.91 + 0.99) / 3, abs=0.01)
    d = row["vs_uniform"]
    assert d["n"] == 2
    assert d["val_acc"] == pytest.approx(3.0) and d["val_acc_wins"] == 2
    assert d["test_acc"] == pytest.approx(1.0) and d["test_acc_wins"] == 1
    assert d["val_acc_std"] == pytest.approx(2.83, abs=0.01)  # stdev of (5, 1)
    assert "vs_uniform" not in summary_mod.summarize(results)["22.6K"]["uniform"]
    assert "+3.0 (2/2) / +1.0 (1/2)" in summary_mod.markdown(summary_mod.summarize(results))
