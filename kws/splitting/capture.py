"""The capture both splitting solvers share: the splitting units of a DS-CNN, forward hooks that record their maps,
and one eval-mode forward + backward per pass batch (docs/splitting.md).

A unit (one output channel of conv1 or of a block's pointwise conv) computes h = a(z), z = c * (theta . x_p) + b
with c the frozen BN scale; its copied depthwise channel computes u = a(zd). captured_batches() yields, batch by
batch, the conv input x, z, h (and zd, u) of every unit with the gradients dL/dh and dL/du: kws.splitting.dense
forms S from them, kws.splitting.lanczos applies S to vectors without forming it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kws.errors import KwsError
from kws.models import DSCNN

MODES = ("exact", "own")


def activation_derivatives(name: str, z: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(a'(z), a''(z)). SiLU is exact; ReLU's a'' is softplus(beta)'s, beta*s*(1-s) with s = sigmoid(beta*z).

    Hard swish is exact almost everywhere: a'' = 1/3 on (-3, 3), 0 outside. Its a' also jumps by -1/2 at z = +-3
    (a delta in a'' that autograd and this rule both leave out); BN-normalised pre-activations rarely reach +-3.

    The surrogate integrates to 1: a smoothed delta at the kink, of width ~1/beta in BN-normalised units (the
    authors' MobileNet code uses beta = 3).
    """
    if name == "silu":
        s = torch.sigmoid(z)
        d1 = s * (1 + z * (1 - s))
        d2 = s * (1 - s) * (2 + z * (1 - 2 * s))
        return d1, d2
    if name == "relu":
        s = torch.sigmoid(beta * z)
        return (z > 0).to(z.dtype), beta * s * (1 - s)
    if name == "hardswish":  # z (z + 3) / 6 on (-3, 3): a'' = 1/3 there, 0 outside (autograd's a'' too)
        inside = ((z > -3) & (z < 3)).to(z.dtype)
        return inside * (2 * z + 3) / 6 + (z >= 3).to(z.dtype), inside / 3
    raise KwsError(f"splitting: activation {name!r} has no derivative rule; use relu, silu or hardswish")


def bn_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode BatchNorm scale c = gamma / sqrt(running_var + eps)."""
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


@dataclass(frozen=True)
class Unit:
    """One splitting layer and the depthwise layer its channels feed (None for the last pointwise)."""

    name: str
    conv: nn.Conv2d
    bn: nn.BatchNorm2d
    act: nn.Module
    dw: nn.Conv2d | None
    dw_pad: nn.ZeroPad2d | None
    dw_bn: nn.BatchNorm2d | None
    dw_act: nn.Module | None


def units_of(model: DSCNN) -> list[Unit]:
    blocks = list(model.blocks)
    nxt = [blocks[0] if blocks else None] + blocks[1:] + [None]
    convs = [(model.conv1, model.conv1_bn, model.conv1_act)] + [(b.pw, b.pw_bn, b.pw_act) for b in blocks]
    out = []
    for name, (conv, bn, act), b in zip(model.spec.unit_layer_names, convs, nxt, strict=True):
        out.append(Unit(name, conv, bn, act, *((b.dw, b.pad, b.dw_bn, b.dw_act) if b is not None else (None,) * 4)))
    return out


def capture_hooks(model: DSCNN, units: list[Unit], need_dw: bool) -> tuple[dict, list]:
    """Forward hooks that record each unit's conv input, BN output z, activation output h (and zd, u)."""
    store: dict[str, torch.Tensor] = {}
    handles = []

    def keep(key: str, use_input: bool = False):
        def hook(_module, inputs, output):
            store[key] = inputs[0] if use_input else output

        return hook

    for u in units:
        handles += [
            u.conv.register_forward_hook(keep(f"{u.name}.x", use_input=True)),
            u.bn.register_forward_hook(keep(f"{u.name}.z")),
            u.act.register_forward_hook(keep(f"{u.name}.h")),
        ]
        if need_dw and u.dw is not None:
            handles += [
                u.dw_bn.register_forward_hook(keep(f"{u.name}.zd")),
                u.dw_act.register_forward_hook(keep(f"{u.name}.u")),
            ]
    return store, handles


def captured_batches(model: DSCNN, units: list, batches, need_dw: bool, progress: bool = False, desc: str = ""):
    """Yield (captured maps, their gradients dL/dh and dL/du, clip count) batch by batch, under no_grad.

    One eval-mode forward + backward per batch of (features, labels[, 1/pi, count share]) with the capture hooks
    on; the hooks come off and the model's train/eval mode comes back when the iteration ends.
    """
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    store, handles = capture_hooks(model, units, need_dw=need_dw)
    try:
        it = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc=desc, unit="batch", leave=False)
        for features, labels, *extra in it:
            features, labels = features.to(device=param.device, dtype=param.dtype), labels.to(param.device)
            store.clear()
            with torch.enable_grad():  # callers may hold torch.no_grad(); the pass needs dL/dh
                loss, n = clip_loss(model, features, labels, extra)
            keys = [k for k in store if k.endswith(".h") or k.endswith(".u")]
            grads = dict(zip(keys, torch.autograd.grad(loss, [store[k] for k in keys]), strict=True))
            with torch.no_grad():
                yield store, grads, n
    finally:
        for h in handles:
            h.remove()
        store.clear()
        model.train(was_training)


def clip_loss(model: DSCNN, features, labels, extra: list) -> tuple[torch.Tensor, float]:
    """(summed cross-entropy, clip count) of one pass batch. Importance-drawn clips (pass_batches) carry extra =
    [1/pi per clip, the batch's share of the all-clip count]: the Horvitz-Thompson sum, so S stays unbiased."""
    loss = F.cross_entropy(model(features), labels, reduction="none")
    if not extra:
        return loss.sum(), float(len(labels))
    w, n = extra
    return (loss * w.to(device=loss.device, dtype=loss.dtype)).sum(), float(n)


def fan_in(conv: nn.Conv2d) -> int:
    return conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]


__all__ = [
    "MODES",
    "Unit",
    "activation_derivatives",
    "bn_scale",
    "capture_hooks",
    "captured_batches",
    "clip_loss",
    "fan_in",
    "units_of",
]
