"""DS-CNN models (kws/models.py): every preset trains, specs serialize, arch strings resolve, SAME padding is TF's.

Covers: forward/backward for every registered preset (parametrized over the registry), ArchSpec to_dict/from_dict
and JSON round trips, resolve_arch forms (preset, "*mult", "@width", JSON text, JSON file, bad input), and the
output shape of every layer against tf.keras Conv2D/DepthwiseConv2D(padding="same") on the same input shape.
Run: `.venv/bin/pytest tests/test_models.py -q`.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kws.errors import KwsError
from kws.models import PRESETS, ArchSpec, create, resolve_arch


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_forward_backward_every_preset(name):
    model = create(name).train()
    x = torch.randn(3, *PRESETS[name].input_shape)
    logits = model(x)
    assert logits.shape == (3, 12)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 5, 11])).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_activation_and_dropout_overrides():
    model = create("seed", activation="silu", dropout=0.25)
    assert model.spec.activation == "silu" and isinstance(model.conv1_act, torch.nn.SiLU)
    assert model.dropout.p == 0.25


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_spec_round_trips_through_dict_and_json(name):
    spec = PRESETS[name].with_unit_widths([3, 5, 7, 9, 11, 13][: len(PRESETS[name].unit_widths)])
    assert ArchSpec.from_dict(spec.to_dict()) == spec
    assert ArchSpec.from_dict(json.loads(spec.to_json())) == spec


def test_resolve_arch_forms(tmp_path):
    s = PRESETS["ds-cnn-s"]
    assert resolve_arch("ds-cnn-s") == s
    assert resolve_arch("ds-cnn-s*0.5").unit_widths == (32,) * 5
    assert resolve_arch("ds-cnn-s@100").unit_widths == (100,) * 5
    assert resolve_arch("ds-cnn-s@100").strides == s.strides
    odd = s.with_unit_widths([8, 9, 10, 11, 12])
    assert resolve_arch(odd.to_json()) == odd
    path = tmp_path / "arch.json"
    path.write_text(odd.to_json())
    assert resolve_arch(str(path)) == odd
    assert resolve_arch(odd.to_dict()) == odd


@pytest.mark.parametrize("bad", ["ds-cnn-xl", "ds-cnn-s*abc", "{not json", "missing.json", '{"conv1_width": 4}'])
def test_resolve_arch_rejects_bad_input_with_one_line(bad):
    with pytest.raises(KwsError) as e:
        resolve_arch(bad)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("input_shape", [(49, 10), (50, 11), (31, 7)])
@pytest.mark.parametrize("name", ["ds-cnn-s", "ds-cnn-m", "seed-l"])
def test_same_padding_shapes_equal_tensorflow(name, input_shape):
    tf = pytest.importorskip("tensorflow")
    spec = ArchSpec.from_dict({**PRESETS[name].to_dict(), "input_shape": list(input_shape)})
    layers = {"conv": tf.keras.layers.Conv2D, "depthwise": tf.keras.layers.DepthwiseConv2D}
    model = create(spec).eval()
    shapes = {}
    hooks = [
        m.register_forward_hook(lambda mod, i, o, n=n: shapes.__setitem__(n, tuple(o.shape[1:])))
        for n, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d)
    ]
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    for h in hooks:
        h.remove()
    for g in spec.geometry():
        if g["kind"] == "pointwise":
            continue
        h, w, c = g["inp"]
        if g["kind"] == "conv":
            layer = layers["conv"](g["out"][2], g["kernel"], strides=g["stride"], padding="same")
        else:
            layer = layers["depthwise"](g["kernel"], strides=g["stride"], padding="same")
        tf_shape = tuple(layer(np.zeros((1, h, w, c), np.float32)).shape[1:])  # NHWC
        torch_c, torch_h, torch_w = shapes[g["name"]]
        assert (torch_h, torch_w, torch_c) == tf_shape == tuple(g["out"])


def test_conv1_values_equal_tensorflow_same_padding():
    """Shapes alone miss a pad on the wrong side: TF puts the odd extra row/column bottom/right."""
    tf = pytest.importorskip("tensorflow")
    model = create("ds-cnn-s").eval()
    x = torch.randn(1, 49, 10)
    with torch.no_grad():
        ours = model.conv1(model.conv1_pad(x.unsqueeze(1)))[0].permute(1, 2, 0).numpy()
    layer = tf.keras.layers.Conv2D(64, (10, 4), strides=(2, 2), padding="same", use_bias=False)
    layer.build((1, 49, 10, 1))
    layer.set_weights([model.conv1.weight.detach().permute(2, 3, 1, 0).numpy()])  # OIHW -> HWIO
    theirs = layer(x.numpy()[..., None]).numpy()[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-5)
