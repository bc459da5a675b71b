"""Splitting steepest descent for a DS-CNN: the exact splitting matrices, their eigenvectors, and split().

Liu, Wu, Wang, "Splitting Steepest Descent for Growing Neural Architectures" (NeurIPS 2019). A unit (one output
channel of conv1 or of a block's pointwise conv) computes h = a(z), z = c * (theta . x_p) + b with c the frozen
BN scale. Splitting theta into theta +/- eps*v, each copy carrying half of the outgoing weight, changes the mean
loss by (eps^2 / 2) v^T S v + O(eps^3) with (docs/SPLITTING.md)

    S = S_own + S_dw
    S_own = E[ sum_p g_p a''(z_p) c^2 x_p x_p^T ]
    S_dw  = E[ sum_q gu_q a''(zd_q) J_q J_q^T ],   J_q = c_d sum_p dw[q - p] a'(z_p) c x_p

where g = dL/dh, u = a(zd) is the unit's (copied) depthwise channel and gu = dL/du. S_dw exists because the
depthwise filter is copied, not halved: the copy's output is a nonlinear function of theta. A unit that feeds the
average pool and classifier (the last pointwise layer) has S_dw = 0.

The matrices are accumulated for all layers in ONE pass over the data (one forward + one backward per batch),
chunked over output channels so the memory stays ~C*D^2 per layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kws.errors import KwsError
from kws.models import DSCNN

MODES = ("exact", "own")
# Elements of the largest per-chunk intermediate (rows x channels x fan-in); 2^24 floats = 64 MiB in float32.
_CHUNK_ELEMS = 1 << 24


@dataclass(frozen=True, kw_only=True)
class SplitPassConfig:
    """How to compute the splitting matrices: a speed/accuracy preset (see FAST, EXACT and bench/splitting_cost.py).

    clips: size of the fixed class-stratified subset of training clips (None: all of them).
    position_stride: keep 1 in this many (clip, position) rows of every layer, at random (unbiased, rescaled).
    dtype: accumulation dtype ("float32" or "float64"; None: the model's). The eigen-decomposition is float64.
    """

    clips: int | None = 1024
    batch_size: int = 128
    position_stride: int = 1
    dtype: str | None = None
    mode: str = "exact"
    surrogate_beta: float = 3.0
    seed: int = 0

    def matrix_kwargs(self) -> dict:
        """Keyword arguments for splitting_matrices()."""
        return dict(
            mode=self.mode,
            surrogate_beta=self.surrogate_beta,
            position_stride=self.position_stride,
            dtype=None if self.dtype is None else getattr(torch, self.dtype),
            seed=self.seed,
        )


# Measured by bench/splitting_cost.py (numbers in its docstring): what `kws grow` uses.
FAST = SplitPassConfig(clips=512, batch_size=128, position_stride=4, dtype="float32")
# The reference: every clip, every position, float64.
EXACT = SplitPassConfig(clips=None, batch_size=128, position_stride=1, dtype="float64")


def activation_derivatives(name: str, z: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(a'(z), a''(z)). SiLU is exact; ReLU's a'' is softplus(beta)'s, beta*s*(1-s) with s = sigmoid(beta*z).

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
    raise KwsError(f"splitting: activation {name!r} has no derivative rule; use relu or silu")


def bn_scale(bn: nn.BatchNorm2d) -> torch.Tensor:
    """Eval-mode BatchNorm scale c = gamma / sqrt(running_var + eps)."""
    return bn.weight / torch.sqrt(bn.running_var + bn.eps)


@dataclass(frozen=True)
class _Unit:
    """One splitting layer and the depthwise layer its channels feed (None for the last pointwise)."""

    name: str
    conv: nn.Conv2d
    bn: nn.BatchNorm2d
    act: nn.Module
    dw: nn.Conv2d | None
    dw_pad: nn.ZeroPad2d | None
    dw_bn: nn.BatchNorm2d | None
    dw_act: nn.Module | None


def _units(model: DSCNN) -> list[_Unit]:
    blocks = list(model.blocks)
    nxt = [blocks[0] if blocks else None] + blocks[1:] + [None]
    convs = [(model.conv1, model.conv1_bn, model.conv1_act)] + [(b.pw, b.pw_bn, b.pw_act) for b in blocks]
    out = []
    for name, (conv, bn, act), b in zip(model.spec.unit_layer_names, convs, nxt, strict=True):
        out.append(_Unit(name, conv, bn, act, *((b.dw, b.pad, b.dw_bn, b.dw_act) if b is not None else (None,) * 4)))
    return out


def _capture(model: DSCNN, units: list[_Unit], need_dw: bool) -> tuple[dict, list]:
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


def _rows(n_rows: int, stride: int, generator: torch.Generator, device: torch.device) -> torch.Tensor | None:
    """A random 1-in-`stride` subset of row indices (None: all rows)."""
    if stride <= 1:
        return None
    keep = max(1, n_rows // stride)
    return torch.randperm(n_rows, generator=generator)[:keep].to(device)


def _weighted_gram(a: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_r w[c, r] a[c, r] a[c, r]^T for every channel c: a (c, R, D) or shared (R, D), w (c, R) -> (c, D, D)."""
    return (a * w.unsqueeze(-1)).transpose(-1, -2) @ a


def _accumulate_unit(u: _Unit, store: dict, grads: dict, acc: dict, cfg: dict, gen: torch.Generator) -> None:
    """Add this batch's contribution of one layer to acc[u.name] (C, D, D), chunked over output channels."""
    dt, act = cfg["dtype"], cfg["activation"]
    x = store[f"{u.name}.x"].detach().to(dt)
    if u.conv.kernel_size != (1, 1) or u.conv.stride != (1, 1):
        x = F.unfold(x, u.conv.kernel_size, stride=u.conv.stride)  # (N, D, P) im2col patches
    else:
        x = x.flatten(2)
    z = store[f"{u.name}.z"].detach().to(dt)
    n, c_out, hh, ww = z.shape
    g = grads[f"{u.name}.h"].detach().to(dt).flatten(2)
    c = bn_scale(u.bn).detach().to(dt)
    d1, d2 = activation_derivatives(act, z.flatten(2), cfg["beta"])
    d_in = x.shape[1]
    xr = x.transpose(1, 2).reshape(-1, d_in)  # rows (n, p), shared by every channel
    w_own = (g * d2 * (c * c)[None, :, None]).transpose(1, 2).reshape(-1, c_out)  # (rows, C)
    rows = _rows(xr.shape[0], cfg["stride"], gen, xr.device)
    scale_own = 1.0 if rows is None else xr.shape[0] / rows.numel()
    if rows is not None:
        xr, w_own = xr[rows], w_own[rows]
    with_dw = cfg["mode"] == "exact" and u.dw is not None
    if with_dw:
        zd = store[f"{u.name}.zd"].detach().to(dt)
        gu = grads[f"{u.name}.u"].detach().to(dt)
        _, d2d = activation_derivatives(act, zd, cfg["beta"])
        w_dw = (gu * d2d).flatten(2)  # (N, C, Q)
        m = (d1 * c[None, :, None]).reshape(n, c_out, hh, ww)  # a'(z) c: the linearised activation
        c_d = bn_scale(u.dw_bn).detach().to(dt)
        dw_w = u.dw.weight.detach().to(dt)
        q_rows = _rows(n * w_dw.shape[2], cfg["stride"], gen, xr.device)
        scale_dw = 1.0 if q_rows is None else n * w_dw.shape[2] / q_rows.numel()
    x_map = x.reshape(n, d_in, hh, ww) if with_dw else None
    width = max(1, _CHUNK_ELEMS // max(1, xr.shape[0] * d_in * (2 if with_dw else 1)))
    for lo in range(0, c_out, width):
        hi = min(c_out, lo + width)
        s = _weighted_gram(xr, w_own[:, lo:hi].T) * scale_own
        if with_dw:
            j = _pushed_patches(x_map, m[:, lo:hi], dw_w[lo:hi], u.dw, u.dw_pad, c_d[lo:hi])  # (Cc, N*Q, D)
            wq = w_dw[:, lo:hi].transpose(0, 1).reshape(hi - lo, -1)
            if q_rows is not None:
                j, wq = j[:, q_rows], wq[:, q_rows]
            s = s + _weighted_gram(j, wq) * scale_dw
        acc[u.name][lo:hi] += s


def _pushed_patches(
    x_map: torch.Tensor, m: torch.Tensor, dw_w: torch.Tensor, dw: nn.Conv2d, pad: nn.ZeroPad2d, c_d: torch.Tensor
) -> torch.Tensor:
    """J_q = c_d * sum_p dw[q - p] a'(z_p) c x_p for a chunk of channels: (Cc, N*Q, D).

    The unit's input patch x_p, scaled by the linearised activation, goes through the depthwise conv of the
    same channel (same padding and stride), once per input coordinate d (a grouped conv over Cc*D maps).
    """
    n, d_in, hh, ww = x_map.shape
    cc = m.shape[1]
    y = (m.unsqueeze(2) * x_map.unsqueeze(1)).reshape(n, cc * d_in, hh, ww)  # (N, Cc*D, H, W)
    kernel = dw_w.repeat_interleave(d_in, dim=0)  # (Cc*D, 1, kh, kw)
    j = F.conv2d(pad(y), kernel, stride=dw.stride, groups=cc * d_in)  # (N, Cc*D, Qh, Qw)
    j = j.reshape(n, cc, d_in, -1) * c_d[None, :, None, None]
    return j.permute(1, 0, 3, 2).reshape(cc, -1, d_in)


def splitting_matrices(
    model: DSCNN,
    batches,
    *,
    mode: str = "exact",
    surrogate_beta: float = 3.0,
    position_stride: int = 1,
    dtype: torch.dtype | None = None,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """The splitting matrix of every unit: {layer name: (C, D, D)}, layer names as ArchSpec.unit_layer_names.

    One forward + backward per batch of `batches` (an iterable of (features (N, frames, coeffs), labels)) serves
    all layers; L is the mean cross-entropy over all clips, with BN and dropout in eval mode. mode "exact" gives
    S_own + S_dw, "own" only S_own (the authors' public code, for the ablation). Accumulated in `dtype` (default:
    the model's). position_stride > 1 keeps a random 1/stride of the (clip, position) rows, reweighted so the
    estimate stays unbiased. Under torch.distributed the sums are all-reduced so every rank decides the same.
    """
    if mode not in MODES:
        raise KwsError(f"splitting: mode {mode!r} is not one of {MODES} (use the random selector for random units)")
    if position_stride < 1:
        raise KwsError(f"splitting: position_stride must be >= 1, got {position_stride}")
    param = next(model.parameters())
    dt = dtype or param.dtype
    units = _units(model)
    acc = {
        u.name: torch.zeros(u.conv.out_channels, _fan_in(u.conv), _fan_in(u.conv), dtype=dt, device=param.device)
        for u in units
    }
    cfg = dict(
        dtype=dt, activation=model.spec.activation, beta=float(surrogate_beta), stride=position_stride, mode=mode
    )
    gen = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    store, handles = _capture(model, units, need_dw=mode == "exact")
    count = 0
    try:
        it = batches
        if progress:
            from tqdm import tqdm

            it = tqdm(batches, desc="splitting matrices", unit="batch", leave=False)
        for features, labels in it:
            features, labels = features.to(device=param.device, dtype=param.dtype), labels.to(param.device)
            store.clear()
            with torch.enable_grad():  # callers may hold torch.no_grad(); the pass needs dL/dh
                loss = F.cross_entropy(model(features), labels, reduction="sum")
            keys = [k for k in store if k.endswith(".h") or k.endswith(".u")]
            grads = dict(zip(keys, torch.autograd.grad(loss, [store[k] for k in keys]), strict=True))
            with torch.no_grad():
                for u in units:
                    _accumulate_unit(u, store, grads, acc, cfg, gen)
            count += len(labels)
    finally:
        for h in handles:
            h.remove()
        store.clear()
        model.train(was_training)
    return _finish(acc, count)


def _fan_in(conv: nn.Conv2d) -> int:
    return conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]


def _finish(acc: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    """All-reduce across ranks when distributed, divide by the clip count, symmetrise."""
    total = torch.tensor(float(count), dtype=torch.float64)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for s in acc.values():
            torch.distributed.all_reduce(s)
        total = total.to(next(iter(acc.values())).device)
        torch.distributed.all_reduce(total)
    if total.item() == 0:
        raise KwsError("splitting: no clips in the batches given to splitting_matrices")
    return {k: (s + s.transpose(1, 2)) / (2 * total.item()) for k, s in acc.items()}


def min_eigen(mats: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (lambda_min (C,), v_min (C, D))} by a batched float64 eigh; v has unit norm."""
    out = {}
    for name, s in mats.items():
        vals, vecs = torch.linalg.eigh(s.detach().to(torch.float64))
        out[name] = (vals[:, 0], vecs[:, :, 0])
    return out


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


_BN = ("weight", "bias", "running_mean", "running_var")


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


__all__ = [
    "EXACT",
    "FAST",
    "MODES",
    "SplitPassConfig",
    "activation_derivatives",
    "bn_scale",
    "min_eigen",
    "split",
    "splitting_matrices",
]
