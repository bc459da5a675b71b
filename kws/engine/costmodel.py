"""Instructions of the generated engine on each emulated core, predicted from an ArchSpec alone.

Each engine layer (kws.engine.spec.spec_layers) costs a linear function of a few counts of its own work, with
non-negative coefficients per (core, layer kind) fitted to QEMU measurements (bench/engine_cost.py):
    conv / pointwise  MACs, 2x2 output blocks (pixel pairs x channel pairs: one requantized block each), im2col /
                      column elements, 1
    depthwise         MACs, channel groups of 4 per output pixel, leftover channels x taps, output pixels (each
                      window's tap list), output rows, 1
    fc                MACs, output channel pairs, 1;  avgpool  input and output elements, 1
    lut / softmax     elements, 1
A conv fused into the depthwise after it (kws.engine.plan) is measured as one call: its counts join the
depthwise's in the fit and in the prediction, which stays per engine layer.

The fitted data ships as kws/engine/cost_model.json, tagged with ENGINE_VERSION: a hash of the kernels and of the
generator that lays their data out. load() refuses data fitted on another version, so the model and the kernels
cannot drift apart silently: re-run `python bench/engine_cost.py` after changing either.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path

import numpy as np

from kws.engine.spec import engine_plan
from kws.errors import KwsError
from kws.models import resolve_arch

HERE = Path(__file__).resolve().parent
DATA = HERE / "cost_model.json"
KERNELS = HERE.parents[1] / "firmware_stub" / "engine"
GENERATOR = ("layers.py", "elementwise.py", "lower.py", "plan.py", "codegen.py", "quant.py")
FEATURES = {
    "conv": ("macs", "blocks", "columns", "one"),
    "pointwise": ("macs", "blocks", "columns", "one"),
    "depthwise": ("macs", "groups", "tail", "windows", "rows", "one"),
    "fc": ("macs", "blocks", "one"),
    "avgpool": ("inputs", "outputs", "one"),
    "lut": ("n", "one"),
    "softmax": ("n", "one"),
}


def engine_version() -> str:
    """sha256 (16 hex) of firmware_stub/engine's sources and of the generator modules that shape their calls."""
    h = hashlib.sha256()
    files = sorted(KERNELS.glob("*.[ch]")) + [HERE / name for name in GENERATOR]
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes())
    return h.hexdigest()[:16]


