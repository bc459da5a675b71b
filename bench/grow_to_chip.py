"""Does growing under the chip's own time budget find a better network than counting MACs? (issue 16, "Evidence")

The budget is the Nano 33 BLE Sense's real-time budget: its 200 ms inference period less 10 frontend hops, at
64 MHz and 1 instruction per cycle (Target.inference_budget_ms, 181.07 ms = 11.59 M instructions). The same
budget is then taken on a Cortex-M7 core at the same 64 MHz, so that the two cores' instruction counts are compared
at one budget. Arms, per core and seed, at equal total epochs:
  ms       kws grow --budget-ms (the engine's cost model, fitted in QEMU on the core; each split charged its
           marginal predicted instructions, the hard budget its prediction + the model's stated error)
  macs     kws grow --budget-mmacs set to the same latency: the budget's instructions over the engine's measured
           instructions per MAC on ds-cnn-s for the core (Target.engine_instructions_per_mac); splits charged MACs
  uniform  the seed's geometry at the widest uniform width whose predicted time (+ the stated error) keeps the budget
  macs_matched  kws grow --budget-mmacs calibrated after the fact to the same measured latency: the budget's
           instructions over the instructions per MAC the macs arm's grown networks measured in QEMU (mean over
           seeds) -- the best a MAC budget can do once someone has measured the chip
Every final model is exported with the engine and run in QEMU on the core at 64 MHz: the latency on the x axis is
measured (QEMU instructions / 64 MHz), never predicted. Validation accuracy is for choosing; test is reported as it
comes. Runs that do not depend on the core (the macs and uniform arms when both cores give the same MAC budget and
width) are run once and reused, and the JSON says so.

Each finished run is a JSON file under --out, skipped when the script is re-run (resumable); --jobs runs that many
at once, each on --threads torch threads. The summary (mean, std, paired differences per seed) goes to stdout and
--out/summary.json, the plot to --out/grow_to_chip.png.

    .venv/bin/python bench/grow_to_chip.py --seeds 0 1 2 --total-epochs 12 --jobs 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

from host import cpu_name

ARMS = ("ms", "macs", "uniform", "macs_matched")


def budgets(core: str, clock_mhz: float) -> dict:
    from kws.engine import costmodel
    from kws.export.targets import TARGETS
    from kws.models import resolve_arch
    from kws.recipe import GrowConfig

    budget_ms = TARGETS["cortex-m4"].inference_budget_ms(10, 20.0, clock_mhz)
    instr = budget_ms * clock_mhz * 1e3
    seed = replace(resolve_arch(GrowConfig().seed_arch), activation=GrowConfig().activation)
    margin = costmodel.margin(core)
    lo, hi = 1, 512
    while lo < hi:  # the widest uniform width that keeps the budget, by the same rule growth uses
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if costmodel.instructions(seed.uniform(mid), core) * (1 + margin) <= instr else (lo, mid - 1)
    mmacs = instr / TARGETS[core].engine_instructions_per_mac / 1e6
    return dict(budget_ms=round(budget_ms, 3), instructions=int(instr), mmacs=round(mmacs, 4), uniform_width=lo)


def _key(arm: str, core: str, seed: int, b: dict) -> str:
    if arm == "ms":
        return f"ms_{core}_s{seed}"
    if arm == "macs":
        return f"macs_{b['mmacs']:g}M_s{seed}"
    if arm == "macs_matched":
        return f"macs_{b['mmacs_matched']:g}M_s{seed}"
    return f"uniform_w{b['uniform_width']}_s{seed}"


def _measure(run_dir: Path, core: str, clock_mhz: float, root: Path) -> dict:
    from kws.export import export_run

    out = run_dir / f"export_{core}"
    rep = export_run(run_dir, out, target=core, check_only=True, clock_mhz=clock_mhz, data_root=root, progress=False)
    rt, eng = rep["realtime"], rep["kws_engine"]
    return dict(
        measured=eng["measured"],
        inference_ms=rt["inference_ms"],
        instructions=rt["instructions_per_inference"],
        engine_ram_bytes=eng["engine_ram_bytes"],
        const_bytes=eng["network"]["const_bytes"],
        int8_test_acc=rep["parity"]["int8_accuracy"],
        time_basis=rt["basis"],
    )


def one_run(arm: str, core: str, seed: int, b: dict, args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from kws import data, models, train
    from kws.accuracy import evaluate
    from kws.cost import cost
    from kws.engine import costmodel
    from kws.features import features
    from kws.grow import grow
    from kws.recipe import GrowConfig

    out = args.out / _key(arm, core, seed, b)
    base = GrowConfig(
        seed=seed, total_epochs=args.total_epochs, seed_epochs=args.seed_epochs, clock_mhz=args.clock_mhz, core=core
    )
    t0 = time.perf_counter()
    if arm in ("ms", "macs", "macs_matched"):
        mmacs = b["mmacs_matched"] if arm == "macs_matched" else b["mmacs"]
        cfg = (
            replace(base, budget_ms=b["budget_ms"], cost_metric="ms")
            if arm == "ms"
            else replace(base, budget_mmacs=mmacs, cost_metric="macs")
        )
        rep = grow(args.data, out, cfg, resume=out.exists())
        final = rep["final"][cfg.finish]
        spec = models.ArchSpec.from_dict(rep["arch"])
        run_dir, test_acc, val_acc = Path(final["run_dir"]), final["test_acc"], final["val_acc"]
        stop = rep["rounds"][-1].get("stop", "")
    else:
        ds = data.load_dataset(args.data, progress=False)
        spec = replace(models.resolve_arch(base.seed_arch).uniform(b["uniform_width"]), activation=base.activation)
        torch.manual_seed(seed + 1)
        model = models.DSCNN(spec, num_classes=len(ds.labels))
        tc = replace(base.train, epochs=args.total_epochs, seed=seed * 1009 + 20_000)
        train.fit(model, ds, tc, run_dir=out, resume=out.exists())
        test, val = ds.splits["test"], ds.splits["validation"]
        test_acc = evaluate(model, features(test, ds.frontend), test.labels)["acc"]
        val_acc = evaluate(model, features(val, ds.frontend), val.labels)["acc"]
        run_dir, stop = out, ""
    c = cost(spec)
    return dict(
        arm=arm,
        core=core,
        seed=seed,
        key=out.name,
        arch=spec.to_dict(),
        params=c.params_deployed,
        macs=c.macs,
        predicted_ms=costmodel.instructions(spec, core) / (args.clock_mhz * 1e3),
        test_acc=test_acc,
        val_acc=val_acc,
        stop=stop,
        devices={k: _measure(run_dir, k, args.clock_mhz, args.data) for k in args.cores},
        wall_s=time.perf_counter() - t0,
    )


def _job(arm, core, seed, b, args, path: Path) -> dict:
    res = one_run(arm, core, seed, b, args)
    path.write_text(json.dumps(res, indent=1))
    print(
        f"bench: {path.name}: val {res['val_acc']:.4f} test {res['test_acc']:.4f} "
        f"{res['devices'][core]['inference_ms']:.1f} ms measured ({res['wall_s']:.0f} s)",
        file=sys.stderr,
        flush=True,
    )
    return res


def _matched_mmacs(args, core: str, b: dict) -> float:
    """The MAC budget that lands on the time budget, from the macs arm's measured instructions per MAC."""
    runs = [json.loads((args.out / f"{_key('macs', core, s, b)}.json").read_text()) for s in args.seeds]
    per_mac = statistics.fmean(r["devices"][core]["instructions"] / r["macs"] for r in runs)
    return round(b["instructions"] / per_mac / 1e6, 4)


