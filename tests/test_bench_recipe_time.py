"""bench/recipe_time.py: its recipe is the command in docs/results.md, and its scaling matches a hand computation."""

from __future__ import annotations

import re

import pytest
from conftest import REPO, load_bench


@pytest.fixture(scope="module")
def rt():
    return load_bench("recipe_time")


def readme_grow_flags() -> dict:
    text = (REPO / "docs" / "results.md").read_text()
    section = text.split("## Full dataset", 1)[1]
    cmd = re.search(r"kws grow (.*?)\n\.venv/bin/kws eval", section, re.S).group(1).replace("\\\n", " ")
    flags, toks = {}, cmd.split()
    for i, tok in enumerate(toks):
        if tok.startswith("--"):
            nxt = toks[i + 1] if i + 1 < len(toks) else "--"
            flags[tok[2:].replace("-", "_")] = True if nxt.startswith("--") else nxt
    return flags


def test_recipe_is_the_readme_command(rt):
    flags = readme_grow_flags()
    assert set(flags) - {"data", "out"} == set(rt.RECIPE)
    for key, value in rt.RECIPE.items():
        if value is True or isinstance(value, str):
            assert flags[key] == value, key
        else:
            assert float(flags[key]) == pytest.approx(value), key


def test_extrapolate_by_hand(rt):
    # a probe of 3 rounds on 1,000 mini clips; the full set is 10x: every training second scales 10x
    report = dict(
        config=dict(seed_epochs=1),
        rounds=[
            dict(train_s=2.0),
            dict(train_s=3.0, split_s=5.0, split_pass=dict(clips=8192)),
            dict(train_s=4.0, split_s=6.0, split_pass=dict(clips=8192)),
            dict(train_s=5.0, split_s=7.0, split_pass=dict(clips=8192)),
        ],
        final={"continue": dict(train_s=6.0, epochs=1)},
    )
    recipe = dict(seed_epochs=10, epochs_per_round=2, total_epochs=150, split_clips=8192, compare_retrain=True)
    est = rt.extrapolate(report, recipe, mini_clips=1000, full_clips=10_000)
    # seed 2 s x 10 x 10 epochs; rounds (3+4+5) x 10 x 2; passes (5+6+7) x 8192/1000 (all 1,000 clips used);
    # growth epochs 10 + 2x3 = 16, continued 134 epochs x 6 s x 10; retrain 150 x 6 s x 10 (the same architecture)
    assert est["seconds"] == pytest.approx(
        dict(seed=200.0, rounds=240.0, splitting_passes=18 * 8.192, final_continued=8040.0, retrain=9000.0)
    )
    assert est["default_finish_hours"] == pytest.approx((200 + 240 + 18 * 8.192 + 9000) / 3600)
    assert est["rounds"] == 3 and est["final_epochs"] == 134
    assert est["total_hours"] == pytest.approx((200 + 240 + 18 * 8.192 + 8040 + 9000) / 3600)
