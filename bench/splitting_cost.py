"""Cost of one splitting pass against one training epoch, and whether the fast preset picks the exact units.

For each architecture: train the random-init net for --epochs plain epochs (batch 64, Adam) on the mini set's
train features, then time the splitting pass with each preset (default kws.splitting.FAST), every repeat right
after one training epoch of a copy of the net; the reported epochs_per_pass is the median of the per-repeat
ratios (the 2 shared cores' load drifts too much for separate medians). The units select_splits chooses (growth
cap 0.5, eps 1e-2, no budget) are compared with those chosen from the exact float64 matrices over --ref-clips
clips (default: the whole train split), run once per architecture and cached in --cache.

Measured (2 shared cores, results and commands in bench/README.md): ds-cnn-s, FAST (768 clips, 1 in 8 rows by
importance) picks 92% of the reference's units (5 seeds) in 0.65-0.84 training epochs; the former preset (1,024
clips, 1 in 4 rows uniformly) 92% in 1.8-2.4 epochs. ds-cnn-l (float32 reference): FAST 77% in 3.0 epochs, WIDE
(1,536 clips drawn by importance, every position, 6 matrix-free Lanczos steps) 94% in 2.6 epochs.

Run: .venv/bin/python bench/splitting_cost.py --arch ds-cnn-s --overlap-seeds 5 --presets 1024:4 768:8:importance
     .venv/bin/python bench/splitting_cost.py --arch ds-cnn-l --ref-dtype float32 --presets 768:8:importance \
     i1536:lanczos6
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from kws import data, models, recipe, splitting, train
from kws.features import features
from kws.splitting import Budget, select_splits

MINI = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech_commands_mini"


def parse_preset(text: str) -> splitting.SplitPassConfig:
    """[i]CLIPS:STRIDE[:SAMPLING] (dense solver) or [i]CLIPS:lanczosK (matrix-free, K iterations, every position).

    A leading "i" draws the clips by importance (splitting.pass_batches) instead of a stratified subset.
    """
    clip_sampling = "importance" if text.startswith("i") else "stratified"
    return replace(_parse(text.lstrip("i")), clip_sampling=clip_sampling)


def _parse(text: str) -> splitting.SplitPassConfig:
    a, b, *c = text.split(":")
    if b.startswith("lanczos"):
        k = int(b[len("lanczos") :] or splitting.FAST.lanczos_iters)
        return replace(splitting.FAST, clips=int(a), position_stride=1, solver="lanczos", lanczos_iters=k)
    return replace(splitting.FAST, clips=int(a), position_stride=int(b), sampling=c[0] if c else "uniform")


def _epoch_seconds(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int) -> list[float]:
    cfg = recipe.TrainConfig(epochs=epochs, batch_size=64)
    opt = recipe.make_optimizer(model, cfg)
    sched = recipe.make_scheduler(opt, cfg, (len(y) + 63) // 64)
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


def _reference(model, x, y, ref_clips: int | None, cache: Path | None, dtype: str = "float64"):
    """Eigen-pairs of the exact matrices, every clip and position (cached: the ds-cnn-l pass is slow), and wall time."""
    if cache is not None and cache.is_file():
        saved = torch.load(cache, weights_only=True)
        if "state" in saved:  # the very network the reference was computed on
            model.load_state_dict(saved["state"])
        else:
            print("bench: warning: cached reference without its network; retrained one used", file=sys.stderr)
        return {k: tuple(v) for k, v in saved["eigs"].items()}, saved["seconds"]
    t0 = time.perf_counter()
    exact_cfg = replace(splitting.EXACT, clips=ref_clips, dtype=dtype)
    ref_model = models.DSCNN(model.spec, num_classes=model.num_classes).to(getattr(torch, dtype))
    ref_model.load_state_dict(model.state_dict())
    batches = splitting.pass_batches(x, y, exact_cfg)
    ref = splitting.min_eigen(
        splitting.splitting_matrices(ref_model, batches, **exact_cfg.matrix_kwargs(), progress=True)
    )
    seconds = time.perf_counter() - t0
    if cache is not None:
        state = {k: v.clone() for k, v in model.state_dict().items()}
        torch.save(dict(eigs={k: list(v) for k, v in ref.items()}, seconds=seconds, state=state), cache)
    return ref, seconds


def bench(arch: str, x, y, presets: list, epochs: int, repeats: int, ref_clips, cache_dir, ref_dtype, overlap_seeds):
    torch.manual_seed(0)
    model = models.create(arch)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the network under test is trained as the cached references' were (2 threads)
    epoch_s = statistics.median(_epoch_seconds(model, x, y, epochs)[1:] or [float("nan")])
    torch.set_num_threads(threads)
    model.eval()
    tag = "" if ref_dtype == "float64" else f"_{ref_dtype}"
    cache = None if cache_dir is None else cache_dir / f"splitting_ref_{arch}_{ref_clips or len(y)}_e{epochs}{tag}.pt"
    ref, ref_s = _reference(model, x, y, ref_clips, cache, ref_dtype)
    ref_set = _chosen(model, ref)
    rows = []
    for preset in presets:
        pass_s, ratios, eigs = [], [], None
        for _ in range(repeats):  # interleaved with an epoch of a copy: the 2 shared cores' load drifts
            side_epoch = _epoch_seconds(copy.deepcopy(model), x, y, 1)[0]
            t0 = time.perf_counter()
            batches = splitting.pass_batches(x, y, preset, model)
            eigs = splitting.pass_eigs(model, batches, preset)
            pass_s.append(time.perf_counter() - t0)
            ratios.append(pass_s[-1] / side_epoch)
        overlaps = [len(_chosen(model, eigs) & ref_set) / max(1, len(ref_set))]
        for seed in range(1, overlap_seeds):  # the row sample is random: the overlap over other sampling seeds
            other = replace(preset, seed=seed)
            batches = splitting.pass_batches(x, y, other, model)
            e = splitting.pass_eigs(model, batches, other)
            overlaps.append(len(_chosen(model, e) & ref_set) / max(1, len(ref_set)))
        rows.append(
            dict(
                clips=preset.clips,
                position_stride=preset.position_stride,
                sampling=preset.sampling,
                solver=preset.solver,
                clip_sampling=preset.clip_sampling,
                lanczos_iters=preset.lanczos_iters if preset.solver == "lanczos" else None,
                dtype=preset.dtype,
                pass_s=statistics.median(pass_s),
                pass_s_all=pass_s,
                epochs_per_pass=statistics.median(ratios),
                epochs_per_pass_all=ratios,
                selected_fast=len(_chosen(model, eigs)),
                overlap=statistics.mean(overlaps),
                overlap_min=min(overlaps),
                overlap_all=overlaps,
            )
        )
    return dict(
        arch=arch,
        widths=list(model.spec.unit_widths),
        train_clips=len(y),
        epoch_s=epoch_s,
        reference_s=ref_s,
        reference_clips=ref_clips or len(y),
        reference_dtype=ref_dtype,
        selected_exact=len(ref_set),
        presets=rows,
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", nargs="+", default=["ds-cnn-s", "ds-cnn-l"])
    p.add_argument("--data", default=str(MINI))
    p.add_argument("--epochs", type=int, default=3, help="training epochs timed (the first is a warm-up)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--ref-clips", type=int, default=None, help="clips of the float64 reference (default: all)")
    p.add_argument(
        "--presets",
        nargs="+",
        default=None,
        help="CLIPS:STRIDE[:SAMPLING] (uniform|importance) or CLIPS:lanczosK (default: FAST)",
    )
    p.add_argument("--ref-dtype", default="float64", choices=("float64", "float32"), help="dtype of the reference")
    p.add_argument("--overlap-seeds", type=int, default=1, help="sampling seeds the overlap is averaged over")
    p.add_argument("--cache", default="/tmp", help="folder caching the float64 reference ('' disables)")
    args = p.parse_args()
    presets = [splitting.FAST]
    if args.presets:
        presets = []
        for t in args.presets:
            presets.append(parse_preset(t))
    ds = data.load_dataset(args.data, splits=("train",), progress=False)
    split = ds.splits["train"]
    x, y = torch.from_numpy(features(split, ds.frontend)), torch.from_numpy(split.labels)
    out = dict(fast=asdict(splitting.FAST), threads=torch.get_num_threads(), results=[])
    cache = Path(args.cache) if args.cache else None
    for arch in args.arch:
        res = bench(
            arch, x, y, presets, args.epochs, args.repeats, args.ref_clips, cache, args.ref_dtype, args.overlap_seeds
        )
        out["results"].append(res)
        print(json.dumps(out["results"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
