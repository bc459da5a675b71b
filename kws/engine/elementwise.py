"""The elementwise engine layers: LOGISTIC, SiLU = MUL(x, LOGISTIC(x)), MUL and HARD_SWISH.

Each unary int8 activation becomes one 256-entry table (kind "lut") when tabulate=True: the table is the exact
int8 function, computed in Python with TFLite's arithmetic (kws.engine.quant). With tabulate=False LOGISTIC is
still a table, and MUL and HARD_SWISH call their C kernels directly. Both variants are tested bit-exact against
LiteRT. All of them may write over their input (in_place="elementwise").
"""

from __future__ import annotations

import numpy as np

from kws.engine import quant
from kws.engine.graph import Graph, Op, Tensor
from kws.engine.layers import Layer, act_range
from kws.errors import KwsError


def _lut(name: str, op: str, x: Tensor, y: Tensor, table: np.ndarray) -> Layer:
    return Layer(
        name,
        op,
        "lut",
        [x.index],
        y.index,
        y.shape[1:],
        dict(n=x.size),
        {f"{name}_table": ("int8_t", table)},
        in_place="elementwise",
    )


def _mul_fields(a: Tensor, b: Tensor, y: Tensor, op: Op) -> dict:
    m, s = quant.mul_multiplier(a.scale, b.scale, y.scale)
    lo, hi = act_range(op, y)
    return dict(
        n=y.size,
        in1_zero_point=a.zero_point,
        in2_zero_point=b.zero_point,
        out_zero_point=y.zero_point,
        multiplier=m,
        shift=s,
        act_min=lo,
        act_max=hi,
    )


def _silu_pair(graph: Graph, i: int) -> bool:
    """ops[i] is LOGISTIC(a) -> s and ops[i + 1] is MUL(a, s) with s read by nothing else."""
    if i + 1 >= len(graph.ops) or graph.ops[i + 1].name != "MUL":
        return False
    lg, mul = graph.ops[i], graph.ops[i + 1]
    s, a = lg.outputs[0], lg.inputs[0]
    return sorted(mul.inputs) == sorted((a, s)) and graph.consumers(s) == [i + 1]


def logistic(name: str, graph: Graph, i: int, tabulate: bool) -> tuple[Layer, int]:
    """LOGISTIC at graph.ops[i] as a table, fused with the MUL after it into one SiLU table when they form a SiLU
    pair and tabulate is on. Returns the layer and how many ops it consumed (1 or 2)."""
    op, t = graph.ops[i], graph.tensors
    x, y = t[op.inputs[0]], t[op.outputs[0]]
    table = quant.logistic_table(x.scale, x.zero_point, y.scale, y.zero_point)
    if not (tabulate and _silu_pair(graph, i)):
        return _lut(name, "LOGISTIC", x, y, table), 1
    mul = graph.ops[i + 1]
    z = t[mul.outputs[0]]
    f = _mul_fields(x, y, z, mul)  # in1 = x, in2 = sigmoid(x): the product of scales commutes
    silu = quant.mul_table(
        table, x.zero_point, y.zero_point, z.zero_point, f["multiplier"], f["shift"], (f["act_min"], f["act_max"])
    )
    return _lut(name, "LOGISTIC + MUL (SiLU)", x, z, silu), 2


def mul(name: str, op: Op, t: dict) -> Layer:
    a, b, y = t[op.inputs[0]], t[op.inputs[1]], t[op.outputs[0]]
    if a.shape != b.shape or a.shape != y.shape:
        raise KwsError(f"engine: {name}: MUL with broadcasting is not supported")
    return Layer(
        name, "MUL", "mul", [a.index, b.index], y.index, y.shape[1:], _mul_fields(a, b, y, op), in_place="elementwise"
    )


def hard_swish(name: str, op: Op, t: dict, tabulate: bool) -> Layer:
    x, y = t[op.inputs[0]], t[op.outputs[0]]
    p = quant.hard_swish_params(x.scale, x.zero_point, y.scale, y.zero_point)
    if tabulate:
        return _lut(name, "HARD_SWISH", x, y, quant.hard_swish_table(p))
    fields = dict(
        n=x.size,
        in_zero_point=p["input_zero_point"],
        out_zero_point=p["output_zero_point"],
        output_multiplier=p["output_multiplier"],
        output_exponent=p["output_exponent"],
        reluish_multiplier=p["reluish_multiplier"],
        reluish_exponent=p["reluish_exponent"],
    )
    return Layer(name, "HARD_SWISH", "hard_swish", [x.index], y.index, y.shape[1:], fields, in_place="elementwise")
