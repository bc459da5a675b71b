"""The engine's layers and memory plan of a DS-CNN from its ArchSpec alone, without a model or a .tflite.

spec_layers() lists the kernel calls kws.engine.lower() makes of the exported int8 graph of `spec` (conv, then
per block depthwise and pointwise, each followed by its activation table unless ReLU is fused; then the global
pool, the classifier and softmax), with the shapes and the fields the planner reads. engine_plan() runs the
engine's own planner (kws.engine.plan.best_plan, the one kws.engine.codegen uses) on them,
so the RAM a growth run counts is exactly the arena and scratch the exported engine will declare
(tests/test_engine_spec.py checks it against generate() on real exports).
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
