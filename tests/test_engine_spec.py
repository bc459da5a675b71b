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
from kws.engine.spec import engine_const_bytes, engine_memory, engine_ram_bytes, spec_layers
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
    assert engine_const_bytes(spec) == net.const_bytes  # the flash a growth run counts: weights, biases, tables
    _, layers = spec_layers(spec)
    assert [x.kind for x in layers] == [x.kind for x in net.layers]
    assert sum(x.macs for x in layers) == net.macs == cost(spec).macs


def test_constants_of_ds_cnn_s_by_hand():
    """ds-cnn-s (ReLU) flash of the constants, counted by hand from kws_nn.h's layouts:
    conv1 64 x (10x4) rows padded to k4 = 40: 64*40 + 4*64 bias + 9*64 requant (multiplier, shift, rounding);
    4 depthwise 3x3 over 64: 9*64*2 int16 taps + 4*64 bias + 9*64 requant + 16 groups x 64 B rq + 64 B zpad;
    4 pointwise 64x64: 64*64 + 4*64 + 9*64; classifier 12 x 64: 12*64 + 4*12 + 8*12 per-channel doubles."""
    conv1 = 64 * 40 + 4 * 64 + 9 * 64
    dw = 9 * 64 * 2 + 4 * 64 + 9 * 64 + 16 * 64 + 64
    pw = 64 * 64 + 4 * 64 + 9 * 64
    fc = 12 * 64 + 4 * 12 + 8 * 12
    assert engine_const_bytes("ds-cnn-s") == conv1 + 4 * (dw + pw) + fc == 36_304


def test_fusion_counts_a_ring_not_the_whole_first_conv():
    """ds-cnn-l by hand: a 3-row ring of the 25 x 10 x 276 conv output, then the 13 x 5 x 276 depthwise output."""
    plan = engine_memory("ds-cnn-l")
    assert plan.arena_bytes == 3 * 10 * 276 + 13 * 5 * 276
    assert engine_memory("ds-cnn-l", fuse=False).arena_bytes == 25 * 10 * 276 + 12
