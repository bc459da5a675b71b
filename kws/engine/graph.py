"""The int8 .tflite as plain Python: tensors (shape, scales, zero points, constant data) and ops in order.

Read through the flatbuffer schema that ai_edge_litert ships (schema_py_generated, the object API), never by
hand: the flatbuffer is what the device would run, so the engine is generated from exactly its numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from kws.errors import KwsError

# TensorType codes of the schema that an exported DS-CNN uses.
_DTYPES = {0: np.float32, 2: np.int32, 9: np.int8}
# Padding and fused activation codes (schema enums Padding, ActivationFunctionType).
PADDING = {0: "same", 1: "valid"}
ACTIVATION = {0: "none", 1: "relu", 3: "relu6"}


@dataclass(frozen=True)
class Tensor:
    """One tensor; data is None for activations (the arena holds them) and the constant for weights/biases."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: type
    scales: np.ndarray  # float32, one per channel (per-channel weights) or one
    zero_points: np.ndarray  # int64
    quant_dim: int
    data: np.ndarray | None = None

    @property
    def scale(self) -> np.float32:
        return np.float32(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0])

    @property
    def size(self) -> int:
        return int(np.prod(self.shape)) if self.shape else 1


@dataclass(frozen=True)
class Op:
    """A builtin op: its name (CONV_2D...), input and output tensor indices, and its options as a dict."""

    name: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Graph:
    tensors: dict[int, Tensor]
    ops: tuple[Op, ...]
    input: int
    output: int

    def consumers(self, index: int) -> list[int]:
        """Positions of the ops that read tensor `index`."""
        return [i for i, op in enumerate(self.ops) if index in op.inputs]


def _schema():
    from ai_edge_litert import schema_py_generated as schema

    return schema


def _op_names(schema) -> dict[int, str]:
    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_") and isinstance(v, int)}


def _tensor(model, index: int, t) -> Tensor:
    if t.type not in _DTYPES:
        raise KwsError(f"engine: tensor {t.name!r} has type code {t.type}; an int8 export has int8/int32 only")
    dtype = _DTYPES[t.type]
    q = t.quantization
    has_q = q is not None and q.scale is not None and len(q.scale) > 0
    scales = np.asarray(q.scale, np.float32) if has_q else np.zeros(1, np.float32)
    zps = np.asarray(q.zeroPoint, np.int64) if has_q else np.zeros(1, np.int64)
    buf = model.buffers[t.buffer].data if t.buffer < len(model.buffers) else None
    data = None
    if buf is not None and len(buf):
        data = np.frombuffer(np.asarray(buf, np.uint8).tobytes(), dtype).reshape([int(s) for s in t.shape])
    name = t.name.decode() if isinstance(t.name, bytes) else str(t.name)
    shape = tuple(int(s) for s in (t.shape if t.shape is not None else ()))
    return Tensor(index, name, shape, dtype, scales, zps, int(q.quantizedDimension) if has_q else 0, data)


def _options(opt) -> dict:
    return {} if opt is None else {k: v for k, v in vars(opt).items() if not k.startswith("_")}


def read_tflite(flatbuffer: bytes) -> Graph:
    """Parse a single-subgraph int8 TFLite flatbuffer into a Graph (raises KwsError if it is not one)."""
    schema = _schema()
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(flatbuffer), 0)
    except Exception as e:  # the generated reader raises struct/flatbuffers errors of many types
        raise KwsError(f"engine: not a TFLite flatbuffer ({type(e).__name__}: {e})".splitlines()[0]) from None
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise KwsError("engine: the model must have exactly one subgraph")
    g = model.subgraphs[0]
    if len(g.inputs) != 1 or len(g.outputs) != 1:
        raise KwsError(f"engine: the model must have one input and one output, has {len(g.inputs)}/{len(g.outputs)}")
    names = _op_names(schema)
    tensors = {i: _tensor(model, i, t) for i, t in enumerate(g.tensors)}
    ops = []
    for op in g.operators or []:
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        ops.append(
            Op(
                names.get(builtin, f"op{builtin}"),
                tuple(int(i) for i in op.inputs),
                tuple(int(i) for i in op.outputs),
                _options(op.builtinOptions),
            )
        )
    graph = Graph(tensors, tuple(ops), int(g.inputs[0]), int(g.outputs[0]))
    for index in (graph.input, graph.output):
        if tensors[index].dtype is not np.int8:
            raise KwsError(f"engine: model input/output {tensors[index].name!r} is not int8; export with int8 I/O")
    return graph
