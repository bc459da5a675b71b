"""Cost model (kws/cost.py) against independent counts.

Covers: the Hello Edge preset figures measured from the TFLite graphs (docs/device.md), trainable parameters
equal to sum(p.numel()) of the built torch module, and per-layer MACs counted by forward hooks on that module
(output elements times the fan-in of one output element). Run: `.venv/bin/pytest tests/test_cost.py -q`.
"""

from __future__ import annotations

import pytest
import torch

from kws.cost import cost
from kws.models import PRESETS, create

# (deployed params with BN folded, MACs, peak int8 activation bytes in+out), read from the TFLite graphs.
HELLO_EDGE = {
    "ds-cnn-s": (22_604, 2_656_768, 16_000),
    "ds-cnn-m": (135_032, 9_816_384, 54_180),
    "ds-cnn-l": (410_700, 28_327_812, 86_940),
}


@pytest.mark.parametrize("name", sorted(HELLO_EDGE))
def test_preset_matches_tflite_graph_counts(name):
    params, macs, peak = HELLO_EDGE[name]
    c = cost(name)
    assert c.params_deployed == params
    assert c.macs == macs
    assert c.peak_activation_bytes == peak


@pytest.mark.parametrize("arch", [*PRESETS, "ds-cnn-s*0.37", "seed-l@7"])
def test_trainable_params_equal_module_numel(arch):
    model = create(arch)
    assert cost(arch).params_trainable == sum(p.numel() for p in model.parameters())


def _hook_macs(model: torch.nn.Module) -> dict[str, int]:
    """MACs per Conv2d/Linear from a real forward pass: output numel * (in_channels / groups) * kernel area."""
    counts: dict[str, int] = {}

    def hook(name):
        def fn(module, inputs, output):
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            else:
                fan_in = module.in_features
            counts[name] = output[0].numel() * fan_in  # batch of one: drop the batch dimension

        return fn

    handles = [
        m.register_forward_hook(hook(n))
        for n, m in model.named_modules()
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))
    ]
    with torch.no_grad():
        model.eval()(torch.zeros(1, *model.spec.input_shape))
    for h in handles:
        h.remove()
    return counts


@pytest.mark.parametrize("arch", ["ds-cnn-s", "ds-cnn-m", "seed-l*1.3"])
def test_per_layer_macs_equal_forward_hook_counts(arch):
    hooked = _hook_macs(create(arch))
    modelled = {layer.name: layer.macs for layer in cost(arch).per_layer if layer.macs}
    assert modelled == hooked


def test_classes_change_only_the_classifier():
    base, more = cost("ds-cnn-s"), cost("ds-cnn-s", num_classes=35)
    assert more.params_deployed - base.params_deployed == 64 * 23 + 23
    assert more.macs - base.macs == 64 * 23


@pytest.mark.parametrize(
    "arch, needle",
    [
        ("ds-cnn-s*0", "multiplier 0"),
        ("ds-cnn-s*0.001", "at least 0.01562"),
        ("ds-cnn-s*-1", "multiplier -1"),
        ("ds-cnn-s*inf", "multiplier inf"),
        ("ds-cnn-s*nan", "multiplier nan"),
        ("ds-cnn-s@0", "width 0 must be >= 1"),
        ("ds-cnn-s*x", "not a number"),
    ],
)
def test_a_width_below_one_channel_is_refused_by_name(arch, needle, capsys):
    """`kws cost --arch 'ds-cnn-s*0'` used to cost a silent width-1 network (issue 19 item 12)."""
    from kws.cli import main

    assert main(["cost", "--arch", arch]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("kws cost: error: --arch") and arch in err and needle in err and "\n" not in err


def test_the_smallest_multiplier_allowed_gives_one_channel():
    from kws.models import resolve_arch

    assert resolve_arch("ds-cnn-s*0.01").unit_widths == (1,) * 5  # 64 x 0.01 = 0.64 rounds to 1: allowed
    assert resolve_arch("seed@1").unit_widths == (1,) * 5


def test_arch_json_path_of_the_wrong_kind_says_so(tmp_path, capsys):
    from kws.cli import main

    (tmp_path / "spec.json").mkdir()
    assert main(["cost", "--arch", str(tmp_path / "spec.json")]) == 2
    assert "is a folder, expected a spec JSON file" in capsys.readouterr().err
