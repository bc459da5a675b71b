"""kws.engine + firmware_stub/engine: the generated C network, built with the host gcc, gives int8 results identical
to LiteRT's reference kernels (OpResolverType.BUILTIN_REF, an independent implementation) -- zero differing values.

Inputs: every clip of the mini set's test split (real speech, frontend features quantized with the model's input
scale) plus random int8 inputs. Models: ds-cnn-s with relu / silu / hardswish and a non-uniform spec with (2, 1)
and (1, 2) depthwise strides and widths that are not multiples of 4, on every test clip; ds-cnn-m / -l (relu) on a
subset, every layer's output compared; a real grown model (the session's `kws grow` run: trained, non-uniform
widths) on every test clip; the full model x activation x clip matrix is marked slow. Each model runs
through the portable kernels and through the DSP kernels (KWS_NN_EMULATE_DSP: bit-exact C models of SMLAD, SXTB16,
... on the host), tabulated and direct activations. A build with a deliberately wrong rounding step must differ.
Also: the memory plan against the arena the real TFLite Micro interpreter measures, the generated header, errors.

Run: .venv/bin/python -m pytest tests/test_engine.py -q   (~60 s on 2 cores; conversions cached per session)
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from engine_support import NONUNIFORM, engine, quantized, random_inputs, reference, split_features, tflite

from kws.cost import cost
from kws.engine import generate
from kws.errors import KwsError

pytestmark = pytest.mark.firmware

BUILDS = {"portable": dict(), "dsp": dict(defines=("KWS_NN_EMULATE_DSP",), tabulate=False)}


def _inputs(mini_root, fb: bytes, clips: int | None, random: int) -> np.ndarray:
    feats = split_features(mini_root)
    feats = feats if clips is None else feats[:: max(1, len(feats) // clips)][:clips]
    return np.concatenate([quantized(fb, feats), random_inputs(random)])


def _assert_identical(got: np.ndarray, want: np.ndarray, what: str) -> None:
    differing = int((got != want).sum())
    assert got.shape == want.shape and differing == 0, f"{what}: {differing} of {want.size} values differ"


@pytest.mark.parametrize(
    "arch, activation, build",
    [
        ("ds-cnn-s", "relu", "portable"),
        ("ds-cnn-s", "relu", "dsp"),
        ("ds-cnn-s", "silu", "portable"),
        ("ds-cnn-s", "hardswish", "dsp"),
        (NONUNIFORM, "relu", "portable"),
    ],
    ids=["s-relu-portable", "s-relu-dsp", "s-silu-portable", "s-hardswish-dsp", "nonuniform-relu-portable"],
)
def test_outputs_identical_to_litert_on_every_test_clip(mini_root, tmp_path, arch, activation, build):
    fb = tflite(mini_root, arch, activation)
    x = _inputs(mini_root, fb, None, 32)
    assert len(x) == 558 + 32
    net, got, layers = engine(fb, tmp_path, x, layers=True, **BUILDS[build])
    want, per = reference(fb, x, tuple(layer.output for layer in net.layers))
    _assert_identical(got, want, f"{activation} {build} output")
    for layer, mine, theirs in zip(net.layers, layers, per, strict=True):
        _assert_identical(mine, theirs, f"{activation} {build} {layer.name} {layer.op}")
    # the comparison has teeth: real speech gives every clip its own activations, and logits vary across clips
    assert len(np.unique(per[1], axis=0)) > 0.95 * len(x)
    assert len(np.unique(per[[x.kind for x in net.layers].index("fc")], axis=0)) > 20


def _every_layer(mini_root, tmp_path, arch, activation, build, clips=24, random=8):
    fb = tflite(mini_root, arch, activation)
    x = _inputs(mini_root, fb, clips, random)
    net, got, layers = engine(fb, tmp_path, x, layers=True, **BUILDS[build])
    want, per = reference(fb, x, tuple(layer.output for layer in net.layers))
    _assert_identical(got, want, "output")
    for layer, mine, theirs in zip(net.layers, layers, per, strict=True):
        _assert_identical(mine, theirs, f"{layer.name} {layer.op}")
    return net


@pytest.mark.parametrize("build", sorted(BUILDS))
def test_a_grown_model_identical_to_litert_on_every_test_clip(grown, mini_root, tmp_path, build):
    """A real growth: the session's `kws grow` run on the mini set (conftest.grown: trained weights, the non-uniform
    widths splitting chose, SiLU), quantized on real training clips, through both kernel builds."""
    from engine_support import calibration

    from kws.checkpoint import load_run
    from kws.export import convert

    out, report = grown
    model = load_run(out / "final").model.eval()
    assert len(set(model.spec.unit_widths)) > 1 and model.spec.activation == "silu"  # grown, not uniform
    assert list(model.spec.unit_widths) == [report["arch"]["conv1_width"], *report["arch"]["widths"]]
    fb = convert.to_tflite_int8(model, calibration(mini_root))
    x = _inputs(mini_root, fb, None, 32)
    net, got, _ = engine(fb, tmp_path, x, layers=True, **BUILDS[build])
    want, _ = reference(fb, x, tuple(layer.output for layer in net.layers))
    _assert_identical(got, want, f"grown {model.spec.unit_widths} {build} output")


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize(
    "arch, activation",
    [("ds-cnn-s", "silu"), ("ds-cnn-s", "hardswish"), (NONUNIFORM, "silu"), ("ds-cnn-m", "relu"), ("ds-cnn-l", "relu")],
    ids=["s-silu", "s-hardswish", "nonuniform-silu", "m-relu", "l-relu"],
)
def test_every_layer_identical_to_litert(mini_root, tmp_path, arch, activation, build):
    net = _every_layer(mini_root, tmp_path, arch, activation, build)
    if arch in ("ds-cnn-m", "ds-cnn-l"):
        assert net.macs == cost(arch).macs


@pytest.mark.slow
@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("activation", ["relu", "silu", "hardswish"])
@pytest.mark.parametrize("arch", ["ds-cnn-m", "ds-cnn-l"])
def test_m_and_l_identical_on_every_test_clip(mini_root, tmp_path, arch, activation, build):
    fb = tflite(mini_root, arch, activation)
    x = _inputs(mini_root, fb, None, 32)
    want, _ = reference(fb, x)
    _, got, _ = engine(fb, tmp_path, x, **BUILDS[build])
    _assert_identical(got, want, f"{arch} {activation} {build}")


@pytest.mark.parametrize("activation", ["relu", "silu"])
def test_a_mutated_rounding_step_is_caught(mini_root, tmp_path, activation):
    """KWS_NN_MUTATE_ROUNDING rounds RoundingDivideByPOT's ties toward zero instead of away: the test must see it."""
    fb = tflite(mini_root, "ds-cnn-s", activation)
    x = _inputs(mini_root, fb, 8, 4)
    net, _, layers = engine(fb, tmp_path, x, layers=True, defines=("KWS_NN_MUTATE_ROUNDING",))
    _, per = reference(fb, x, tuple(layer.output for layer in net.layers))
    differing = sum(int((a != b).sum()) for a, b in zip(layers, per, strict=True))
    assert differing > 0


