"""Matrix-free splitting eigenpairs: lambda_min and v_min of every unit by batched Lanczos on S v products.

Forming S_j costs C R D^2 MACs per layer for R (clip, position) rows (kws.splitting.dense), so wide layers can
afford few rows. But S_j = X^T diag(w_j) X + sum_q w_dw,qj J_qj J_qj^T is a product of maps the forward/backward
pass already has, and applying it to one vector per unit is two (R x D) @ (D x C) products plus two depthwise
convolutions:

    Y    = X V^T                                   y_rj = x_r . v_j for every unit j at once
    S v  = X^T [ w_own * Y + m * dw^T( w_dw * dw( m * Y ) ) ]      m = a'(z) c, dw = the unit's depthwise filter

(dw^T: the transposed depthwise convolution, the adjoint of dw with the same stride and padding). A Lanczos
iteration costs 2 R C D, so k iterations cost 2 k R C D against C R D^2 to form S: at 276 channels and k = 32 the
same time buys every position of the clips instead of 1 in 8 (bench/splitting_cost.py). The Lanczos vectors are
kept in float64 and fully reorthogonalised; with k >= D the Krylov space is the whole space and the eigenpair is
that of the formed matrix. Under torch.distributed each product is all-reduced, so every rank decides the same.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kws.errors import KwsError
from kws.splitting.capture import MODES, activation_derivatives, bn_scale, captured_batches, units_of
from kws.splitting.rows import gather_patches


def _layer_operator(u, store: dict, grads: dict, mode: str, act: str, beta: float, dt: torch.dtype) -> dict:
    """What one batch contributes to a layer's S v: patch rows X and the maps that weight them."""
    z = store[f"{u.name}.z"].detach().to(dt)
    n, c_out, hh, ww = z.shape
    x = store[f"{u.name}.x"].detach().to(dt)
    if u.conv.kernel_size != (1, 1):  # conv1: the im2col patch of every output position, (N*H*W, D)
        xr = gather_patches(x, u.conv.kernel_size, u.conv.stride, None).flatten(1)
    else:
        xr = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    c = bn_scale(u.bn).detach().to(dt)
    d1, d2 = activation_derivatives(act, z, beta)
    g = grads[f"{u.name}.h"].detach().to(dt)
    op = dict(x=xr.contiguous(), w_own=(g * d2 * (c * c)[:, None, None]).permute(0, 2, 3, 1).reshape(-1, c_out))
    op["shape"] = (n, hh, ww)
    if mode != "exact" or u.dw is None:
        return op
    zd = store[f"{u.name}.zd"].detach().to(dt)
    op["m"] = (d1 * c[:, None, None]).permute(0, 2, 3, 1).reshape(-1, c_out)  # a'(z) c as rows, like Y
    op["w_dw"] = grads[f"{u.name}.u"].detach().to(dt) * activation_derivatives(act, zd, beta)[1]  # (N, C, Qh, Qw)
    return op


def _apply(u, ops: list[dict], v: torch.Tensor) -> torch.Tensor:
    """sum over the stored batches of S_j v_j for every unit j: v (C, D) -> (C, D), unnormalised.

    The two products run in the dtype X is stored in (bfloat16 where the CPU has AMX: ~7x the float32 rate, 0.3%
    relative error per product); the weighting maps and the depthwise convolutions stay in the maps' dtype.
    """
    dt, mm = ops[0]["w_own"].dtype, ops[0]["x"].dtype
    vt = v.to(mm).T.contiguous()  # (D, C)
    out = torch.zeros(v.shape[1], v.shape[0], dtype=dt, device=vt.device)  # (D, C)
    taps = None
    if u.dw is not None and "m" in ops[0]:
        taps = u.dw.weight.detach().to(dt) * bn_scale(u.dw_bn).detach().to(dt)[:, None, None, None]  # (C, 1, kh, kw)
    for op in ops:
        y = (op["x"] @ vt).to(dt)  # (R, C): x_r . v_j
        t = op["w_own"] * y
        if taps is not None:
            n, hh, ww = op["shape"]
            my = (op["m"] * y).reshape(n, hh, ww, -1).permute(0, 3, 1, 2)  # (N, C, H, W), channels-last in memory
            b = _dw(u, my, taps) * op["w_dw"]  # J . v, weighted by gu a''(zd)
            back = _dw_adjoint(u, b, taps, hh, ww)  # sum_q b_q dw[q - p], on the unpadded grid
            t = torch.addcmul(t, op["m"], back.permute(0, 2, 3, 1).reshape(-1, taps.shape[0]))
        out += (op["x"].T @ t.to(mm)).to(dt)
    return out.T


