"""One rank of test_splitting.py's distributed test: splitting matrices on this rank's share of the batches.

Launched by `torch.distributed.run --nproc-per-node 2 tests/_dist_splitting_worker.py OUT_DIR` (gloo, CPU). Every
rank builds the same seeded tiny float64 DS-CNN, takes batches[rank::world] of test_splitting._dist_batches(), and
saves its all-reduced matrices, eigenvalues and split plan, and the matrix-free Lanczos eigenpairs (all-reduced
products), to OUT_DIR/rank{rank}.pt.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from test_splitting import _dist_batches, _dist_plan, _tiny_model  # noqa: E402

from kws import splitting  # noqa: E402
from kws.splitting import lanczos as split_lanczos  # noqa: E402


def main(out: str) -> None:
    dist.init_process_group(backend="gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    mats = splitting.splitting_matrices(_tiny_model(), _dist_batches()[rank::world])
    eigs = splitting.min_eigen(mats)
    lz = split_lanczos.lanczos_eigs(_tiny_model(), _dist_batches()[rank::world], iters=100)  # products all-reduced
    torch.save(
        dict(mats=mats, lam={k: lam for k, (lam, _v) in eigs.items()}, plan=_dist_plan(eigs), lanczos=lz),
        f"{out}/rank{rank}.pt",
    )
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