def test_memory_plan_in_place_and_against_the_tflm_arena(mini_root, tmp_path):
    from kws.export.tflm import measure_arena

    fb = tflite(mini_root, "ds-cnn-s", "relu")
    net = generate(fb, tmp_path)
    in_place = {x.name for x in net.layers if x.name in net.plan.in_place}
    kinds = {x.name: x.kind for x in net.layers}
    assert {n for n in kinds if kinds[n] in ("depthwise", "pointwise")} <= in_place
    assert kinds["l0"] == "conv" and "l0" not in in_place  # reads the caller's features, writes the arena
    assert net.plan.arena_bytes == 25 * 5 * 64 + 12  # one activation + the 12 logits (live with the pool output)
    tflm = measure_arena(fb).total_bytes  # the real TFLite Micro interpreter's planner, measured
    assert net.ram_bytes <= 0.5 * tflm, (net.ram_bytes, tflm)


@pytest.mark.parametrize("arch, width", [("ds-cnn-m", 172), ("ds-cnn-l", 276)])
def test_fused_first_block_halves_the_ram_against_the_tflm_arena(mini_root, tmp_path, arch, width):
    """The first conv streams into the first depthwise through a ring of 3 rows (its kernel height): the arena is
    that ring (3 x 10 x width) plus the depthwise output (13 x 5 x width), and the rest runs in place in it."""
    from kws.export.tflm import measure_arena

    fb = tflite(mini_root, arch, "relu")
    net = generate(fb, tmp_path)
    assert net.plan.fused == {"l0"} and "l1" not in net.plan.in_place
    assert net.plan.arena_bytes == 3 * 10 * width + 13 * 5 * width
    unfused = generate(fb, tmp_path / "unfused", fuse=False)
    assert unfused.plan.arena_bytes == 25 * 10 * width + 12  # the conv output, whole
    tflm = measure_arena(fb).total_bytes  # the real TFLite Micro interpreter's planner, measured
    assert net.ram_bytes <= 0.5 * tflm, (net.ram_bytes, tflm)
    assert "kws_nn_conv_depthwise(&l0_p, 0, &l1_p, input," in (tmp_path / "kws_net.c").read_text()


