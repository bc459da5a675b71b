"""Expected time of the full-dataset recipe in docs/results.md, measured on this machine's device and scaled up.

Speech Commands v0.02 cannot be downloaded here, so the recipe cannot be run whole. This bench runs the recipe's
own growth (same seed, budgets, growth cap, batch size, learning rate and splitting presets) on the real-speech
mini set with one epoch per phase, reads each phase's measured time from the growth report, and scales it:

- training time per epoch x (full training clips / mini training clips) x the recipe's epochs for that phase
  (seed: --seed-epochs; each round: --epochs-per-round at that round's width; the final phase at the final width:
  continued for the rest of --total-epochs, and retrained for all of them with --compare-retrain, at the
  continued epoch's measured time: the same architecture, the same training code);
- each splitting pass x (recipe split clips / clips it used here), since a pass is linear in its clips.

The number of rounds is the one measured here (set by the budgets and the growth cap, not by the data size).
Not included: reading and featurising the full dataset (once per run, before training). On a GPU the same command
measures the GPU (kws trains on `torch.cuda` when present).

Run: .venv/bin/python bench/recipe_time.py [--out bench/out/recipe_time] [--threads 2] [--full-train-clips 36923]
Prints JSON (also written to --out/recipe_time.json).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from kws import data
from kws.grow import grow
from kws.recipe import GrowConfig, TrainConfig

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT.parent / "shared" / "data" / "speech_commands_mini"

# The "Full dataset" command of docs/results.md (keep in step; tests/test_bench_recipe_time.py checks they agree).
RECIPE = dict(
    budget_kparams=300.0,
    budget_mmacs=20.0,
    seed_arch="seed-l",
    seed_width=64,
    seed_epochs=10,
    epochs_per_round=2,
    growth_per_round=0.5,
    total_epochs=150,
    split_clips=8192,
    compare_retrain=True,
    batch_size=256,
    lr=2e-3,
)
# 12-class v0.02 training split per epoch: the ten words' training files plus 10% silence and 10% unknown
# (docs/device.md conventions); 30,769 word files is the commonly reported count, not counted here.
FULL_TRAIN_CLIPS = 36_923


def probe_config(recipe: dict) -> GrowConfig:
    """The recipe's growth with one epoch per phase (the probe); its phase times are then scaled."""
    return GrowConfig(
        budget_kparams=recipe["budget_kparams"],
        budget_mmacs=recipe["budget_mmacs"],
        seed_arch=recipe["seed_arch"],
        seed_width=recipe["seed_width"],
        seed_epochs=1,
        epochs_per_round=1,
        growth_per_round=recipe["growth_per_round"],
        final_epochs=1,
        split_clips=recipe["split_clips"],
        finish="continue",  # the retrain trains the same final architecture: its epoch costs what this one does
        train=replace(TrainConfig(), batch_size=recipe["batch_size"], lr=recipe["lr"]),
    )


def extrapolate(report: dict, recipe: dict, mini_clips: int, full_clips: int) -> dict:
    """Seconds of each phase of the full recipe from the probe's growth report (one epoch per phase)."""
    scale = full_clips / mini_clips
    rounds = report["rounds"]
    seed_epoch = rounds[0]["train_s"] / report["config"]["seed_epochs"]
    growth_epochs = recipe["seed_epochs"] + recipe["epochs_per_round"] * (len(rounds) - 1)
    final_epochs = max(recipe["total_epochs"] - growth_epochs, 1)
    final_epoch = report["final"]["continue"]["train_s"] / report["final"]["continue"]["epochs"]
    passes = []
    for r in rounds[1:]:
        used = (r.get("split_pass") or {}).get("clips") or recipe["split_clips"]
        passes.append(r["split_s"] * recipe["split_clips"] / min(used, mini_clips))
    phases = dict(
        seed=seed_epoch * scale * recipe["seed_epochs"],
        rounds=sum(r["train_s"] for r in rounds[1:]) * scale * recipe["epochs_per_round"],
        splitting_passes=sum(passes),
        final_continued=final_epoch * scale * final_epochs,
        retrain=final_epoch * scale * recipe["total_epochs"] if recipe["compare_retrain"] else 0.0,
    )
    return dict(
        rounds=len(rounds) - 1,
        growth_epochs=growth_epochs,
        final_epochs=final_epochs,
        data_scale=scale,
        seconds=phases,
        total_hours=sum(phases.values()) / 3600,
        # without --compare-retrain the default finish (retrain) trains only the retrain: no continued phase
        default_finish_hours=(sum(phases.values()) - phases["final_continued"]) / 3600,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=MINI)
    p.add_argument("--out", type=Path, default=Path("bench/out/recipe_time"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--full-train-clips", type=int, default=FULL_TRAIN_CLIPS)
    args = p.parse_args(argv)
    if not (args.data / "validation_list.txt").exists():
        print(f"bench: --data {args.data} is not a Speech Commands folder (no validation_list.txt)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    device = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else f"cpu, {args.threads} threads"
    run = args.out / "probe"
    if run.exists() and not (run / "growth_report.json").exists():
        shutil.rmtree(run)  # an interrupted probe: its phase times would mix two sessions
    t0 = time.perf_counter()
    if (run / "growth_report.json").exists():
        report = json.loads((run / "growth_report.json").read_text())
    else:
        report = grow(args.data, run, probe_config(RECIPE))
    mini_clips = len(data.load_dataset(args.data, progress=False, splits=("train",)).splits["train"].labels)
    est = extrapolate(report, RECIPE, mini_clips, args.full_train_clips)
    out = dict(
        device=device,
        recipe=RECIPE,
        mini_train_clips=mini_clips,
        full_train_clips=args.full_train_clips,
        probe=dict(
            wall_s=time.perf_counter() - t0,
            widths=report["arch"]["widths"],
            params=report["params"],
            macs=report["macs"],
        ),
        estimate=est,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recipe_time.json").write_text(json.dumps(out, indent=1))
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
