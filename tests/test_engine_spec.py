"""kws.engine.spec: the engine's memory plan from an ArchSpec alone (what growth counts) equals the plan of the
engine generated from the real int8 export of the same spec -- arena and scratch to the byte, fusion included --
for ds-cnn-s / -m / -l and a non-uniform spec with (2, 1) strides, with ReLU, SiLU and hard swish.

Run: .venv/bin/python -m pytest tests/test_engine_spec.py -q   (~40 s: the conversions are shared with test_engine)
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from engine_support import NONUNIFORM, tflite

from kws.cost import cost
from kws.engine import generate
from kws.engine.spec import engine_memory, engine_ram_bytes, spec_layers
from kws.models import resolve_arch

pytestmark = pytest.mark.firmware


@pytest.mark.parametrize(
    "arch, activation",
    [
        ("ds-cnn-s", "relu"),
        ("ds-cnn-s", "silu"),
        ("ds-cnn-m", "relu"),
        ("ds-cnn-l", "relu"),
        (NONUNIFORM, "relu"),
        (NONUNIFORM, "silu"),
        (NONUNIFORM, "hardswish"),
    ],
    ids=["s-relu", "s-silu", "m-relu", "l-relu", "nonuniform-relu", "nonuniform-silu", "nonuniform-hardswish"],
)
def test_spec_plan_equals_the_generated_engine(mini_root, tmp_path, arch, activation):
    net = generate(tflite(mini_root, arch, activation), tmp_path)
    spec = replace(resolve_arch(arch), activation=activation)
    plan = engine_memory(spec)
    assert (plan.arena_bytes, plan.scratch_bytes) == (net.plan.arena_bytes, net.plan.scratch_bytes)
    assert plan.fused == net.plan.fused and plan.in_place == net.plan.in_place
    assert engine_ram_bytes(spec) == net.ram_bytes
    _, layers = spec_layers(spec)
    assert [x.kind for x in layers] == [x.kind for x in net.layers]
    assert sum(x.macs for x in layers) == net.macs == cost(spec).macs


def test_fusion_counts_a_ring_not_the_whole_first_conv():
    """ds-cnn-l by hand: a 3-row ring of the 25 x 10 x 276 conv output, then the 13 x 5 x 276 depthwise output."""
    plan = engine_memory("ds-cnn-l")
    assert plan.arena_bytes == 3 * 10 * 276 + 13 * 5 * 276
    assert engine_memory("ds-cnn-l", fuse=False).arena_bytes == 25 * 10 * 276 + 12