@pytest.mark.parametrize("build", sorted(BUILDS))
@pytest.mark.parametrize("arch", ["ds-cnn-m", "ds-cnn-l", NONUNIFORM], ids=["m", "l", "nonuniform"])
def test_fused_network_identical_to_litert(mini_root, tmp_path, arch, build):
    fb = tflite(mini_root, arch, "relu")
    x = _inputs(mini_root, fb, 96, 16)
    net, got, _ = engine(fb, tmp_path, x, **BUILDS[build])
    assert net.plan.fused == {"l0"}
    want, _ = reference(fb, x)
    _assert_identical(got, want, f"fused {build}")


def test_plan_keeps_live_tensors_apart(mini_root, tmp_path):
    """Direct SiLU (LOGISTIC then MUL) keeps x and sigmoid(x) alive together: they must not share bytes."""
    fb = tflite(mini_root, "ds-cnn-s", "silu")
    net = generate(fb, tmp_path, tabulate=False)
    logistic = next(x for x in net.layers if x.kind == "lut")
    mul = next(x for x in net.layers if x.kind == "mul")
    a, b = mul.inputs
    assert logistic.output in (a, b) and net.plan.offsets[a] != net.plan.offsets[b]
    assert abs(net.plan.offsets[a] - net.plan.offsets[b]) >= 8000
    tabulated = generate(fb, tmp_path / "tab")
    assert tabulated.plan.arena_bytes < net.plan.arena_bytes  # one table per SiLU: in place


def test_generated_files_open_with_their_figures(mini_root, tmp_path):
    fb = tflite(mini_root, "ds-cnn-s", "relu")
    net = generate(fb, tmp_path)
    assert net.macs == cost("ds-cnn-s").macs == 2_656_768
    for f in ("kws_net.h", "kws_net.c"):
        first = (tmp_path / f).read_text().splitlines()[0]
        assert first.startswith("/* GENERATED by kws.engine") and "Do not edit" in first
        assert f"{net.macs} MACs" in first and f"= {net.ram_bytes} B" in first and f"{net.const_bytes} B" in first
    src = (tmp_path / "kws_net.c").read_text()
    assert len(re.findall(r"^    kws_nn_\w+\(", src, re.M)) == len(net.layers) == 12
    assert "/* l2: CONV_2D 1x1, 25x5x64 -> 25x5x64, 512000 MACs, in place */" in src
    # per-channel weights: one multiplier per output channel, as TFLite computes them
    assert len(re.search(r"l2_multiplier\[(\d+)\]", src).groups()) == 1 and "l2_multiplier[64]" in src


def test_bad_model_is_a_one_line_error(tmp_path):
    with pytest.raises(KwsError, match="not a TFLite flatbuffer") as e:
        generate(b"not a model at all", tmp_path)
    assert "\n" not in str(e.value)
