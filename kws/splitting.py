"""Splitting steepest descent for a DS-CNN: the exact splitting matrices and their eigenvectors.

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
chunked over output channels so the memory stays ~C*D^2 per layer. Applying a plan (split()) lives in
kws.split_apply and is re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from kws.errors import KwsError
from kws.models import DSCNN
from kws.split_apply import split as split  # re-exported: `splitting.split` keeps working

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


# What `kws grow` should use: on ds-cnn-s it chose 94% of the units the exact float64 pass over all 3,220 train
# clips chose, at ~2 plain training epochs of wall time (512 clips: 85% at ~0.5 epoch; bench/splitting_cost.py).
FAST = SplitPassConfig(clips=1024, batch_size=128, position_stride=4, dtype="float32")
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


def _gather_patches(
    xp: torch.Tensor, kernel: tuple[int, int], stride: tuple[int, int], rows: torch.Tensor | None
) -> torch.Tensor:
    """im2col rows of an already padded map (N, C, H, W): (R, K, C) for the kept (clip, position) rows.

    rows index n * Q + q over output positions q (None: all); taps k in weight order (kh major). A gather of only
    the kept rows, much cheaper than F.unfold on CPU when positions are subsampled.
    """
    n, ch, h, w = xp.shape
    qh, qw = (h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1
    dev = xp.device
    base = (torch.arange(qh, device=dev) * stride[0] * w)[:, None] + torch.arange(qw, device=dev) * stride[1]
    offset = (torch.arange(kernel[0], device=dev) * w)[:, None] + torch.arange(kernel[1], device=dev)
    index = base.reshape(-1, 1) + offset.reshape(1, -1)  # (Q, K) flat positions in the padded map
    if rows is None:
        rows = torch.arange(n * qh * qw, device=dev)
    flat = xp.flatten(2).transpose(1, 2).contiguous()  # (N, H*W, C)
    return flat[(rows // (qh * qw))[:, None], index[rows % (qh * qw)]]


def _own_packed(xr: torch.Tensor, w: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """sum_r w[r, c] x_r x_r^T, upper triangles packed (C, T): shared outer products, then ONE GEMM per row chunk.

    xr (R, D) is the same for every channel, so the R outer products (R, D(D+1)/2) are formed once and the
    channel weights applied by a (C x R) @ (R x T) product: C*R*D^2 flops, no (R, C, D) intermediate.
    """
    r, t = xr.shape[0], upper.shape[1]
    out = torch.zeros(w.shape[1], t, dtype=xr.dtype, device=xr.device)
    step = max(1, _CHUNK_ELEMS // max(1, t))
    for lo in range(0, r, step):
        x = xr[lo : lo + step]
        out += w[lo : lo + step].T @ (x[:, upper[0]] * x[:, upper[1]])
    return out


def _dw_gram(a: torch.Tensor, xu: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_r w[r, c] J_rc J_rc^T with J_rc = sum_k a[r, c, k] xu[r, k]: a (R, Cc, K), xu (R, K, D) -> (Cc, D, D)."""
    j = torch.bmm(a, xu).transpose(0, 1).contiguous()  # (Cc, R, D): the pushed patches J_q of SPLITTING.md
    return (j * w.T.unsqueeze(2)).transpose(1, 2) @ j


def _layer_rows(u: _Unit, store: dict, grads: dict, cfg: dict, gen: torch.Generator) -> dict:
    """This batch's rows of one layer: patches and S_own weights, and (exact mode) the S_dw factors."""
    dt, act = cfg["dtype"], cfg["activation"]
    z = store[f"{u.name}.z"].detach().to(dt)  # (N, C, H, W)
    n, c_out, hh, ww = z.shape
    x = store[f"{u.name}.x"].detach().to(dt)  # the conv's (padded) input
    if u.conv.kernel_size != (1, 1):
        xr = _gather_patches(x, u.conv.kernel_size, u.conv.stride, None).flatten(1)  # (N*P, D), one input channel
    else:
        xr = x.flatten(2).transpose(1, 2).reshape(n * hh * ww, -1)
    c = bn_scale(u.bn).detach().to(dt)
    d1, d2 = activation_derivatives(act, z, cfg["beta"])
    g = grads[f"{u.name}.h"].detach().to(dt)
    w_own = (g * d2 * (c * c)[:, None, None]).flatten(2).transpose(1, 2).reshape(-1, c_out)  # (rows (n, p), C)
    rows = _rows(n * hh * ww, cfg["stride"], gen, x.device)
    out = dict(xr=xr, w_own=w_own, scale_own=1.0)
    if rows is not None:
        out.update(xr=xr[rows], w_own=w_own[rows], scale_own=n * hh * ww / rows.numel())
    if cfg["mode"] != "exact" or u.dw is None:
        return out
    # J_q = c_d sum_k dw[k] m_{q+k} x_{q+k} with m = a'(z) c: the kept rows of the coefficient map and of the
    # patch map are gathered with the depthwise geometry, so J is a batched (K x D) matrix product per row.
    kernel, stride = u.dw.kernel_size, u.dw.stride
    x_map = xr.reshape(n, hh, ww, -1).permute(0, 3, 1, 2)
    dw_w = u.dw.weight.detach().to(dt).flatten(1) * bn_scale(u.dw_bn).detach().to(dt)[:, None]  # (C, K)
    zd = store[f"{u.name}.zd"].detach().to(dt)
    w_dw = (grads[f"{u.name}.u"].detach().to(dt) * activation_derivatives(act, zd, cfg["beta"])[1]).flatten(2)
    q = w_dw.shape[2]
    rows = _rows(n * q, cfg["stride"], gen, x.device)
    a = _gather_patches(u.dw_pad(d1 * c[:, None, None]), kernel, stride, rows)  # (R', K, C)
    out["a"] = a.transpose(1, 2) * dw_w  # (R', C, K)
    out["xu"] = _gather_patches(u.dw_pad(x_map), kernel, stride, rows)  # (R', K, D)
    w_dw = w_dw.transpose(1, 2).reshape(n * q, c_out)
    out["w_dw"] = w_dw if rows is None else w_dw[rows]  # (R', C)
    out["scale_dw"] = 1.0 if rows is None else n * q / rows.numel()
    return out


