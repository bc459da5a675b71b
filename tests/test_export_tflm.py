"""The TFLite Micro arena (kws/export/tflm.py) against what the TFLM interpreter really needs.

Covers: measure_arena() (parsed from the RecordingMicroAllocator's printout) equals the smallest arena_size with
which the real interpreter allocates and invokes, found by bisection in a separate child process written here;
the head equals the analytic int8 peak of kws.cost, each tensor rounded to 16 B: the (input + output) pair with
ReLU, with SiLU also 3 outputs (LOGISTIC + MUL keep x, sigmoid(x) and the product live), with hard swish 2 (one
HARD_SWISH op), on uneven widths; the figures are near docs/device.md's x86-64 measurements (S 24,624 B; M 70,592 B;
L 115,744 B); an invalid model fails as a one-line KwsError.
Run: .venv/bin/pytest tests/test_export_tflm.py -q   (~20 s; -m slow adds ds-cnn-m and ds-cnn-l, ~1 min)
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from kws.cost import cost
from kws.errors import KwsError
from kws.export import convert
from kws.export.tflm import measure_arena, run_tflm
from kws.models import create, resolve_arch

# Child: for each candidate arena size, try to build + invoke; bisect to the smallest size that works, over
# multiples of 16 B: a device arena is an alignas(16) array of 16-B multiple size, and TFLM aligns its tail's start
# down to 16 B, so a byte-level bisection can undercut the allocator's total by up to 15 B on odd sizes.
BISECT = r"""
import sys
import numpy as np
from tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
def works(n):
    try:
        it = runtime.Interpreter.from_bytes(model, arena_size=n)
        d = it.get_input_details(0)
        it.set_input(np.zeros(d["shape"], d["dtype"]), 0)
        it.invoke()
        return True
    except Exception:
        return False
lo, hi = 64, 1 << 16
assert works(16 * hi) and not works(16 * lo)
while hi - lo > 1:
    mid = (lo + hi) // 2
    lo, hi = (lo, mid) if works(16 * mid) else (mid, hi)
print(16 * hi)
"""

FIELD_FACTS_ARENA = {"ds-cnn-s": 24_624, "ds-cnn-m": 70_592, "ds-cnn-l": 115_744}


def _int8(arch, activation: str | None = None) -> bytes:
    torch.manual_seed(0)
    model = create(arch, activation=activation).eval()
    calibration = np.random.default_rng(0).normal(scale=4.0, size=(8, 49, 10)).astype(np.float32)
    return convert.to_tflite_int8(model, calibration)


def _bisect(flatbuffer: bytes, tmp_path) -> int:
    path = tmp_path / "model.tflite"
    path.write_bytes(flatbuffer)
    out = subprocess.run([sys.executable, "-c", BISECT, str(path)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-500:]
    return int(out.stdout.split()[-1])


def _r16(n) -> int:
    return -(-int(n) // 16) * 16


def _check(arch: str, tmp_path) -> None:
    flatbuffer = _int8(arch)
    usage = measure_arena(flatbuffer)
    assert usage.total_bytes == _bisect(flatbuffer, tmp_path)
    assert usage.total_bytes == usage.head_bytes + usage.tail_bytes
    # The head holds the largest (input, output) pair, each tensor placed on a 16 B boundary.
    assert usage.head_bytes == max(_r16(np.prod(x.inp)) + _r16(np.prod(x.out)) for x in cost(arch).per_layer)
    # Same order as docs/device.md (another converter build gave a slightly larger tail there).
    assert abs(usage.total_bytes - FIELD_FACTS_ARENA[arch]) <= 0.03 * FIELD_FACTS_ARENA[arch]


def test_arena_of_ds_cnn_s_equals_bisection(tmp_path):
    _check("ds-cnn-s", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["ds-cnn-m", "ds-cnn-l"])
def test_arena_of_larger_presets_equals_bisection(arch, tmp_path):
    _check(arch, tmp_path)


@pytest.mark.parametrize("activation", ["relu", "silu", "hardswish"])
def test_head_of_uneven_widths_equals_cost_peak(activation):
    # Uneven widths (block 2 expands 12 -> 40 channels). SiLU's peak is 3 x an output: the pre-activation, its sigmoid
    # and their product are live during the MUL; the (input, output) pair alone is the ReLU count.
    spec = replace(resolve_arch("seed"), conv1_width=24, widths=(12, 40, 8, 20), activation=activation)
    flatbuffer = _int8(spec)
    head = measure_arena(flatbuffer).head_bytes
    layers = cost(spec).per_layer
    pair = max(_r16(np.prod(x.inp)) + _r16(np.prod(x.out)) for x in layers)
    live = {"relu": 1, "silu": 3, "hardswish": 2}[activation]  # HARD_SWISH holds its input and output
    triple = max(live * _r16(np.prod(x.out)) for x in layers if x.kind != "fc")
    assert head == max(pair, triple)
    assert 0 <= head - cost(spec).peak_activation_bytes < 3 * 16
    if activation == "silu":
        assert triple > pair  # the SiLU peak is one a ReLU count would miss
    # TFLM runs the HARD_SWISH kernel (PyPI tflite-micro registers all builtins) and gives logits
    _, out = run_tflm(flatbuffer, np.zeros((1, 1, 49, 10, 1), np.int8))
    assert out.shape == (1, 12)


def test_tflm_outputs_and_bad_model():
    flatbuffer = _int8("seed")
    inputs = np.random.default_rng(1).integers(-128, 128, size=(3, 1, 49, 10, 1), dtype=np.int8)
    usage, outputs = run_tflm(flatbuffer, inputs)
    assert outputs.shape == (3, 12) and usage.total_bytes > usage.head_bytes > 0
    with pytest.raises(KwsError, match="TFLite Micro"):
        run_tflm(b"\0" * 64, inputs)
