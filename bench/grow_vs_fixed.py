"""Does growing beat hand-sizing? Arms at equal budget and equal total epochs, several seeds, printed as JSON.

Arms (issue "Evidence"):
  grown     grown by splitting, exact S = S_own + S_dw, finished by continuing the grown network
  retrain   the same final architecture trained from scratch for the same total epochs
  uniform   the seed's geometry at one uniform width, the largest whose deployed params fit the grown model's
  own       growth ranked by S_own only (the authors' public code)
  random    the same growth schedule, random units and random directions
  uniform_cm  the uniform net trained for as many epochs as match the retrain arm's training compute (growth
            phase and splitting passes included): the compute-matched comparison
  own_retrain, random_retrain  the architectures the two ablations grew, trained from scratch like `retrain`
            (the ablations of the retrain recipe: does the exact S choose better architectures?)
Equal compute is reported too: training MACs (3 x forward MACs per clip per epoch, summed over phases with the
architecture of each phase) plus the splitting passes (split clips x 3 x forward MACs, plus the S accumulation,
C * R * D^2 per layer for S_own and again for S_dw, R = clips x positions / position_stride).

Each finished run is stored as JSON under --out and skipped when the script is re-run (resumable); the summary
(mean, std per arm and budget, test and validation accuracy) goes to stdout and --out/summary.json, and a plot to
--out/grow_vs_fixed.png. Choose recipes on the validation accuracy only; the test column is reported as it comes.

    .venv/bin/python bench/grow_vs_fixed.py --budgets 22.6 --seeds 0 1 2 --total-epochs 40
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from gvf_summary import ARMS, RETRAIN_OF, markdown, plot, summarize

from kws import data, models, train
from kws.accuracy import evaluate
from kws.cost import cost
from kws.features import features
from kws.grow import grow
from kws.recipe import GrowConfig

RETRAINED_AS = {v: k for k, v in RETRAIN_OF.items()}
N_TRAIN_MINI = 3220  # training items of the mini set (clips + silence + unknown), for runs stored without it


def uniform_width(seed_arch: str, params: int, num_classes: int = 12) -> int:
    """The largest uniform width of the seed geometry whose deployed parameters do not exceed `params`."""
    base = models.resolve_arch(seed_arch)
    w = 1
    while cost(base.uniform(w + 1), num_classes).params_deployed <= params:
        w += 1
    return w


def training_macs(rounds: list[dict], final_epochs: int, n_train: int, split: dict | None) -> int:
    """Forward+backward MACs of training (3x forward) over every phase, plus the splitting passes."""
    total = 0
    for r in rounds:
        total += 3 * r["macs"] * n_train * r["train_epochs"]
    total += 3 * rounds[-1]["macs"] * n_train * final_epochs
    if split:
        for i_round, r in enumerate(rounds[:-1]):  # the pass that ended each round was computed on that round's network
            spec = models.ArchSpec.from_dict(r["arch"])
            sp = rounds[i_round + 1].get("split_pass") or split  # runs since kws grow records each round's pass
            sp = dict(sp, clips=sp.get("clips") or n_train)
            total += 3 * r["macs"] * sp["clips"]
            if sp.get("clip_sampling") == "importance":  # the forward over every clip that draws them
                total += r["macs"] * n_train
            # Since the sampled pass: S_own and S_dw each C*R*D^2 (two batched Gram products). Runs made before it
            # (no "sampling" in their config) used every position (the stride was not passed on) and a packed,
            # symmetric S_own: C*R*D^2/2.
            legacy = "sampling" not in sp
            per_row = (1.5 if legacy else 2.0) if sp.get("mode", "exact") == "exact" else (0.5 if legacy else 1.0)
            stride = 1 if legacy else sp["position_stride"]
            geo = spec.geometry()
            for i, g in enumerate(geo):
                if g["kind"] in ("conv", "pointwise"):
                    rows = sp["clips"] * g["out"][0] * g["out"][1] / stride
                    d = g["inp"][2] * g["kernel"][0] * g["kernel"][1]
                    if sp.get("solver") == "lanczos":  # k products of 2 R C D, plus dw and dw^T of 9 taps each
                        k = min(sp["lanczos_iters"], d)
                        has_dw = any(h["kind"] not in ("conv", "pointwise") for h in geo[i + 1 :])
                        taps = 18 if sp.get("mode", "exact") == "exact" and has_dw else 0
                        total += int(k * rows * g["out"][2] * (2 * d + taps))
                    else:
                        total += int(per_row * rows * g["out"][2] * d * d)
    return int(total)


def refresh_compute(out: Path) -> None:
    """Recompute the training-compute column of finished growth runs from their run directories."""
    for f in sorted(out.glob("b*_s*.json")):
        r = json.loads(f.read_text())
        run = out / f.stem
        if r["arm"] not in ("grown", "own", "random") or not (run / "growth_report.json").is_file():
            continue
        rep = json.loads((run / "growth_report.json").read_text())
        cfg = rep["config"]
        rounds = []
        for x in rep["rounds"]:
            arch = json.loads((run / "rounds" / f"round_{x['round']:03d}" / "arch.json").read_text())
            rounds.append(
                dict(x, arch=arch, train_epochs=cfg["seed_epochs"] if x["round"] == 0 else cfg["epochs_per_round"])
            )
        split = (
            None
            if r["arm"] == "random"
            else dict(clips=cfg["split_clips"], position_stride=cfg["position_stride"], mode=cfg["selector"])
        )
        if split is not None and "split_sampling" in cfg:
            split["sampling"] = cfg["split_sampling"]
        n_train = r.get("n_train", N_TRAIN_MINI)
        r["growth_macs"] = training_macs(rounds, 0, n_train, split)
        r["train_macs"] = training_macs(rounds, cfg["final_epochs"], n_train, split)
        if "retrain" in r:
            r["retrain"]["train_macs"] = 3 * r["macs"] * n_train * r["retrain"]["epochs"] + r["growth_macs"]
            rt = out / f.name.replace(f"_{r['arm']}_", f"_{RETRAINED_AS[r['arm']]}_")
            if rt.is_file():
                x = json.loads(rt.read_text())
                x["train_macs"] = r["retrain"]["train_macs"]
                rt.write_text(json.dumps(x, indent=1))
        f.write_text(json.dumps(r, indent=1))


def run_grow(arm: str, root: Path, out: Path, cfg: GrowConfig) -> dict:
    selector = {"grown": "exact", "own": "own", "random": "random"}[arm]
    # every growth arm finishes by continuing and also retrains its final architecture from scratch
    c = replace(cfg, selector=selector, finish="continue", compare_retrain=True)
    rep = grow(root, out, c, resume=out.exists())
    rounds = []
    for r in rep["rounds"]:
        spec = models.ArchSpec.from_dict(
            json.loads((out / "rounds" / f"round_{r['round']:03d}" / "arch.json").read_text())
        )
        rounds.append(
            dict(r, arch=spec.to_dict(), train_epochs=c.seed_epochs if r["round"] == 0 else c.epochs_per_round)
        )
    return dict(report=rep, rounds=rounds)


def run_uniform(root: Path, out: Path, cfg: GrowConfig, params: int, epochs: int) -> dict:
    ds = data.load_dataset(root, progress=False)
    width = uniform_width(cfg.seed_arch, params, len(ds.labels))
    spec = replace(models.resolve_arch(cfg.seed_arch).uniform(width), activation=cfg.activation)
    torch.manual_seed(cfg.seed + 1)
    model = models.DSCNN(spec, num_classes=len(ds.labels))
    t0 = time.perf_counter()
    train.fit(model, ds, replace(cfg.train, epochs=epochs, seed=cfg.seed * 1009 + 20_000), run_dir=out, resume=True)
    test = ds.splits["test"]
    val = ds.splits["validation"]
    c = cost(spec, len(ds.labels))
    return dict(
        width=width,
        params=c.params_deployed,
        macs=c.macs,
        epochs=epochs,
        test_acc=evaluate(model, features(test, ds.frontend), test.labels)["acc"],
        val_acc=evaluate(model, features(val, ds.frontend), val.labels)["acc"],
        train_s=time.perf_counter() - t0,
        train_macs=3 * c.macs * len(ds.splits["train"].labels) * epochs,
    )


def _val_acc(run_dir: str, root: Path) -> float:
    from kws.checkpoint import load_run

    run = load_run(run_dir)
    ds = data.load_dataset(root, progress=False, splits=("validation",))
    val = ds.splits["validation"]
    return evaluate(run.model, features(val, ds.frontend), val.labels)["acc"]


def one_run(arm: str, budget_k: float, seed: int, args, root: Path) -> dict:
    out = args.out / f"b{budget_k:g}_{arm}_s{seed}"
    base = GrowConfig()
    cfg = GrowConfig(
        budget_kparams=budget_k,
        seed=seed,
        seed_width=args.seed_width,
        seed_epochs=args.seed_epochs,
        epochs_per_round=args.epochs_per_round,
        growth_per_round=args.growth,
        total_epochs=args.total_epochs,
        activation=args.activation,
        seed_arch=args.seed_arch,
        cost_metric=args.cost_metric,
        train=replace(base.train, seed=seed),
    )
    n_train = len(data.load_dataset(root, progress=False, splits=("train",)).splits["train"].labels)
    split = dict(
        clips=cfg.split_clips,
        position_stride=cfg.position_stride,
        sampling=cfg.split_sampling,
        mode="own" if arm == "own" else "exact",
    )
    if arm == "uniform":
        ref = json.loads((args.out / f"b{budget_k:g}_grown_s{seed}.json").read_text())
        return dict(
            arm=arm, budget_k=budget_k, seed=seed, **run_uniform(root, out, cfg, ref["params"], args.total_epochs)
        )
    if arm == "uniform_cm":  # as many epochs as the retrain arm's compute (its growth phase included) pays for
        ref = json.loads((args.out / f"b{budget_k:g}_grown_s{seed}.json").read_text())
        width = uniform_width(cfg.seed_arch, ref["params"])
        per_epoch = 3 * cost(models.resolve_arch(cfg.seed_arch).uniform(width), 12).macs * n_train
        epochs = max(args.total_epochs, round(ref["retrain"]["train_macs"] / per_epoch))
        res = run_uniform(root, out, cfg, ref["params"], epochs)
        return dict(arm=arm, budget_k=budget_k, seed=seed, matched_train_macs=ref["retrain"]["train_macs"], **res)
    if arm in RETRAIN_OF:  # produced by the growth arm's --compare-retrain
        src = args.out / f"b{budget_k:g}_{RETRAIN_OF[arm]}_s{seed}.json"
        ref = json.loads(src.read_text())
        if "retrain" not in ref:
            raise SystemExit(f"bench: {src} has no retrain run (made before the ablations retrained); delete it")
        return dict(ref["retrain"], arm=arm, budget_k=budget_k, seed=seed)
    g = run_grow(arm, root, out, cfg)
    rep = g["report"]
    fin = rep["final"]["continue"]
    res = dict(
        n_train=n_train,
        arm=arm,
        budget_k=budget_k,
        seed=seed,
        params=rep["params"],
        macs=rep["macs"],
        widths=[rep["arch"]["conv1_width"], *rep["arch"]["widths"]],
        rounds=len(rep["rounds"]) - 1,
        epochs=rep["total_epochs"],
        test_acc=fin["test_acc"],
        val_acc=_val_acc(fin["run_dir"], root),
        train_macs=training_macs(
            g["rounds"], rep["config"]["final_epochs"], n_train, None if arm == "random" else split
        ),
        split_s=sum(r.get("split_s", 0) for r in rep["rounds"]),
        train_s=sum(r.get("train_s", 0) for r in rep["rounds"]) + fin["train_s"],
    )
    res["growth_macs"] = training_macs(g["rounds"], 0, n_train, None if arm == "random" else split)
    if "retrain" in rep["final"]:
        rt = rep["final"]["retrain"]
        res["retrain"] = dict(
            params=rep["params"],
            macs=rep["macs"],
            epochs=rt["epochs"],
            test_acc=rt["test_acc"],
            val_acc=_val_acc(rt["run_dir"], root),
            train_s=rt["train_s"],
            # the search (growth phase) is part of the cost of the retrained model
            train_macs=3 * rep["macs"] * n_train * rt["epochs"] + res["growth_macs"],
        )
    return res


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mini = Path(__file__).resolve().parents[2] / "shared/data/speech_commands_mini"
    p.add_argument("--data", type=Path, default=mini)
    p.add_argument("--out", type=Path, default=Path("bench/out/grow_vs_fixed"))
    p.add_argument("--budgets", type=float, nargs="+", default=[22.6, 56.5, 135.0], help="kparams")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    p.add_argument("--total-epochs", type=int, default=40)
    p.add_argument("--seed-arch", default="seed")
    p.add_argument("--seed-width", type=int, default=32)
    p.add_argument("--seed-epochs", type=int, default=6)
    p.add_argument("--epochs-per-round", type=int, default=1)
    p.add_argument("--growth", type=float, default=0.5)
    p.add_argument("--activation", default=GrowConfig().activation, choices=models.ACTIVATIONS)
    p.add_argument("--cost-metric", default="params", choices=("params", "macs", "both"), help="selection's cost")
    p.add_argument("--summarize-only", action="store_true", help="aggregate every finished run in --out, run nothing")
    p.add_argument(
        "--include", type=Path, nargs="+", default=[], help="with --summarize-only: also the runs of these folders"
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    if args.summarize_only:
        args.budgets, args.seeds = [], []
        for d in [args.out, *args.include]:
            if not d.is_dir():
                raise SystemExit(f"bench: --include {d}: no such folder of grow_vs_fixed runs")
            refresh_compute(d)
            results += [json.loads(f.read_text()) for f in sorted(d.glob("b*_s*.json"))]
    elif "uniform_cm" in args.arms:
        refresh_compute(args.out)  # the matched compute must be the retrain arm's, counted the current way
    order = [a for a in ARMS if a in args.arms]
    for arm in list(order):  # an arm that reads a growth run needs that run first
        src = RETRAIN_OF.get(arm, "grown" if arm in ("uniform", "uniform_cm") else None)
        if src and src not in order:
            order.insert(order.index(arm), src)
    for budget in args.budgets:
        for seed in args.seeds:
            for arm in order:
                path = args.out / f"b{budget:g}_{arm}_s{seed}.json"
                if not path.is_file():
                    t0 = time.perf_counter()
                    res = one_run(arm, budget, seed, args, args.data)
                    res["wall_s"] = time.perf_counter() - t0
                    path.write_text(json.dumps(res, indent=1))
                    print(
                        f"bench: {path.name}: test {res['test_acc']:.4f} val {res['val_acc']:.4f} "
                        f"({res['wall_s']:.0f} s)",
                        file=sys.stderr,
                        flush=True,
                    )
                res = json.loads(path.read_text())
                if arm in args.arms:
                    results.append(res)
    summary = summarize(results)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    (args.out / "summary.md").write_text(markdown(summary))
    plot(summary, args.out / "grow_vs_fixed.png")
    print(
        json.dumps(
            dict(config=vars(args) | dict(data=str(args.data), out=str(args.out)), summary=summary),
            indent=1,
            default=str,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
