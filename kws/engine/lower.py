"""Lower a Graph to engine layers: one kernel call each, in execution order (kws.engine.layers builds the
weighted layers, kws.engine.elementwise the elementwise ones; RESHAPE becomes an alias, not a layer)."""

from __future__ import annotations

from kws.engine import elementwise
from kws.engine.graph import Graph, Op
from kws.engine.layers import Layer, avgpool, conv, depthwise, fc, softmax
from kws.errors import KwsError

WEIGHTED = dict(CONV_2D=conv, DEPTHWISE_CONV_2D=depthwise, AVERAGE_POOL_2D=avgpool, FULLY_CONNECTED=fc, SOFTMAX=softmax)
SUPPORTED = (*WEIGHTED, "LOGISTIC", "MUL", "HARD_SWISH", "RESHAPE")


def lower(graph: Graph, tabulate: bool = True) -> list[Layer]:
    """The engine layers of `graph` in execution order; tabulate: unary activations as 256-entry tables."""
    unknown = sorted({op.name for op in graph.ops} - set(SUPPORTED))
    if unknown:
        raise KwsError(f"engine: the graph holds ops {unknown} the engine does not implement")
    t, layers, alias, i = graph.tensors, [], {}, 0
    while i < len(graph.ops):
        op = graph.ops[i]
        op = Op(op.name, tuple(alias.get(k, k) for k in op.inputs), op.outputs, op.options)
        name, used = f"l{len(layers)}", 1
        if op.name == "RESHAPE":
            alias[op.outputs[0]] = op.inputs[0]
        elif op.name in WEIGHTED:
            layers.append(WEIGHTED[op.name](name, op, t))
        elif op.name == "LOGISTIC":
            layer, used = elementwise.logistic(name, graph, i, tabulate)
            layers.append(layer)
        elif op.name == "MUL":
            layers.append(elementwise.mul(name, op, t))
        else:  # HARD_SWISH
            layers.append(elementwise.hard_swish(name, op, t, tabulate))
        i += used
    if not layers:
        raise KwsError("engine: the graph has no layers")
    return layers