def _stats(xs: list[float]) -> dict:
    return dict(mean=statistics.fmean(xs), std=statistics.stdev(xs) if len(xs) > 1 else 0.0, n=len(xs))


def summarize(results: dict, cores: list[str], seeds: list[int], b: dict) -> dict:
    out = {}
    for core in cores:
        arms = {}
        for arm in ARMS:
            runs = [results[(arm, core, s)] for s in seeds if (arm, core, s) in results]
            if not runs:
                continue
            arms[arm] = dict(
                runs=len(runs),
                keys=[r["key"] for r in runs],
                val_acc=_stats([r["val_acc"] for r in runs]),
                test_acc=_stats([r["test_acc"] for r in runs]),
                measured_ms=_stats([r["device"]["inference_ms"] for r in runs]),
                predicted_ms=_stats([r["predicted_ms"] for r in runs]),
                params=_stats([r["params"] for r in runs]),
                macs=_stats([r["macs"] for r in runs]),
                over_budget=sum(r["device"]["inference_ms"] > b[core]["budget_ms"] for r in runs),
            )
        paired = {}
        for other in ("macs", "uniform", "macs_matched"):
            pairs = [
                (results[("ms", core, s)], results[(other, core, s)])
                for s in seeds
                if ("ms", core, s) in results and (other, core, s) in results
            ]
            if pairs:
                paired[f"ms_minus_{other}"] = dict(
                    val=[a["val_acc"] - o["val_acc"] for a, o in pairs],
                    test=[a["test_acc"] - o["test_acc"] for a, o in pairs],
                    ms=[a["device"]["inference_ms"] - o["device"]["inference_ms"] for a, o in pairs],
                )
        out[core] = dict(budget=b[core], arms=arms, paired=paired)
    return out


