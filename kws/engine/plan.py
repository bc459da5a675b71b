"""The static memory plan: every activation tensor at an arena offset fixed at export, chosen by liveness.

A layer that may run in place (its kernel says how: elementwise, pointwise pixel by pixel, depthwise through a
ring of delayed rows, a global pool channel by channel) writes over its input when that input is read by no
later layer; chained in-place layers form one buffer of their largest tensor. Buffers whose lifetimes overlap
get disjoint offsets (greedy, largest first, lowest free offset: TFLM's greedy planner does the same at run time).
The model input (the caller's features) and output (the caller's scores) are not in the arena.
Scratch (im2col columns, depthwise rows) is one separate buffer of the largest layer's need.
Fusion (fuse=True): a CONV_2D whose only reader is the next layer, a DEPTHWISE_CONV_2D (directly, or through the
activation table applied to it in place), is streamed into it row by row (firmware_stub/engine/kws_nn_fused.c);
its output tensor is then a ring of the depthwise kernel's height in rows, and the depthwise writes a buffer of
its own. In a DS-CNN this is the first block, whose conv output is
the widest tensor of the network: fusion takes the arena's peak from two full activations to about one.
"""

from __future__ import annotations

from dataclasses import dataclass

from kws.engine.graph import Graph
from kws.engine.layers import Layer

ALIGN = 4


@dataclass(frozen=True)
class Plan:
    offsets: dict[int, int]  # tensor index -> arena byte offset
    arena_bytes: int
    scratch_bytes: int
    in_place: frozenset[str]  # names of the layers that write over their input
    fused: frozenset[str] = frozenset()  # the conv layers (and their tables) streamed into the next depthwise


def depthwise_delay(layer: Layer) -> int:
    """Output rows a same-base in-place depthwise must hold back: output row y overwrites input rows that output
    rows up to y + delay still read (last reader of input row r: floor((r + pad_top) / stride_h))."""
    f = layer.fields
    row_in, row_out = f["in_w"] * f["c"], f["out_w"] * f["c"]
    delay = 0
    for y in range(f["out_h"]):
        first, last = y * row_out // row_in, min(f["in_h"] - 1, ((y + 1) * row_out - 1) // row_in)
        for r in range(first, last + 1):
            reader = min(f["out_h"] - 1, (r + f["pad_top"]) // f["stride_h"])
            delay = max(delay, reader - y)
    return delay


def _sizes(graph: Graph) -> dict[int, int]:
    return {i: -(-t.size // ALIGN) * ALIGN for i, t in graph.tensors.items()}


def fuse_pairs(graph: Graph, layers: list[Layer]) -> dict[str, int]:
    """{layer name: ring rows} of every conv (and the activation table applied to it in place, if any) whose output
    only the next depthwise reads; sets the conv's out_ring and the depthwise's in_ring fields and takes the
    depthwise out of place."""
    readers: dict[int, int] = {}
    for layer in layers:
        for t in layer.inputs:
            readers[t] = readers.get(t, 0) + 1
    rings = {}
    for i, conv in enumerate(layers):
        if conv.kind != "conv":
            continue
        chain = [conv]
        if i + 1 < len(layers) and layers[i + 1].kind == "lut" and layers[i + 1].inputs == [conv.output]:
            chain.append(layers[i + 1])
        dw = layers[i + len(chain)] if i + len(chain) < len(layers) else None
        if dw is None or dw.kind != "depthwise" or dw.inputs != [chain[-1].output]:
            continue
        if dw.fields["stride_h"] > dw.fields["kernel_h"]:  # then one step could need more rows than the ring
            continue
        if any(readers.get(x.output) != 1 or x.output in (graph.input, graph.output) for x in chain):
            continue
        ring = min(dw.fields["kernel_h"], conv.fields["out_h"])
        conv.fields["out_ring"] = dw.fields["in_ring"] = ring
        dw.in_place = ""
        rings.update({x.name: ring for x in chain})
    return rings


def plan_memory(graph: Graph, layers: list[Layer], fuse: bool = True) -> Plan:
    """Offsets for every layer output except the model output; sets each depthwise layer's delay and scratch."""
    external = {graph.input, graph.output}
    last_use = {}
    for i, layer in enumerate(layers):
        for t in layer.inputs:
            last_use[t] = i
    size = _sizes(graph)
    rings = fuse_pairs(graph, layers) if fuse else {}
    for layer in layers:
        if layer.name in rings:
            _, out_w, out_c = layer.shape
            size[layer.output] = -(-rings[layer.name] * out_w * out_c // ALIGN) * ALIGN
    group_of, groups, in_place = {}, [], set()  # groups: [members, start, end, size]
    for i, layer in enumerate(layers):
        if layer.output in external:
            continue
        donor = next(
            (
                t
                for t in layer.inputs
                if layer.in_place and t not in external and last_use.get(t) == i and t in group_of
            ),
            None,
        )
        if donor is not None:
            g = groups[group_of[donor]]
            g[0].append(layer.output)
            g[3] = max(g[3], size[layer.output])
            group_of[layer.output] = group_of[donor]
            in_place.add(layer.name)
        else:
            group_of[layer.output] = len(groups)
            groups.append([[layer.output], i, i, size[layer.output]])
        groups[group_of[layer.output]][2] = max(groups[group_of[layer.output]][2], last_use.get(layer.output, i))
    for layer in layers:
        if layer.kind == "depthwise":
            layer.delay = depthwise_delay(layer) if layer.name in in_place else 0
            layer.fields["delay"] = layer.delay
            layer.scratch_bytes = (layer.delay + 1) * layer.fields["out_w"] * layer.fields["c"]
    placed: list[tuple[int, int, int, int]] = []  # offset, size, start, end
    offsets = {}
    for members, start, end, nbytes in sorted(groups, key=lambda g: (-g[3], g[1])):
        conflicts = [(o, s) for o, s, a, b in placed if a <= end and start <= b]
        # the lowest free offset is 0 or the (aligned) end of a buffer alive at the same time
        for offset in sorted({0, *(-(-(o + s) // ALIGN) * ALIGN for o, s in conflicts)}):
            if all(offset + nbytes <= o or offset >= o + s for o, s in conflicts):
                break
        placed.append((offset, nbytes, start, end))
        for t in members:
            offsets[t] = offset
    arena = max((o + s for o, s, _, _ in placed), default=0)
    scratch = -(-max((layer.scratch_bytes for layer in layers), default=0) // ALIGN) * ALIGN
    return Plan(offsets, arena, scratch, frozenset(in_place), frozenset(rings))


def best_plan(graph, make_layers) -> tuple[list[Layer], Plan]:
    """(layers, plan) of the smaller of the unfused and the fused plan (fusion takes the fused depthwise out of
    place, so it is kept only where arena + scratch shrink). make_layers() gives fresh layers: planning sets
    their fields."""
    layers = make_layers()
    plan = plan_memory(graph, layers, fuse=False)
    fused_layers = make_layers()
    fused = plan_memory(graph, fused_layers, fuse=True)
    if fused.arena_bytes + fused.scratch_bytes < plan.arena_bytes + plan.scratch_bytes:
        return fused_layers, fused
    return layers, plan
