"""The dense solver of splitting steepest descent: the exact splitting matrices of a DS-CNN and their eigenvectors.

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
with inclusion probability ~ |w_r| |x_r|^2 (reweighted by 1/pi, kws.splitting.rows) keeps the rows that carry S,
i.e. the clips the network gets wrong and the positions near the activation's kink. The capture hooks are
kws.splitting.capture's, shared with the matrix-free solver (kws.splitting.lanczos).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kws.errors import KwsError
from kws.models import DSCNN
from kws.splitting.capture import MODES, Unit, activation_derivatives, bn_scale, captured_batches, fan_in, units_of
from kws.splitting.rows import SAMPLINGS, gather_patches, rows_of, sample_rows

# Elements of the largest per-chunk intermediate (rows x channels x fan-in); 2^24 floats = 64 MiB in float32.
_CHUNK_ELEMS = 1 << 24


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


def _layer_rows(u: Unit, store: dict, grads: dict, cfg: dict, gen: torch.Generator) -> dict:
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


def _accumulate_unit(u: Unit, store: dict, grads: dict, acc: dict, cfg: dict, gen: torch.Generator) -> None:
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
    units = units_of(model)
    acc = {
        u.name: torch.zeros(u.conv.out_channels, fan_in(u.conv), fan_in(u.conv), dtype=dt, device=param.device)
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


def min_eigen(mats: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (lambda_min (C,), v_min (C, D))} by a batched float64 eigh; v has unit norm."""
    out = {}
    for name, s in mats.items():
        vals, vecs = torch.linalg.eigh(s.detach().to(torch.float64))
        out[name] = (vals[:, 0].clone(), vecs[:, :, 0].clone())  # clones: do not keep all C x D x D vectors alive
    return out


__all__ = ["min_eigen", "splitting_matrices"]
