"""Splitting steepest descent for a DS-CNN: the exact splitting matrices and their eigenvectors.

Liu, Wu, Wang, "Splitting Steepest Descent for Growing Neural Architectures" (NeurIPS 2019). A unit (one output
channel of conv1 or of a block's pointwise conv) computes h = a(z), z = c * (theta . x_p) + b with c the frozen
BN scale. Splitting theta into theta +/- eps*v, each copy carrying half of the outgoing weight, changes the mean
loss by (eps^2 / 2) v^T S v + O(eps^3) with (docs/splitting.md)

    S = S_own + S_dw
    S_own = E[ sum_p g_p a''(z_p) c^2 x_p x_p^T ]
    S_dw  = E[ sum_q gu_q a''(zd_q) J_q J_q^T ],   J_q = c_d sum_p dw[q - p] a'(z_p) c x_p

where g = dL/dh, u = a(zd) is the unit's (copied) depthwise channel and gu = dL/du. S_dw exists because the
depthwise filter is copied, not halved: the copy's output is a nonlinear function of theta. A unit that feeds the
average pool and classifier (the last pointwise layer) has S_dw = 0.

The matrices are accumulated for all layers in ONE pass over the data (one forward + one backward per batch),
chunked over output channels so the memory stays ~C*D^2 per layer. Both sums cost C*R*D^2 MACs per layer for R
(clip, position) rows, so the fast preset keeps few rows: a row r enters S_own as w_rc x_r x_r^T, and sampling
with inclusion probability ~ |w_r| |x_r|^2 (reweighted by 1/pi, kws.split_rows) keeps the rows that carry S, i.e.
the clips the network gets wrong and the positions near the activation's kink. Applying a plan (split()) lives in
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
from kws.split_presets import (  # re-exported: the presets keep their kws.splitting names
    CLIP_SAMPLINGS as CLIP_SAMPLINGS,
)
from kws.split_presets import (
    EXACT as EXACT,
)
from kws.split_presets import (
    FAST as FAST,
)
from kws.split_presets import (
    SOLVERS as SOLVERS,
)
from kws.split_presets import (
    WIDE as WIDE,
)
from kws.split_presets import (
    WIDE_MIN_FAN_IN as WIDE_MIN_FAN_IN,
)
from kws.split_presets import (
    SplitPassConfig,
    pass_batches,
    preset_for,
)
from kws.split_presets import (
    resolve_preset as resolve_preset,
)
from kws.split_rows import SAMPLINGS, gather_patches, rows_of, sample_rows

MODES = ("exact", "own")
# Elements of the largest per-chunk intermediate (rows x channels x fan-in); 2^24 floats = 64 MiB in float32.
_CHUNK_ELEMS = 1 << 24


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


def _own_gram(xr: torch.Tensor, w: torch.Tensor, out: torch.Tensor) -> None:
    """out += sum_r w[r, c] x_r x_r^T for every channel c: batched (D x R) @ (R x D) products, chunked over channels.

    Twice the MACs of a symmetric (packed upper-triangle) product, but no (R, D(D+1)/2) outer-product table: on
    2 CPU cores this is 1.6-2.5x faster at 2,000-16,000 rows (measured while writing it).
    """
    r, d = xr.shape
    width = max(1, _CHUNK_ELEMS // max(1, r * d))
    for lo in range(0, w.shape[1], width):
        hi = min(w.shape[1], lo + width)
        xw = xr.unsqueeze(0) * w[:, lo:hi].T.unsqueeze(2)  # (c, R, D)
        out[lo:hi] += xw.transpose(1, 2) @ xr


def _dw_gram(a: torch.Tensor, xu: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """sum_r w[r, c] J_rc J_rc^T with J_rc = sum_k a[r, c, k] xu[r, k]: a (R, Cc, K), xu (R, K, D) -> (Cc, D, D)."""
    j = torch.bmm(a, xu).transpose(0, 1).contiguous()  # (Cc, R, D): the pushed patches J_q of docs/splitting.md
    return (j * w.T.unsqueeze(2)).transpose(1, 2) @ j


def _layer_rows(u: _Unit, store: dict, grads: dict, cfg: dict, gen: torch.Generator) -> dict:
    """This batch's kept rows of one layer: patches and S_own weights, and (exact mode) the S_dw factors.

    The sampling weights 1/pi_r of the kept rows are folded into w_own / w_dw, so the sums stay unbiased. The
    importance scores are channel sums over whole maps; only the kept rows are ever laid out as rows.
    """
    dt, act, importance = cfg["dtype"], cfg["activation"], cfg["sampling"] == "importance" and cfg["stride"] > 1
    z = store[f"{u.name}.z"].detach().to(dt)  # (N, C, H, W)
    n, c_out, hh, ww = z.shape
    x = store[f"{u.name}.x"].detach().to(dt)  # the conv's (padded) input
    if u.conv.kernel_size != (1, 1):  # conv1: the input patches as a map (N, D, H, W)
        x_map = gather_patches(x, u.conv.kernel_size, u.conv.stride, None).flatten(1)
        x_map = x_map.reshape(n, hh, ww, -1).permute(0, 3, 1, 2)
    else:
        x_map = x
    c = bn_scale(u.bn).detach().to(dt)
    d1, d2 = activation_derivatives(act, z, cfg["beta"])
    g = grads[f"{u.name}.h"].detach().to(dt)
    w_map = g * d2 * (c * c)[:, None, None]  # S_own weight of every (clip, position, unit)
    x2 = (x_map * x_map).sum(1, keepdim=True) if importance else None  # |x_r|^2, (N, 1, H, W)
    score = (w_map.square().sum(1).sqrt() * x2[:, 0]).flatten() if importance else w_map[:, 0].flatten()
    rows, weight = sample_rows(score, cfg["stride"], cfg["sampling"], gen)
    out = dict(xr=rows_of(x_map, rows), w_own=rows_of(w_map, rows))
    if rows is not None:
        out["w_own"] = out["w_own"] * weight[:, None]
    if cfg["mode"] != "exact" or u.dw is None:
        return out
    # J_q = c_d sum_k dw[k] m_{q+k} x_{q+k} with m = a'(z) c: the rows of the coefficient map and of the patch map
    # are gathered with the depthwise geometry, so J is a batched (K x D) matrix product per row.
    kernel, stride = u.dw.kernel_size, u.dw.stride
    dw_w = u.dw.weight.detach().to(dt).flatten(1) * bn_scale(u.dw_bn).detach().to(dt)[:, None]  # (C, K)
    zd = store[f"{u.name}.zd"].detach().to(dt)
    w_dw = grads[f"{u.name}.u"].detach().to(dt) * activation_derivatives(act, zd, cfg["beta"])[1]  # (N, C, Qh, Qw)
    coef = u.dw_pad(d1 * c[:, None, None])
    patches = u.dw_pad(x_map)
    if importance:
        # |J_rc|^2 <= |a_rc|^2 |xu_r|^2, both sums over the taps, i.e. depthwise convolutions of squared maps:
        # score_r = |w_r * |a_r|^2| |xu_r|^2 costs two small convolutions, not a gather of every row.
        taps = dw_w.reshape(c_out, 1, *kernel)
        a2 = F.conv2d(coef * coef, taps * taps, stride=stride, groups=c_out)
        ones = torch.ones(1, 1, *kernel, dtype=dt, device=x.device)
        xu2 = F.conv2d(u.dw_pad(x2), ones, stride=stride)
        score = ((w_dw * a2).square().sum(1).sqrt() * xu2[:, 0]).flatten()
        rows, weight = sample_rows(score, cfg["stride"], "importance", gen)
    else:
        rows, weight = sample_rows(w_dw[:, 0].flatten(), cfg["stride"], "uniform", gen)
    out["a"] = gather_patches(coef, kernel, stride, rows).transpose(1, 2) * dw_w  # (R', C, K)
    out["xu"] = gather_patches(patches, kernel, stride, rows)  # (R', K, D)
    out["w_dw"] = rows_of(w_dw, rows) if rows is None else rows_of(w_dw, rows) * weight[:, None]  # (R', C)
    return out


def _accumulate_unit(u: _Unit, store: dict, grads: dict, acc: dict, cfg: dict, gen: torch.Generator) -> None:
    """Add this batch's S_own and S_dw of a layer into acc[name], both chunked over channels."""
    r = _layer_rows(u, store, grads, cfg, gen)
    xr, c_out = r["xr"], r["w_own"].shape[1]
    _own_gram(xr, r["w_own"], acc[u.name])
    if "a" not in r:
        return
    width = max(1, _CHUNK_ELEMS // max(1, 3 * r["xu"].shape[0] * xr.shape[1]))
    for lo in range(0, c_out, width):
        hi = min(c_out, lo + width)
        acc[u.name][lo:hi] += _dw_gram(r["a"][:, lo:hi], r["xu"], r["w_dw"][:, lo:hi])


def captured_batches(model: DSCNN, units: list, batches, need_dw: bool, progress: bool = False, desc: str = ""):
    """Yield (captured maps, their gradients dL/dh and dL/du, clip count) batch by batch, under no_grad.

    One eval-mode forward + backward per batch of (features, labels[, 1/pi, count share]) with the capture hooks
    on; the hooks come off and the model's train/eval mode comes back when the iteration ends.
    """
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    store, handles = _capture(model, units, need_dw=need_dw)
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


def splitting_matrices(
    model: DSCNN,
    batches,
    *,
    mode: str = "exact",
    surrogate_beta: float = 3.0,
    position_stride: int = 1,
    sampling: str = "uniform",
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
    if sampling not in SAMPLINGS:
        raise KwsError(f"splitting: sampling {sampling!r} is not one of {SAMPLINGS}")
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
        dtype=dt,
        activation=model.spec.activation,
        beta=float(surrogate_beta),
        stride=position_stride,
        sampling=sampling,
        mode=mode,
    )
    gen = torch.Generator().manual_seed(seed)
    count = 0
    for store, grads, n in captured_batches(model, units, batches, mode == "exact", progress, "splitting matrices"):
        for u in units:
            _accumulate_unit(u, store, grads, acc, cfg, gen)
        count += n
    return _finish(acc, count)


def clip_loss(model: DSCNN, features, labels, extra: list) -> tuple[torch.Tensor, float]:
    """(summed cross-entropy, clip count) of one pass batch. Importance-drawn clips (pass_batches) carry extra =
    [1/pi per clip, the batch's share of the all-clip count]: the Horvitz-Thompson sum, so S stays unbiased."""
    loss = F.cross_entropy(model(features), labels, reduction="none")
    if not extra:
        return loss.sum(), float(len(labels))
    w, n = extra
    return (loss * w.to(device=loss.device, dtype=loss.dtype)).sum(), float(n)


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
    return {name: (s + s.transpose(1, 2)) / (2 * total.item()) for name, s in acc.items()}


def pass_eigs(model: DSCNN, batches, cfg: SplitPassConfig, progress: bool = False) -> dict:
    """{layer: (lambda_min (C,), v_min (C, D))} of one splitting pass with preset cfg, by its solver."""
    if cfg.solver == "lanczos":
        from kws.split_lanczos import lanczos_eigs

        mm = cfg.matmul_dtype if cfg.matmul_dtype == "auto" else getattr(torch, cfg.matmul_dtype)
        dtype = None if cfg.dtype is None else getattr(torch, cfg.dtype)
        return lanczos_eigs(
            model,
            batches,
            mode=cfg.mode,
            surrogate_beta=cfg.surrogate_beta,
            iters=cfg.lanczos_iters,
            dtype=dtype,
            seed=cfg.seed,
            matmul_dtype=mm,
            progress=progress,
        )
    return min_eigen(splitting_matrices(model, batches, **cfg.matrix_kwargs(), progress=progress))


def min_eigen(mats: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (lambda_min (C,), v_min (C, D))} by a batched float64 eigh; v has unit norm."""
    out = {}
    for name, s in mats.items():
        vals, vecs = torch.linalg.eigh(s.detach().to(torch.float64))
        out[name] = (vals[:, 0].clone(), vecs[:, :, 0].clone())  # clones: do not keep all C x D x D vectors alive
    return out


__all__ = [
    "EXACT",
    "FAST",
    "WIDE",
    "SplitPassConfig",
    "min_eigen",
    "pass_batches",
    "pass_eigs",
    "preset_for",
    "split",
    "splitting_matrices",
]
