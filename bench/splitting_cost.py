"""Cost of one splitting pass against one training epoch, and whether the fast preset picks the exact units.

For each architecture: train the random-init net for --epochs plain epochs on the mini set's train features
(batch 64, Adam; the median epoch wall time is the denominator), then time the splitting pass with the preset
(kws.splitting.FAST unless overridden; median of --repeats), and compare the units select_splits chooses
(growth cap 0.5, eps 1e-2, no budget) with those chosen from the exact float64 matrices over --ref-clips clips
(default: the whole train split). Prints one JSON object. The float64 reference is run once per architecture.

Run: .venv/bin/python bench/splitting_cost.py --arch ds-cnn-s ds-cnn-l
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from kws import data, models, splitting, train
from kws.selection import Budget, select_splits

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech_commands_mini"


def _epoch_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> list[float]:
    cfg = train.TrainConfig(epochs=epochs, batch_size=64)
    opt = train.make_optimizer(model, cfg)
    sched = train.make_scheduler(opt, cfg, (len(y) + 63) // 64)
    gen = torch.Generator().manual_seed(0)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        train.train_one_epoch(model, x, y, opt, sched, cfg, gen, progress=False)
        times.append(time.perf_counter() - t0)
    return times


def _chosen(model, eigs) -> set[tuple[str, int]]:
    sel = select_splits(model.spec, eigs, Budget(), eps=1e-2, growth_cap=0.5)
    return {(c.layer, c.unit) for c in sel.chosen}


def bench(arch: str, x, y, preset: splitting.SplitPassConfig, epochs: int, repeats: int, ref_clips: int | None):
    torch.manual_seed(0)
    model = models.create(arch)
    epoch_s = _epoch_seconds(model, x, y, epochs)
    model.eval()
    pass_s, eigs = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        mats = splitting.splitting_matrices(model, splitting.pass_batches(x, y, preset), **preset.matrix_kwargs())
        eigs = splitting.min_eigen(mats)
        pass_s.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    exact_cfg = replace(splitting.EXACT, clips=ref_clips)
    ref_model = models.DSCNN(model.spec, num_classes=model.num_classes).double()
    ref_model.load_state_dict(model.state_dict())
    ref = splitting.min_eigen(
        splitting.splitting_matrices(
            ref_model, splitting.pass_batches(x, y, exact_cfg), **exact_cfg.matrix_kwargs(), progress=True
        )
    )
    ref_s = time.perf_counter() - t0
    fast_set, ref_set = _chosen(model, eigs), _chosen(ref_model, ref)
    return dict(
        arch=arch,
        widths=list(model.spec.unit_widths),
        train_clips=len(y),
        epoch_s=statistics.median(epoch_s[1:] or epoch_s),
        epoch_s_all=epoch_s,
        pass_s=statistics.median(pass_s),
        pass_s_all=pass_s,
        epochs_per_pass=statistics.median(pass_s) / statistics.median(epoch_s[1:] or epoch_s),
        reference_s=ref_s,
        reference_clips=ref_clips or len(y),
        selected_exact=len(ref_set),
        selected_fast=len(fast_set),
        overlap=len(fast_set & ref_set) / max(1, len(ref_set)),
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["ds-cnn-s", "ds-cnn-l"])
    p.add_argument("--data", default=str(MINI))
    p.add_argument("--epochs", type=int, default=3, help="training epochs timed (the first is a warm-up)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-clips", type=int, default=None, help="clips of the float64 reference (default: all)")
    p.add_argument("--clips", type=int, default=None)
    p.add_argument("--position-stride", type=int, default=None)
    p.add_argument("--dtype", default=None)
    args = p.parse_args()
    preset = splitting.FAST
    for key in ("clips", "position_stride", "dtype"):
        if getattr(args, key) is not None:
            preset = replace(preset, **{key: getattr(args, key)})
    ds = data.load_dataset(args.data, splits=("train",), progress=False)
    split = ds.splits["train"]
    x, y = torch.from_numpy(data.features(split, ds.frontend)), torch.from_numpy(split.labels)
    out = dict(preset=asdict(preset), threads=torch.get_num_threads(), results=[])
    for arch in args.arch:
        out["results"].append(bench(arch, x, y, preset, args.epochs, args.repeats, args.ref_clips))
        print(json.dumps(out["results"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
