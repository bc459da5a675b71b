"""Rebuild a trained torch DS-CNN as an NHWC Keras model with BatchNorm folded, for the TFLite converter.

Why a Keras rebuild and not a graph translator (docs/device.md, "TFLite int8 conversion"): torch -> ONNX ->
onnx2tf hard-pins old TensorFlow/numpy/protobuf and needs its own venv; litert-torch pulls jax/transformers and
keeps the NCHW input layout. A DS-CNN is six kinds of layer, so rebuilding it by hand is short, exact (float
outputs within ~1e-5 of torch) and gives the converter the graph TFLite Micro wants: CONV_2D,
DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, FULLY_CONNECTED, SOFTMAX, nothing else, and an NHWC (1, frames, coeffs, 1)
input so that the device feeds its MFCC ring buffer without a transpose.

Weight layouts: torch conv OIHW -> Keras HWIO; torch depthwise (C, 1, kh, kw) -> Keras (kh, kw, C, 1); torch
Linear (out, in) -> Keras Dense (in, out). Padding: torch pads explicitly (ZeroPad2d with TensorFlow's SAME
amounts), so the rebuild uses the same ZeroPadding2D + VALID convolutions; the converter folds each pad into its
convolution as SAME padding (no PAD op is left in the graph; asserted in tests/test_export_convert.py).
BatchNorm folding (Ioffe & Szegedy 2015, eq. in Alg. 1 at inference): y = gamma * (conv(x) - mean) / sqrt(var +
eps) + beta  ==  conv'(x) + b'  with  w' = w * s,  b' = beta - mean * s,  s = gamma / sqrt(var + eps) per
output channel.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from kws.models import DSCNN


def fold_bn(weight: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[np.ndarray, np.ndarray]:
    """(weight * s, beta - mean * s) with s = gamma / sqrt(var + eps) broadcast over the output channel (dim 0)."""
    s = bn.weight.detach().double() / torch.sqrt(bn.running_var.detach().double() + bn.eps)
    w = weight.detach().double() * s.reshape(-1, *([1] * (weight.dim() - 1)))
    b = bn.bias.detach().double() - bn.running_mean.detach().double() * s
    return w.float().numpy(), b.float().numpy()


def _activation(keras, name: str):
    # SiLU as x * sigmoid(x): converts to LOGISTIC + MUL, both int8 builtins that TFLite Micro implements;
    # keras' "swish" lowers to the same pair. Hard swish x * relu6(x + 3) / 6 converts to the one HARD_SWISH op.
    if name == "relu":
        return keras.layers.ReLU()
    return keras.layers.Activation({"silu": "silu", "hardswish": "hard_swish"}[name])


def _pad_layer(keras, padding: tuple[int, int, int, int]):
    top, bottom, left, right = padding
    if not any(padding):
        return None
    return keras.layers.ZeroPadding2D(((top, bottom), (left, right)))


def _conv(keras, x, conv: nn.Conv2d, bn: nn.BatchNorm2d, padding, activation: str, depthwise: bool):
    pad = _pad_layer(keras, padding)
    if pad is not None:
        x = pad(x)
    w, b = fold_bn(conv.weight, bn)
    if depthwise:
        layer = keras.layers.DepthwiseConv2D(conv.kernel_size, strides=conv.stride, padding="valid")
        kernel = np.transpose(w, (2, 3, 0, 1))  # (C, 1, kh, kw) -> (kh, kw, C, 1)
    else:
        layer = keras.layers.Conv2D(conv.out_channels, conv.kernel_size, strides=conv.stride, padding="valid")
        kernel = np.transpose(w, (2, 3, 1, 0))  # OIHW -> HWIO
    x = layer(x)
    layer.set_weights([kernel, b])
    return _activation(keras, activation)(x)


def build_keras(model: DSCNN, softmax: bool = True):
    """An inference-only Keras copy of `model` (eval mode, BN folded, dropout dropped), input (1, frames, coeffs, 1).

    With softmax=True the output is class probabilities (what the device thresholds); the logits are the input
    of the final SOFTMAX op.
    """
    import keras

    model = model.eval()
    spec = model.spec
    geo = spec.geometry()
    frames, coeffs = spec.input_shape
    inp = keras.Input(shape=(frames, coeffs, 1), batch_size=1, name="mfcc")
    x = _conv(keras, inp, model.conv1, model.conv1_bn, geo[0]["padding"], spec.activation, depthwise=False)
    for i, block in enumerate(model.blocks):
        x = _conv(keras, x, block.dw, block.dw_bn, geo[1 + 2 * i]["padding"], spec.activation, depthwise=True)
        x = _conv(keras, x, block.pw, block.pw_bn, (0, 0, 0, 0), spec.activation, depthwise=False)
    h, w, _ = geo[-1]["out"]
    x = keras.layers.AveragePooling2D(pool_size=(h, w))(x)
    x = keras.layers.Reshape((spec.unit_widths[-1],))(x)
    dense = keras.layers.Dense(model.num_classes)
    x = dense(x)
    dense.set_weights([model.classifier.weight.detach().numpy().T, model.classifier.bias.detach().numpy()])
    if softmax:
        x = keras.layers.Softmax()(x)
    return keras.Model(inp, x, name="ds_cnn")


def torch_to_nhwc(features: np.ndarray) -> np.ndarray:
    """(N, frames, coeffs) float features -> the Keras/TFLite input layout (N, frames, coeffs, 1)."""
    return np.asarray(features, dtype=np.float32)[..., None]