def _sym_pad(u) -> tuple[int, int] | None:
    """The block's zero padding as conv2d's own (rows, cols) padding when it is symmetric, else None."""
    left, right, top, bottom = u.dw_pad.padding
    return (top, left) if (left, top) == (right, bottom) else None


def _dw(u, m: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """The block's (zero-pad, depthwise conv) of a map, with conv2d's padding when symmetric (no padded copy)."""
    pad = _sym_pad(u)
    if pad is not None:
        return F.conv2d(m, taps, stride=u.dw.stride, padding=pad, groups=taps.shape[0])
    return F.conv2d(u.dw_pad(m), taps, stride=u.dw.stride, groups=taps.shape[0])


def _dw_adjoint(u, b: torch.Tensor, taps: torch.Tensor, hh: int, ww: int) -> torch.Tensor:
    """The adjoint of (zero-pad, depthwise conv): transposed conv onto the padded grid, then crop the padding."""
    left, right, top, bottom = u.dw_pad.padding
    hp, wp = hh + top + bottom, ww + left + right
    (kh, kw), (sh, sw) = u.dw.kernel_size, u.dw.stride
    extra = (hp - kh - (b.shape[2] - 1) * sh, wp - kw - (b.shape[3] - 1) * sw)  # rows the strided conv never read
    pad = _sym_pad(u)
    if pad is not None:  # conv_transpose2d's padding crops exactly what conv2d's padding added
        return F.conv_transpose2d(b, taps, stride=(sh, sw), padding=pad, output_padding=extra, groups=taps.shape[0])
    full = F.conv_transpose2d(b, taps, stride=(sh, sw), groups=taps.shape[0], output_padding=extra)
    return full[:, :, top : top + hh, left : left + ww]


def fast_matmul_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where matrix products in it are native and fast (x86 CPUs with AMX), else float32."""
    if device.type == "cpu":
        try:
            flags = open("/proc/cpuinfo").read()
        except OSError:
            return torch.float32
        return torch.bfloat16 if " amx_bf16" in flags else torch.float32
    return torch.float32


def _allreduce(t: torch.Tensor) -> torch.Tensor:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.all_reduce(t)
    return t


def lanczos_min(
    matvec, c: int, d: int, iters: int, generator: torch.Generator, start: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest eigenpair of C symmetric D x D operators at once: (lambda (C,), v (C, D)), float64, ||v|| = 1.

    matvec maps (C, D) to (C, D) (row j through operator j). Lanczos with full reorthogonalisation, k = min(iters, D)
    steps from `start` (C, D) (default random); a unit whose Krylov space closes early (beta ~ 0) restarts from a
    random vector orthogonal to it. The Ritz value is an upper bound of lambda_min, equal to it when k = D, and never
    above start's Rayleigh quotient (start is in the Krylov space).
    """
    k = max(1, min(iters, d))
    q = torch.randn(c, d, dtype=torch.float64, generator=generator)
    if start is not None:  # a guess of v_min (e.g. from a sampled dense pass), nudged off any exact zero vector
        q = start.to(torch.float64).cpu() + 1e-6 * q / q.norm(dim=1, keepdim=True)
    q /= q.norm(dim=1, keepdim=True)
    basis = torch.zeros(c, k, d, dtype=torch.float64)
    alpha, beta = torch.zeros(c, k, dtype=torch.float64), torch.zeros(c, k, dtype=torch.float64)
    scale = None
    for i in range(k):
        basis[:, i] = q
        w = matvec(q).to(torch.float64)
        alpha[:, i] = (q * w).sum(1)
        if scale is None:
            scale = w.norm(dim=1).clamp_min(1e-300)
        for _ in range(2):  # full reorthogonalisation, twice ("twice is enough")
            w -= torch.einsum("cid,ci->cd", basis[:, : i + 1], torch.einsum("cid,cd->ci", basis[:, : i + 1], w))
        if i == k - 1:
            break
        b = w.norm(dim=1)
        dead = b <= 1e-10 * scale
        if dead.any():  # invariant subspace found: continue with a fresh direction, decoupled (beta = 0)
            r = torch.randn(int(dead.sum()), d, dtype=torch.float64, generator=generator)
            sub = basis[dead, : i + 1]
            for _ in range(2):
                r -= torch.einsum("cid,ci->cd", sub, torch.einsum("cid,cd->ci", sub, r))
            w[dead], b = r, torch.where(dead, torch.zeros_like(b), b)
        beta[:, i] = b
        q = w / w.norm(dim=1, keepdim=True).clamp_min(1e-300)
    tri = torch.diag_embed(alpha) + torch.diag_embed(beta[:, : k - 1], 1) + torch.diag_embed(beta[:, : k - 1], -1)
    vals, vecs = torch.linalg.eigh(tri)
    v = torch.einsum("cid,ci->cd", basis, vecs[:, :, 0])
    return vals[:, 0].clone(), v / v.norm(dim=1, keepdim=True)


def lanczos_eigs(
    model,
    batches,
    *,
    mode: str = "exact",
    surrogate_beta: float = 3.0,
    iters: int = 32,
    dtype: torch.dtype | None = None,
    seed: int = 0,
    start: dict[str, torch.Tensor] | None = None,
    matmul_dtype: torch.dtype | str | None = "auto",
    progress: bool = False,
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """{layer: (lambda_min (C,), v_min (C, D))} of S = S_own (+ S_dw in mode "exact") without forming S.

    Same loss, batches and conventions as kws.splitting.dense.splitting_matrices (every position of every clip
    given); one forward + backward per batch, the maps kept for the Lanczos products (about 4 R C floats per layer).
    start: {layer: (C, D)} starting vectors (a guess of v_min per unit); random when not given.
    matmul_dtype: dtype of the two big products ("auto": fast_matmul_dtype; None: the maps' dtype).
    """
    if mode not in MODES:
        raise KwsError(f"splitting: mode {mode!r} is not one of {MODES}")
    if iters < 1:
        raise KwsError(f"splitting: lanczos iterations must be >= 1, got {iters}")
    param = next(model.parameters())
    dt = dtype or param.dtype
    mm = fast_matmul_dtype(param.device) if matmul_dtype == "auto" else (matmul_dtype or dt)
    mm = dt if dt == torch.float64 else mm  # a float64 pass is a reference: no reduced precision in it
    units = units_of(model)
    ops: dict[str, list[dict]] = {u.name: [] for u in units}
    count = 0
    for store, grads, n in captured_batches(model, units, batches, mode == "exact", progress, "splitting pass"):
        for u in units:
            op = _layer_operator(u, store, grads, mode, model.spec.activation, surrogate_beta, dt)
            op["x"] = op["x"].to(mm)
            ops[u.name].append(op)
        count += n
    total = float(_allreduce(torch.tensor(float(count), dtype=torch.float64, device=param.device)).item())
    if total == 0:
        raise KwsError("splitting: no clips in the batches given to the splitting pass")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    with torch.no_grad():
        for u in units:
            d = ops[u.name][0]["x"].shape[1]

            def matvec(v, u=u):
                return (_allreduce(_apply(u, ops[u.name], v)).to(torch.float64) / total).cpu()

            guess = None if start is None else start.get(u.name)
            out[u.name] = lanczos_min(matvec, u.conv.out_channels, d, iters, gen, guess)
            ops[u.name] = []  # free this layer's maps before the next
    return out


__all__ = ["lanczos_eigs", "lanczos_min"]