def _accumulate_unit(u: _Unit, store: dict, grads: dict, acc: dict, cfg: dict, gen: torch.Generator) -> None:
    """Add this batch's S_own (packed, acc[name + "#own"]) and S_dw (acc[name], chunked over channels) of a layer."""
    r = _layer_rows(u, store, grads, cfg, gen)
    xr, c_out = r["xr"], r["w_own"].shape[1]
    upper = cfg["upper"][u.name]
    acc[u.name + "#own"] += _own_packed(xr, r["w_own"], upper) * r["scale_own"]
    if "a" not in r:
        return
    width = max(1, _CHUNK_ELEMS // max(1, 3 * r["xu"].shape[0] * xr.shape[1]))
    for lo in range(0, c_out, width):
        hi = min(c_out, lo + width)
        acc[u.name][lo:hi] += _dw_gram(r["a"][:, lo:hi], r["xu"], r["w_dw"][:, lo:hi]) * r["scale_dw"]


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
    acc, upper = {}, {}
    for u in units:
        c_out, d = u.conv.out_channels, _fan_in(u.conv)
        upper[u.name] = torch.triu_indices(d, d, device=param.device)
        acc[u.name] = torch.zeros(c_out, d, d, dtype=dt, device=param.device)
        acc[u.name + "#own"] = torch.zeros(c_out, upper[u.name].shape[1], dtype=dt, device=param.device)
    cfg = dict(
        dtype=dt,
        activation=model.spec.activation,
        beta=float(surrogate_beta),
        stride=position_stride,
        mode=mode,
        upper=upper,
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
    return _finish(acc, upper, count)


def _fan_in(conv: nn.Conv2d) -> int:
    return conv.in_channels // conv.groups * conv.kernel_size[0] * conv.kernel_size[1]


def _finish(acc: dict[str, torch.Tensor], upper: dict[str, torch.Tensor], count: int) -> dict[str, torch.Tensor]:
    """All-reduce across ranks when distributed, unpack S_own, add S_dw, divide by the clip count, symmetrise."""
    total = torch.tensor(float(count), dtype=torch.float64)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        for s in acc.values():
            torch.distributed.all_reduce(s)
        total = total.to(next(iter(acc.values())).device)
        torch.distributed.all_reduce(total)
    if total.item() == 0:
        raise KwsError("splitting: no clips in the batches given to splitting_matrices")
    out = {}
    for name, (i, j) in upper.items():
        s = acc[name].clone()
        own = acc[name + "#own"]
        s[:, i, j] += own
        s[:, j, i] += own * (i != j)  # the diagonal once
        out[name] = (s + s.transpose(1, 2)) / (2 * total.item())
    return out


def pass_batches(features, labels, cfg: SplitPassConfig = FAST) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The fixed, class-stratified subset of cfg.clips clips (kws.data.stratified_subset), in cfg.batch_size batches."""
    from kws.data import stratified_subset

    x, y = torch.as_tensor(features), torch.as_tensor(labels)
    if cfg.clips is not None and cfg.clips < len(y):
        idx = torch.from_numpy(stratified_subset(y.numpy(), cfg.clips, seed=cfg.seed))
        x, y = x[idx], y[idx]
    return [(x[i : i + cfg.batch_size], y[i : i + cfg.batch_size]) for i in range(0, len(y), cfg.batch_size)]


def min_eigen(mats: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (lambda_min (C,), v_min (C, D))} by a batched float64 eigh; v has unit norm."""
    out = {}
    for name, s in mats.items():
        vals, vecs = torch.linalg.eigh(s.detach().to(torch.float64))
        out[name] = (vals[:, 0], vecs[:, :, 0])
    return out


__all__ = ["EXACT", "FAST", "SplitPassConfig", "min_eigen", "pass_batches", "split", "splitting_matrices"]
