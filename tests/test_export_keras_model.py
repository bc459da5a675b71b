"""The Keras rebuild of a DS-CNN (kws/export/keras_model.py) against the torch model it copies.

Covers: BatchNorm folding, OIHW -> HWIO and depthwise layout, explicit SAME padding for odd and even kernels and
strides, ReLU and SiLU, non-uniform widths; the reference is the torch forward pass with non-trivial BN statistics.
Run: .venv/bin/pytest tests/test_export_keras_model.py -q   (~10 s, Keras inference only)
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kws.export.keras_model import build_keras, fold_bn
from kws.models import ArchSpec, create


def _randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """BN statistics far from identity, so a missing or transposed fold shows up as O(1) errors."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(n, generator=g) * 1.5)
            m.weight.data.copy_(0.5 + torch.rand(n, generator=g))
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
    return model.eval()


def test_fold_bn_matches_conv_then_bn():
    conv = torch.nn.Conv2d(3, 5, (3, 2), bias=False)
    bn = _randomize_bn(torch.nn.Sequential(torch.nn.BatchNorm2d(5)))[0]
    x = torch.randn(2, 3, 7, 6)
    w, b = fold_bn(conv.weight, bn)
    folded = torch.nn.functional.conv2d(x, torch.from_numpy(w), torch.from_numpy(b))
    torch.testing.assert_close(folded, bn(conv(x)), atol=1e-5, rtol=1e-5)


NONUNIFORM = ArchSpec(conv1_width=12, widths=(20, 7, 33), strides=((2, 2), (1, 1), (2, 1)), conv1_stride=(2, 1))


@pytest.mark.parametrize(
    "arch,activation",
    [("ds-cnn-s", "relu"), ("ds-cnn-s", "silu"), ("ds-cnn-s", "hardswish"), ("seed-l", "relu"), (NONUNIFORM, "relu")],
)
def test_keras_rebuild_equals_torch(arch, activation):
    torch.manual_seed(1)
    model = _randomize_bn(create(arch, activation=activation))
    x = np.random.default_rng(0).normal(scale=4.0, size=(6, 49, 10)).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(x)).numpy()
    keras_logits = build_keras(model, softmax=False)(x[..., None]).numpy()
    assert keras_logits.shape == logits.shape
    np.testing.assert_allclose(keras_logits, logits, atol=1e-4, rtol=1e-4)
    probs = build_keras(model, softmax=True)(x[..., None]).numpy()
    np.testing.assert_allclose(probs, torch.softmax(torch.from_numpy(logits), -1).numpy(), atol=1e-5)
