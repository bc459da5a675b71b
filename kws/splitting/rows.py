"""Which (clip, position) rows the splitting pass keeps, and gathering them from feature maps.

kws.splitting.dense sums one outer product per row; these helpers pick a reweighted subset of the rows (uniform or
by importance) and lay out only the kept ones as rows.
"""

from __future__ import annotations

import torch

from kws.errors import KwsError

SAMPLINGS = ("uniform", "importance")


def sample_rows(
    score: torch.Tensor, stride: int, sampling: str, generator: torch.Generator
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """Keep ~1/stride of the rows: (kept row indices, their weights 1/pi_r), unbiased; (None, None) keeps all.

    "uniform": a random subset of n/stride rows, each weighted stride. "importance": inclusion probabilities
    pi_r = min(1, t * score_r), t set so sum(pi) = n/stride (rows with pi = 1 are kept for sure), with score_r =
    |w_r| |x_r|^2, the row's share of S (the approximate-matrix-product rule of Drineas, Kannan, Mahoney 2006). The
    rows are drawn by systematic sampling over a random order (one uniform offset, a fixed sample size), not
    independently: independent (Poisson) draws were worse than a uniform subset when the rows' contributions are
    alike, because a fixed-size design only pays for the spread of w_r x_r x_r^T / pi_r around its mean.
    """
    n = score.numel()
    if stride <= 1:
        return None, None
    m = max(1.0, n / stride)
    if sampling == "uniform":
        rows = torch.randperm(n, generator=generator)[: int(m)].to(score.device)
        return rows, torch.full((rows.numel(),), n / rows.numel(), dtype=score.dtype, device=score.device)
    if sampling != "importance":
        raise KwsError(f"splitting: sampling {sampling!r} is not one of {SAMPLINGS}")
    s = score.detach().to(torch.float64).clamp_min(0).cpu()
    total = s.sum()
    if total <= 0:
        return torch.zeros(0, dtype=torch.long, device=score.device), torch.zeros(
            0, dtype=score.dtype, device=score.device
        )
    t = m / total
    for _ in range(50):  # water-filling: rows with t*s >= 1 are certain; spread the rest of the budget over the others
        full = t * s >= 1
        rest, n_full = s[~full].sum(), int(full.sum())
        if rest <= 0 or n_full >= m:
            break
        t_new = (m - n_full) / rest
        if t_new <= t * (1 + 1e-12):
            break
        t = t_new
    pi = (t * s).clamp(max=1)
    order = torch.randperm(n, generator=generator)
    cum = torch.cumsum(pi[order], 0)
    u = torch.rand((), generator=generator, dtype=torch.float64)
    hits = torch.floor(cum - u) - torch.floor(torch.cat([cum.new_zeros(1), cum[:-1]]) - u)  # 1 where a point lands
    rows = order[hits > 0.5]
    return rows.to(score.device), (1.0 / pi[rows]).to(device=score.device, dtype=score.dtype)


def gather_patches(
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
        flat = xp.flatten(2).transpose(1, 2).contiguous()  # (N, H*W, C): one transpose, then row gathers
        return flat[(rows // (qh * qw))[:, None], index[rows % (qh * qw)]]
    # few rows: index the (N, C, H*W) map directly (the advanced indices go first: (R, K, C)), no full transpose
    return xp.flatten(2)[(rows // (qh * qw))[:, None], :, index[rows % (qh * qw)]]


def rows_of(m: torch.Tensor, rows: torch.Tensor | None) -> torch.Tensor:
    """Rows n * Q + q of a map (N, C, H, W) as (R, C); only the kept ones are copied."""
    flat = m.flatten(2)
    if rows is None:
        return flat.transpose(1, 2).reshape(-1, m.shape[1])
    q = flat.shape[2]
    return flat[rows // q, :, rows % q]


__all__ = ["SAMPLINGS", "gather_patches", "rows_of", "sample_rows"]
