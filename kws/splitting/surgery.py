"""split(): apply a splitting plan to a DS-CNN, giving a new, wider one (Liu, Wu, Wang, NeurIPS 2019).

Each planned unit's filter becomes theta + eps*v and an appended offspring theta - eps*v; both halve the unit's
outgoing weight, so eps = 0 leaves the function unchanged (docs/splitting.md). Which units and directions come
from kws.splitting.dense / .lanczos (the eigenvectors) and kws.splitting.selection (the plan). Depends only on
kws.models and kws.errors.
"""

from __future__ import annotations

import torch

from kws.errors import KwsError
from kws.models import DSCNN

_BN = ("weight", "bias", "running_mean", "running_var")  # the BatchNorm tensors that follow a channel


def _index_map(width: int, units: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(source index of every new channel, outgoing-weight factor): offspring appended at the end."""
    src = torch.tensor(list(range(width)) + units, dtype=torch.long)
    factor = torch.ones(width + len(units), dtype=torch.float64)
    if units:
        factor[torch.tensor(units)] = 0.5
        factor[width:] = 0.5
    return src, factor


def split(model: DSCNN, plan: dict[str, dict[int, torch.Tensor]], eps: float) -> DSCNN:
    """A new, wider DS-CNN in which every planned unit j of layer l is split along its direction v.

    Unit j keeps index j with filter theta + eps*v; its offspring is APPENDED at index C, C+1, ... (in increasing
    order of j) with theta - eps*v. Both keep the unit's BN; the depthwise channel it feeds and that channel's BN
    are copied; the next pointwise column (classifier column for the last block) is halved and duplicated.
    Directions of layer l+1 live in its old input space and are mapped with the same halve-and-duplicate rule
    as its weights, so several layers can split in one call. eps = 0 leaves the function unchanged.
    """
    spec = model.spec
    names = spec.unit_layer_names
    unknown = set(plan) - set(names)
    if unknown:
        raise KwsError(f"split: unknown layers {sorted(unknown)}; splitting layers are {list(names)}")
    old_state = model.state_dict()
    maps, widths = {}, []
    for name, width in zip(names, spec.unit_widths, strict=True):
        units = sorted(int(j) for j in plan.get(name, {}))
        if any(j < 0 or j >= width for j in units):
            raise KwsError(f"split: unit index out of range for {name} (width {width})")
        maps[name] = _index_map(width, units) + (units,)
        widths.append(width + len(units))
    new = DSCNN(spec.with_unit_widths(widths), num_classes=model.num_classes)
    new.to(dtype=next(model.parameters()).dtype, device=next(model.parameters()).device)
    state = {k: v.clone() for k, v in old_state.items()}
    for i, name in enumerate(names):
        src, _factor, units = maps[name]
        prev = maps[names[i - 1]] if i > 0 else None
        _split_layer(state, name, src, units, prev, plan.get(name, {}), eps)
        feeds = f"blocks.{i}" if i < spec.num_blocks else None
        for key in ([f"{feeds}.dw.weight"] + [f"{feeds}.dw_bn.{p}" for p in _BN]) if feeds else []:
            state[key] = state[key][src.to(state[key].device)]
    src, factor, _ = maps[names[-1]]
    w = state["classifier.weight"]
    state["classifier.weight"] = w[:, src.to(w.device)] * factor.to(w)
    new.load_state_dict(state)
    new.train(model.training)
    return new


def _split_layer(
    state: dict,
    name: str,
    src: torch.Tensor,
    units: list[int],
    prev: tuple | None,
    directions: dict[int, torch.Tensor],
    eps: float,
) -> None:
    """Rows of layer `name` (and its BN) mapped by `src`, its input columns by the previous layer's map, +/- eps*v."""
    key = f"{name}.weight"
    w = state[key]
    dev = w.device
    if prev is not None:  # a pointwise layer: its input columns follow the previous layer's split
        p_src, p_factor, _ = prev
        w = w[:, p_src.to(dev)] * p_factor.to(w)[None, :, None, None]
    w = w[src.to(dev)].clone()
    old_c = len(src) - len(units)
    for k, j in enumerate(units):
        v = torch.as_tensor(directions[j]).to(w).flatten()
        if prev is not None:
            v = v[p_src.to(dev)] * p_factor.to(w)
        if v.numel() != w[j].numel():
            raise KwsError(f"split: direction for {name}[{j}] has {v.numel()} entries, the filter {w[j].numel()}")
        w[j] += eps * v.reshape(w[j].shape)
        w[old_c + k] -= eps * v.reshape(w[j].shape)
    state[key] = w
    bn = name.replace("conv1", "conv1_bn") if name == "conv1" else name.replace(".pw", ".pw_bn")
    for p in _BN:
        state[f"{bn}.{p}"] = state[f"{bn}.{p}"][src.to(dev)]


__all__ = ["split"]
