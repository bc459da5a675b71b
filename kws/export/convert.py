"""Torch DS-CNN -> full-integer int8 TFLite, float32 TFLite and ONNX.

int8 (the deployed model): TFLiteConverter on the Keras rebuild (keras_model.py explains why that route) with
optimizations=[DEFAULT], supported_ops=[TFLITE_BUILTINS_INT8] and int8 input and output, so that every tensor
is int8 with per-channel weight scales and int32 biases, and a representative dataset of real training clips
fixes the activation ranges. The graph is checked to hold only ops TFLite Micro implements for a KWS model.

ONNX: torch.onnx.export (torch 2.13 defaults to the dynamo exporter, which needs onnxscript), checked with
onnxruntime against torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from kws.errors import KwsError
from kws.export.keras_model import build_keras, torch_to_nhwc
from kws.files import atomic_write_bytes
from kws.models import DSCNN

# Ops a DS-CNN may leave in the graph; LOGISTIC and MUL come from SiLU = x * sigmoid(x), HARD_SWISH from hardswish.
ALLOWED_OPS = frozenset(
    {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "FULLY_CONNECTED", "SOFTMAX", "LOGISTIC", "MUL", "HARD_SWISH"}
)


def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


@contextlib.contextmanager
def _quiet_logger(name: str):
    """Silence a library logger below ERROR (torch.onnx warns about every torchvision op it cannot register)."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _converter(model: DSCNN):
    tf = _quiet_tensorflow()
    return tf, tf.lite.TFLiteConverter.from_keras_model(build_keras(model, softmax=True))


def _convert(converter) -> bytes:
    # The Keras export prints its SavedModel signature (dozens of lines) on stdout, where `kws export` prints its
    # table; errors still arrive as exceptions.
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bytes(converter.convert())


def to_tflite_float(model: DSCNN) -> bytes:
    """A float32 TFLite flatbuffer of `model` (softmax output), the reference for the int8 model's parity."""
    _, converter = _converter(model)
    return _convert(converter)


def to_tflite_int8(model: DSCNN, calibration: np.ndarray) -> bytes:
    """A full-integer int8 TFLite flatbuffer of `model`, activation ranges from `calibration`.

    calibration: float32 MFCC features (N, frames, coeffs), a fixed stratified subset of training clips.
    """
    if calibration.ndim != 3 or len(calibration) == 0:
        raise KwsError(f"export: calibration features must be (N, frames, coeffs) with N > 0, got {calibration.shape}")
    tf, converter = _converter(model)
    samples = torch_to_nhwc(calibration)

    def representative():
        for i in range(len(samples)):
            yield [samples[i : i + 1]]

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter.representative_dataset = representative
    flatbuffer = _convert(converter)
    check_ops(flatbuffer)
    return flatbuffer


def graph_ops(flatbuffer: bytes) -> list[str]:
    """The op names of the flatbuffer's graph in execution order."""
    from ai_edge_litert.interpreter import Interpreter

    return [op["op_name"] for op in Interpreter(model_content=flatbuffer)._get_ops_details()]


def check_ops(flatbuffer: bytes) -> None:
    """Raise KwsError if the graph holds an op outside ALLOWED_OPS (the device build registers only those)."""
    extra = sorted(set(graph_ops(flatbuffer)) - ALLOWED_OPS)
    if extra:
        raise KwsError(f"export: the int8 graph holds ops {extra} that the firmware does not register")


def to_onnx(model: DSCNN, path: Path) -> Path:
    """Write `model` as ONNX (input "mfcc" (1, frames, coeffs) float32, output "logits") to path, atomically."""
    frames, coeffs = model.spec.input_shape
    example = torch.zeros(1, frames, coeffs)
    path = Path(path)
    try:
        with (
            tempfile.TemporaryDirectory() as scratch,
            contextlib.redirect_stdout(sys.stderr),
            warnings.catch_warnings(),
            _quiet_logger("torch.onnx"),
        ):
            warnings.simplefilter("ignore")
            tmp = Path(scratch) / "model.onnx"  # the exporter writes a path; the bytes then go through kws.files
            torch.onnx.export(
                model.eval(),
                (example,),
                tmp,
                input_names=["mfcc"],
                output_names=["logits"],
                external_data=False,
                verbose=False,
            )
            data = tmp.read_bytes()
    except Exception as e:  # the exporter raises many types; the user needs one line
        raise KwsError(f"export: torch.onnx.export failed for {path} ({type(e).__name__}: {e})".splitlines()[0]) from e
    atomic_write_bytes(path, data)
    return path


def onnx_logits(path: Path, features: np.ndarray) -> np.ndarray:
    """Logits (N, classes) of the ONNX model at path run by onnxruntime, one clip at a time."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    x = np.asarray(features, dtype=np.float32)
    return np.concatenate([session.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])
