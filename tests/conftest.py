"""Shared fixtures: where the real-speech miniature lives, and small helpers used by several test files.

Run the suite with `make test` (excludes `slow`); `make test-slow` runs the long ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# TensorFlow's oneDNN kernels are taken or not depending on the CPU, and some of TensorFlow's own kernels differ
# between the two paths (DepthwiseConv2dNative rejects strides (2, 1) without oneDNN). The suite runs with oneDNN
# off on every machine, so a CPU-dependent path fails everywhere instead of passing on some (read by TensorFlow
# at import; tests/test_export_keras_model.py checks it is in force).
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KWS_SHARED", REPO.parent / "shared"))
MINI = SHARED / "data" / "speech_commands_mini"


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """The speaker-disjoint Speech Commands v0.02 slice in ../shared (read in place, never copied)."""
    if not (MINI / "testing_list.txt").is_file():
        pytest.fail(f"real-speech slice not found at {MINI}; CI places ../shared beside the clone")
    return MINI


# A tiny growth schedule (1-epoch phases, width-8 seed, 3K-param budget): tests of kws.grow and kws.report share it.
TINY_GROW_KW = dict(
    seed_width=8,
    seed_epochs=1,
    epochs_per_round=1,
    final_epochs=1,
    max_rounds=2,
    growth_per_round=1.0,
    split_clips=128,
    budget_kparams=3.0,
)


def _tiny_grow():
    from kws.recipe import GrowConfig

    return GrowConfig(**TINY_GROW_KW)


TINY_GROW = _tiny_grow()


@pytest.fixture(scope="session")
def grown(mini_root, tmp_path_factory):
    """A grown run directory (out, report) on the real-speech slice, made once per session."""
    from kws.grow import grow

    out = tmp_path_factory.mktemp("grow") / "run"
    report = grow(mini_root, out, TINY_GROW)
    return out, report


def load_bench(name: str):
    """bench/<name>.py as a module; bench/ joins sys.path, since the bench scripts import each other as
    `python bench/x.py` lets them."""
    import importlib.util
    import sys

    if str(REPO / "bench") not in sys.path:
        sys.path.insert(0, str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location(name, REPO / "bench" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def bn_model(arch, activation: str = "relu", seed: int = 0):
    """kws.models.untrained: BatchNorm statistics far from identity, so a wrong BN fold or quantization shows."""
    from kws.models import untrained

    return untrained(arch, activation, seed)
