"""DS-CNN model family: a small serializable ArchSpec, the Hello Edge presets, and create().

A DS-CNN (Zhang et al. 2017, "Hello Edge", arXiv 1711.07128) is a full first convolution followed by
depthwise-separable blocks (depthwise 3x3 + BN + act, pointwise 1x1 + BN + act), global average pooling and a
linear classifier. Every convolution uses TensorFlow's SAME padding, which is asymmetric for even totals (the
extra row/column goes bottom/right); we pad explicitly so that the Keras/TFLite rebuild is exact.

Widths are per layer and may be non-uniform: growing changes them one unit at a time. The depthwise layer of
block i has the width of its input (conv1 for block 0, block i-1's pointwise otherwise).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from kws.errors import KwsError

ACTIVATIONS = ("relu", "silu", "hardswish")


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """TensorFlow SAME padding along one axis: (output size, pad before, pad after)."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


@dataclass(frozen=True, kw_only=True)
class ArchSpec:
    """A DS-CNN, described by its widths and geometry. Serializable with to_dict()/from_dict()."""

    conv1_width: int
    widths: tuple[int, ...]  # pointwise output width of each depthwise-separable block
    strides: tuple[tuple[int, int], ...]  # depthwise stride (time, freq) of each block
    conv1_kernel: tuple[int, int] = (10, 4)
    conv1_stride: tuple[int, int] = (2, 2)
    dw_kernel: tuple[int, int] = (3, 3)
    input_shape: tuple[int, int] = (49, 10)  # (frames, MFCC coefficients)
    activation: str = "relu"
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if len(self.widths) != len(self.strides):
            raise KwsError(f"arch spec: {len(self.widths)} block widths but {len(self.strides)} strides")
        if self.conv1_width < 1 or any(w < 1 for w in self.widths):
            raise KwsError("arch spec: every width must be >= 1")
        if self.activation not in ACTIVATIONS:
            raise KwsError(f"arch spec: activation {self.activation!r} is not one of {ACTIVATIONS}")

    @property
    def num_blocks(self) -> int:
        return len(self.widths)

    @property
    def unit_widths(self) -> tuple[int, ...]:
        """Widths of the splitting layers in order: conv1, then each block's pointwise."""
        return (self.conv1_width, *self.widths)

    @property
    def unit_layer_names(self) -> tuple[str, ...]:
        """Module names of the splitting layers, matching unit_widths."""
        return ("conv1", *(f"blocks.{i}.pw" for i in range(self.num_blocks)))

    def with_unit_widths(self, widths: tuple[int, ...] | list[int]) -> ArchSpec:
        """The same geometry with new widths for (conv1, block pointwise...)."""
        widths = tuple(int(w) for w in widths)
        return replace(self, conv1_width=widths[0], widths=widths[1:])

    def scaled(self, mult: float) -> ArchSpec:
        """Every width multiplied by mult (rounded, at least 1): uniformly scaled variants."""
        return self.with_unit_widths([max(1, round(w * mult)) for w in self.unit_widths])

    def uniform(self, width: int) -> ArchSpec:
        """The same geometry with every layer `width` channels wide."""
        return self.with_unit_widths([width] * len(self.unit_widths))

    def geometry(self) -> list[dict]:
        """Per conv layer: name, input and output (h, w, c), kernel, stride, padding (top, bottom, left, right)."""
        h, w = self.input_shape
        layers = []
        oh, pt, pb = same_padding(h, self.conv1_kernel[0], self.conv1_stride[0])
        ow, pl, pr = same_padding(w, self.conv1_kernel[1], self.conv1_stride[1])
        layers.append(
            dict(
                name="conv1",
                kind="conv",
                inp=(h, w, 1),
                out=(oh, ow, self.conv1_width),
                kernel=self.conv1_kernel,
                stride=self.conv1_stride,
                padding=(pt, pb, pl, pr),
            )
        )
        h, w, c = oh, ow, self.conv1_width
        for i, (width, stride) in enumerate(zip(self.widths, self.strides, strict=True)):
            oh, pt, pb = same_padding(h, self.dw_kernel[0], stride[0])
            ow, pl, pr = same_padding(w, self.dw_kernel[1], stride[1])
            layers.append(
                dict(
                    name=f"blocks.{i}.dw",
                    kind="depthwise",
                    inp=(h, w, c),
                    out=(oh, ow, c),
                    kernel=self.dw_kernel,
                    stride=tuple(stride),
                    padding=(pt, pb, pl, pr),
                )
            )
            layers.append(
                dict(
                    name=f"blocks.{i}.pw",
                    kind="pointwise",
                    inp=(oh, ow, c),
                    out=(oh, ow, width),
                    kernel=(1, 1),
                    stride=(1, 1),
                    padding=(0, 0, 0, 0),
                )
            )
            h, w, c = oh, ow, width
        return layers

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"] = list(self.widths)
        d["strides"] = [list(s) for s in self.strides]
        for k in ("conv1_kernel", "conv1_stride", "dw_kernel", "input_shape"):
            d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ArchSpec:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise KwsError(f"arch spec: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
        kw = dict(d)
        kw["widths"] = tuple(int(x) for x in kw["widths"])
        kw["strides"] = tuple(tuple(int(v) for v in s) for s in kw["strides"])
        for k in ("conv1_kernel", "conv1_stride", "dw_kernel", "input_shape"):
            if k in kw:
                kw[k] = tuple(int(v) for v in kw[k])
        return cls(**kw)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def _preset(width: int, conv1_stride: tuple[int, int], strides: list[tuple[int, int]]) -> ArchSpec:
    return ArchSpec(
        conv1_width=width, widths=(width,) * len(strides), strides=tuple(strides), conv1_stride=conv1_stride
    )


# Hello Edge presets (docs/device.md): counts asserted in tests/test_cost.py.
PRESETS: dict[str, ArchSpec] = {
    "ds-cnn-s": _preset(64, (2, 2), [(1, 1)] * 4),
    "ds-cnn-m": _preset(172, (2, 1), [(2, 2)] + [(1, 1)] * 3),
    "ds-cnn-l": _preset(276, (2, 1), [(2, 2)] + [(1, 1)] * 4),
    # Seeds for growing: the small and large geometries at a narrow width.
    "seed": _preset(16, (2, 2), [(1, 1)] * 4),
    "seed-l": _preset(16, (2, 1), [(2, 2)] + [(1, 1)] * 4),
}


def resolve_arch(name_or_spec: str | dict | ArchSpec) -> ArchSpec:
    """An ArchSpec from a preset name, a JSON string, a path to a JSON file, a dict or a spec.

    A preset name may carry a width multiplier (``ds-cnn-s*1.5``) or a uniform width (``ds-cnn-s@100``).
    """
    if isinstance(name_or_spec, ArchSpec):
        return name_or_spec
    if isinstance(name_or_spec, dict):
        return ArchSpec.from_dict(name_or_spec)
    text = str(name_or_spec).strip()
    if text.startswith("{"):
        try:
            return ArchSpec.from_dict(json.loads(text))
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise KwsError(f"--arch: not a valid arch spec JSON ({e})") from None
    if text.endswith(".json"):
        path = Path(text)
        if not path.is_file():
            what = "is a folder, expected a spec JSON file" if path.is_dir() else "does not exist"
            raise KwsError(f"--arch: {path} {what}; give a preset ({', '.join(PRESETS)}) or a spec JSON")
        try:
            d = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise KwsError(f"--arch: {path} is not valid JSON ({e})") from None
        return ArchSpec.from_dict(d.get("arch", d))
    for sep in ("*", "@"):
        if sep in text:
            base, _, arg = text.partition(sep)
            return _resized(resolve_arch(base), sep, arg, text)
    if text not in PRESETS:
        raise KwsError(f"--arch: unknown preset {text!r}; choose one of {', '.join(PRESETS)} or give a spec JSON")
    return PRESETS[text]


def _resized(spec: ArchSpec, sep: str, arg: str, text: str) -> ArchSpec:
    """`base*mult` or `base@width`, refused (not clamped to 1) when a layer would be less than 1 channel wide."""
    try:
        value = float(arg) if sep == "*" else int(arg)
    except ValueError:
        raise KwsError(f"--arch: {arg!r} in {text!r} is not a number") from None
    if sep == "@":
        if value < 1:
            raise KwsError(f"--arch {text!r}: width {value} must be >= 1 channel")
        return spec.uniform(value)
    narrowest = min(spec.unit_widths)
    if not math.isfinite(value) or value <= 0 or round(narrowest * value) < 1:
        raise KwsError(
            f"--arch {text!r}: multiplier {arg} makes the {narrowest}-channel layers {narrowest} x {arg} < 1 channel "
            f"wide; use a multiplier of at least {1 / narrowest:.4g}"
        )
    return spec.scaled(value)


def _activation(name: str) -> nn.Module:
    return {"relu": nn.ReLU, "silu": nn.SiLU, "hardswish": nn.Hardswish}[name]()


class DSBlock(nn.Module):
    """Depthwise 3x3 (+BN+act) then pointwise 1x1 (+BN+act). Convolutions carry no bias: BN follows."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel: tuple[int, int],
        stride: tuple[int, int],
        padding: tuple[int, int, int, int],
        activation: str,
    ):
        super().__init__()
        top, bottom, left, right = padding
        self.pad = nn.ZeroPad2d((left, right, top, bottom))
        self.dw = nn.Conv2d(c_in, c_in, kernel, stride=stride, groups=c_in, bias=False)
        self.dw_bn = nn.BatchNorm2d(c_in)
        self.dw_act = _activation(activation)
        self.pw = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.pw_bn = nn.BatchNorm2d(c_out)
        self.pw_act = _activation(activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.dw_act(self.dw_bn(self.dw(self.pad(x))))
        return self.pw_act(self.pw_bn(self.pw(x)))


class DSCNN(nn.Module):
    """A DS-CNN built from an ArchSpec. Input (N, frames, coeffs) or (N, 1, frames, coeffs); output logits."""

    def __init__(self, spec: ArchSpec, num_classes: int = 12):
        super().__init__()
        self.spec = spec
        self.num_classes = num_classes
        geo = spec.geometry()
        top, bottom, left, right = geo[0]["padding"]
        self.conv1_pad = nn.ZeroPad2d((left, right, top, bottom))
        self.conv1 = nn.Conv2d(1, spec.conv1_width, spec.conv1_kernel, stride=spec.conv1_stride, bias=False)
        self.conv1_bn = nn.BatchNorm2d(spec.conv1_width)
        self.conv1_act = _activation(spec.activation)
        self.blocks = nn.ModuleList()
        for i in range(spec.num_blocks):
            dw = geo[1 + 2 * i]
            self.blocks.append(
                DSBlock(dw["inp"][2], spec.widths[i], dw["kernel"], dw["stride"], dw["padding"], spec.activation)
            )
        self.dropout = nn.Dropout(spec.dropout)
        self.classifier = nn.Linear(spec.unit_widths[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last block's activation map (N, C, H, W)."""
        if x.dim() == 3:
            x = x.unsqueeze(1)
        x = self.conv1_act(self.conv1_bn(self.conv1(self.conv1_pad(x))))
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        return self.classifier(self.dropout(x))


def create(
    name_or_spec: str | dict | ArchSpec,
    num_classes: int = 12,
    activation: str | None = None,
    dropout: float | None = None,
) -> DSCNN:
    """Build a DS-CNN from a preset name or spec; activation/dropout override the spec's when given."""
    spec = resolve_arch(name_or_spec)
    if activation is not None:
        spec = replace(spec, activation=activation)
    if dropout is not None:
        spec = replace(spec, dropout=dropout)
    return DSCNN(spec, num_classes=num_classes)


__all__ = ["ArchSpec", "DSCNN", "DSBlock", "PRESETS", "create", "resolve_arch", "same_padding"]


def untrained(arch, activation: str | None = None, seed: int = 0) -> nn.Module:
    """An untrained DS-CNN in eval mode whose BatchNorm statistics are far from identity (means in [-0.5, 0.5),
    variances in [0.5, 1.5)): what speed and bit-exactness checks run, since a wrong BN fold or quantization then
    shows and speed does not depend on the weights. Seeded, so deterministic."""
    torch.manual_seed(seed)
    model = create(arch, activation=activation)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) - 0.5)
            m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()
