"""The engine's layers and memory plan of a DS-CNN from its ArchSpec alone, without a model or a .tflite.

spec_layers() lists the kernel calls kws.engine.lower() makes of the exported int8 graph of `spec` (conv, then
per block depthwise and pointwise, each followed by its activation table unless ReLU is fused; then the global
pool, the classifier and softmax), with the shapes and the fields the planner reads. engine_plan() runs the
engine's own planner (kws.engine.plan.best_plan, the one kws.engine.codegen uses) on them,
so the RAM a growth run counts is exactly the arena and scratch the exported engine will declare
(tests/test_engine_spec.py checks it against generate() on real exports). engine_const_bytes() counts the flash
of the network's constant arrays the same way, from the layouts kws.engine.layers writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from kws.engine.layers import Layer
from kws.engine.plan import Plan, best_plan, plan_memory
from kws.models import ArchSpec, resolve_arch


@dataclass(frozen=True)
class SpecGraph:
    """The planner's view of a graph: tensor sizes and which tensors are the model's input and output."""

    tensors: dict
    input: int
    output: int


def _k4(k: int) -> int:
    return -(-k // 4) * 4


def spec_layers(arch, num_classes: int = 12) -> tuple[SpecGraph, list[Layer]]:
    """(planner graph, engine layers) of the int8 export of `arch` (tabulated activations, the default)."""
    spec: ArchSpec = resolve_arch(arch)
    sizes: dict[int, int] = {}
    layers: list[Layer] = []

    def tensor(n: int) -> int:
        sizes[len(sizes)] = n
        return len(sizes) - 1

    def add(kind: str, src: int, shape: tuple, fields: dict, macs: int = 0, scratch: int = 0, in_place: str = ""):
        n = 1
        for s in shape:
            n *= s
        out = tensor(n)
        layers.append(
            Layer(f"l{len(layers)}", kind, kind, [src], out, tuple(shape), fields, {}, macs, scratch, in_place)
        )
        if spec.activation != "relu" and kind in ("conv", "pointwise", "depthwise"):
            add("lut", out, shape, dict(n=n), in_place="elementwise")
        return layers[-1].output

    h, w = spec.input_shape
    x = graph_input = tensor(h * w)
    for g in spec.geometry():
        (ih, iw, ic), (oh, ow, oc) = g["inp"], g["out"]
        (kh, kw), (sh, sw), (pt, _, pl, _) = g["kernel"], g["stride"], g["padding"]
        fields = dict(
            in_h=ih, in_w=iw, out_h=oh, out_w=ow, kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, pad_top=pt
        )
        fields.update(pad_left=pl)
        if g["kind"] == "depthwise":
            fields.update(c=oc, in_ring=ih)
            x = add("depthwise", x, (oh, ow, oc), fields, oh * ow * oc * kh * kw, in_place="depthwise")
        else:
            pointwise = kh == kw == sh == sw == 1 and pt == pl == 0
            fields.update(in_c=ic, out_c=oc, out_ring=oh, k4=_k4(kh * kw * ic))
            kind = "pointwise" if pointwise else "conv"
            macs = oh * ow * oc * kh * kw * ic
            x = add(kind, x, (oh, ow, oc), fields, macs, 4 * _k4(kh * kw * ic), "pointwise" if pointwise else "")
    h, w, c = layers[-1].shape
    x = add("avgpool", x, (1, 1, c), dict(in_h=h, in_w=w, c=c), in_place="global_pool" if h * w > 1 else "")
    x = add("fc", x, (num_classes,), dict(in_n=c, out_n=num_classes, k4=_k4(c)), c * num_classes, 4 * _k4(c))
    add("softmax", x, (num_classes,), dict(n=num_classes), in_place="elementwise")
    graph = SpecGraph({i: SimpleNamespace(size=n) for i, n in sizes.items()}, graph_input, layers[-1].output)
    return graph, layers


def engine_plan(arch, num_classes: int = 12, fuse: bool = True) -> tuple[list[Layer], Plan]:
    """(layers, memory plan) of the generated engine of `arch`, fused as kws.engine.codegen.generate fuses."""
    graph, layers = spec_layers(arch, num_classes)
    if fuse:
        return best_plan(graph, lambda: spec_layers(arch, num_classes)[1])
    return layers, plan_memory(graph, layers, fuse=False)


def engine_memory(arch, num_classes: int = 12, fuse: bool = True) -> Plan:
    """The memory plan (arena + scratch) the generated engine of `arch` declares."""
    return engine_plan(arch, num_classes, fuse)[1]


def engine_ram_bytes(arch, num_classes: int = 12) -> int:
    """Arena + scratch of the generated engine: the RAM its network needs beyond the stack."""
    plan = engine_memory(arch, num_classes)
    return plan.arena_bytes + plan.scratch_bytes


def _rows_bytes(out_n: int, k4: int) -> int:
    """kws.engine.layers.blocked_rows: int8 rows padded to (even out_n, k4) + the folded int32 bias per row."""
    n2 = out_n + out_n % 2
    return n2 * k4 + 4 * n2


def layer_const_bytes(layer: Layer, fast_requant: bool = True) -> int:
    """Flash of one layer's constant arrays, as kws.engine.layers lays them out.

    fast_requant: the per-channel rounding constants (and, for a 3x3 depthwise of >= 4 channels, its folded
    `rq` groups and zero-point row) are present -- the layer takes kws_nn_requantize_zp's fast path, which the
    generator picks when every accumulator stays below 2^30 (true of every trained and untrained model measured).
    Without them a layer is smaller, so the fast-path count is an upper bound of the generated one.
    """
    f = layer.fields
    if layer.kind in ("conv", "pointwise"):
        # weights + folded bias, then int32 multiplier, int8 shift and int32 rounding per output channel
        return _rows_bytes(f["out_c"], f["k4"]) + f["out_c"] * (4 + 1 + (4 if fast_requant else 0))
    if layer.kind == "depthwise":
        c, taps = f["c"], f["kernel_h"] * f["kernel_w"]
        c4 = _k4(c)
        n = taps * c4 * 2 + 4 * c + c * (4 + 1 + (4 if fast_requant else 0))  # int16 taps, bias, requant
        if fast_requant and f["kernel_h"] == f["kernel_w"] == 3 and c >= 4:
            n += 64 * (c // 4) + c4  # per full group: 4 folded biases + 4 x (multiplier, rounding, e); zpad row
        return n
    if layer.kind == "fc":
        # kws export quantizes the classifier per channel: one double effective scale per output
        return _rows_bytes(f["out_n"], f["k4"]) + 8 * f["out_n"]
    if layer.kind == "lut":
        return 256
    return 0


def engine_const_bytes(arch, num_classes: int = 12) -> int:
    """Flash of the generated engine's weights, biases, requantization constants and tables (KWS_NET_CONST_BYTES):
    the part of the engine's flash that grows with the network; its code (~9-10 KB) does not."""
    layers, _ = engine_plan(arch, num_classes)
    return sum(layer_const_bytes(x) for x in layers)