def plot(results: dict, budget: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cores = sorted({k[1] for k in results})
    fig, axes = plt.subplots(1, len(cores), figsize=(6 * len(cores), 4.5), squeeze=False)
    for ax, core in zip(axes[0], cores, strict=True):
        for arm, marker in zip(ARMS, "os^D", strict=True):
            rs = [r for k, r in results.items() if k[0] == arm and k[1] == core]
            ax.scatter(
                [r["device"]["inference_ms"] for r in rs],
                [100 * r["test_acc"] for r in rs],
                marker=marker,
                label=f"{arm} (test)",
            )
            ax.scatter(
                [r["device"]["inference_ms"] for r in rs],
                [100 * r["val_acc"] for r in rs],
                marker=marker,
                facecolors="none",
                edgecolors="gray",
                label=f"{arm} (val)",
            )
        ax.axvline(budget[core]["budget_ms"], color="red", linestyle="--", label="budget")
        ax.set_xlabel(f"inference ms on {core} at 64 MHz (measured in QEMU)")
        ax.set_ylabel("accuracy %")
        ax.set_title(core)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mini = Path(__file__).resolve().parents[2] / "shared/data/speech_commands_mini"
    p.add_argument("--data", type=Path, default=mini)
    p.add_argument("--out", type=Path, default=Path("bench/out/grow_to_chip"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--cores", nargs="+", default=["cortex-m4", "cortex-m7"])
    p.add_argument("--clock-mhz", type=float, default=64.0)
    p.add_argument("--total-epochs", type=int, default=12)
    p.add_argument("--seed-epochs", type=int, default=2)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--summarize-only", action="store_true", help="run nothing; summarize the finished runs in --out")
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    b = {core: budgets(core, args.clock_mhz) for core in args.cores}
    results, owner, t0 = {}, {}, time.perf_counter()
    for phase in (ARMS[:3], ARMS[3:]):  # macs_matched is calibrated on the finished macs runs
        if phase == ARMS[3:]:
            for core in args.cores:
                b[core]["mmacs_matched"] = _matched_mmacs(args, core, b[core])
        jobs = []
        for core in args.cores:  # the first core's runs first: later cores reuse its core-free arms
            for seed in args.seeds:
                for arm in phase:
                    key = _key(arm, core, seed, b[core])
                    owner.setdefault(key, (arm, core, seed))
                    path = args.out / f"{key}.json"
                    if not path.is_file() and owner[key] == (arm, core, seed) and not args.summarize_only:
                        jobs.append((arm, core, seed, b[core], args, path))
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            for f in [pool.submit(_job, *j) for j in jobs]:
                f.result()
    for seed in args.seeds:
        for core in args.cores:
            for arm in ARMS:
                key = _key(arm, core, seed, b[core])
                if not (args.out / f"{key}.json").is_file():
                    continue  # --summarize-only before every run finished
                res = json.loads((args.out / f"{key}.json").read_text())
                reused = None if res["core"] == core else res["core"]
                results[(arm, core, seed)] = dict(res, device=res["devices"][core], reused_from=reused)
    summary = summarize(results, args.cores, args.seeds, b)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(results, b, args.out / "grow_to_chip.png")
    cfg = dict(vars(args), data=str(args.data), out=str(args.out), cpu=cpu_name(), wall_s=time.perf_counter() - t0)
    print(json.dumps(dict(config=cfg, summary=summary), indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