def layer_counts(layer) -> dict[str, float]:
    """The counts a layer's instructions are linear in (FEATURES[layer.kind])."""
    f, k = layer.fields, layer.kind
    if k in ("conv", "pointwise"):
        oh, ow, oc = layer.shape
        pixels = oh * ow
        return dict(macs=layer.macs, blocks=-(-pixels // 2) * -(-oc // 2), columns=pixels * f["k4"], one=1)
    if k == "depthwise":
        oh, ow, c = layer.shape
        taps = f["kernel_h"] * f["kernel_w"]
        pixels = oh * ow
        return dict(
            macs=layer.macs, groups=pixels * (c // 4), tail=pixels * (c % 4) * taps, windows=pixels, rows=oh, one=1
        )
    if k == "fc":
        return dict(macs=layer.macs, blocks=-(-f["out_n"] // 2), one=1)
    if k == "avgpool":
        return dict(inputs=f["in_h"] * f["in_w"] * f["c"], outputs=f["c"], one=1)
    if k == "lut":
        return dict(n=f["n"], one=1)
    if k == "softmax":
        return dict(n=f["n"] if "n" in f else f["rows"] * f["depth"], one=1)
    raise KwsError(f"cost model: no counts for engine layer kind {k!r}")


def design_rows(layers, fused: frozenset[str]) -> tuple[list[dict[tuple[str, str], float]], list[int]]:
    """One row per measured call: {(kind, count): value}; a fused chain's counts join its depthwise's row.
    Returns (rows, the index of the engine layer each row is measured at)."""
    rows, at, pending = [], [], {}
    for i, layer in enumerate(layers):
        row = {(layer.kind, name): float(v) for name, v in layer_counts(layer).items()}
        for key, v in pending.items():
            row[key] = row.get(key, 0.0) + v
        if layer.name in fused:
            pending = row
            continue
        pending = {}
        rows.append(row)
        at.append(i)
    return rows, at


def fit(samples: list[tuple[list, frozenset, np.ndarray]]) -> dict[str, dict[str, float]]:
    """Non-negative least squares over (layers, fused, measured per-layer instructions) samples of one core,
    each row weighted by 1 / measured so that small layers count as much as large ones (relative error)."""
    from scipy.optimize import nnls

    columns = [(kind, name) for kind, names in FEATURES.items() for name in names]
    a, b = [], []
    for layers, fused, measured in samples:
        rows, at = design_rows(layers, fused)
        for row, i in zip(rows, at, strict=True):
            y = float(measured[i])
            w = 1.0 / max(y, 1.0)
            a.append([row.get(col, 0.0) * w for col in columns])
            b.append(y * w)
    x, _ = nnls(np.asarray(a), np.asarray(b), maxiter=50 * len(columns))
    coef: dict[str, dict[str, float]] = {}
    for (kind, name), v in zip(columns, x, strict=True):
        coef.setdefault(kind, {})[name] = float(v)
    return coef


def predict_calls(layers, fused: frozenset[str], coef: dict) -> list[float]:
    """Predicted instructions per engine layer (0 for a layer fused into the next; the chain at the depthwise)."""
    out = [0.0] * len(layers)
    rows, at = design_rows(layers, fused)
    for row, i in zip(rows, at, strict=True):
        out[i] = sum(coef[kind][name] * v for (kind, name), v in row.items())
    return out


@cache
def load(path: str | None = None) -> dict:
    """The shipped fit; KwsError when missing or fitted on another engine version."""
    p = Path(path) if path else DATA
    if not p.is_file():
        raise KwsError(f"cost model: {p} is missing; run `python bench/engine_cost.py` to fit it in QEMU")
    data = json.loads(p.read_text())
    if data.get("engine_version") != engine_version():
        raise KwsError(
            f"cost model: {p.name} was fitted on engine {data.get('engine_version')}, the sources are "
            f"{engine_version()}; run `python bench/engine_cost.py` to re-measure it in QEMU"
        )
    return data


def predict(arch, core: str = "cortex-m4", num_classes: int = 12) -> dict:
    """{'instructions': per inference, 'per_layer': [...], 'error': the fit's stated relative error on held-out
    specs, 'ram_bytes': the engine's arena + scratch} for the default (fused, tabulated) engine of `arch`."""
    data = load()
    if core not in data["cores"]:
        raise KwsError(f"cost model: no fit for core {core!r}; fitted: {', '.join(data['cores'])}")
    layers, plan = engine_plan(resolve_arch(arch), num_classes)
    per = predict_calls(layers, plan.fused, data["cores"][core]["coefficients"])
    return dict(
        instructions=float(sum(per)),
        per_layer=per,
        error=float(data["cores"][core]["heldout_max_rel_error"]),
        ram_bytes=plan.arena_bytes + plan.scratch_bytes,
    )


def instructions(arch, core: str = "cortex-m4", num_classes: int = 12) -> float:
    return predict(arch, core, num_classes)["instructions"]


MARGIN_FACTOR = 2.0


def margin(core: str = "cortex-m4") -> float:
    """What a hard time budget adds to a prediction on `core`: MARGIN_FACTOR x the model's worst relative error on
    its fitted and held-out networks (1.47% on the M4: 2.9%). A network grown to the edge of the budget by the
    prediction then keeps it when measured. The factor is there because networks outside the fit set err more:
    the widest real-time uniform nets measured 1.5% (M4, width 110) and 2.3% (M55, width 205) over their
    predictions (bench/realtime_widths.py), and a grown 15 ms network 0.9% over."""
    data = load()
    if core not in data["cores"]:
        raise KwsError(f"cost model: no fit for core {core!r}; fitted: {', '.join(data['cores'])}")
    c = data["cores"][core]
    return MARGIN_FACTOR * float(max(c["fit_max_rel_error"], c["heldout_max_rel_error"]))
