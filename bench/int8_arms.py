"""int8 accuracy after export for the arms of bench/grow_vs_fixed.py: float vs int8 top-1 on the test split.

Every finished run directory of grow_vs_fixed (grown, own, random: final/; their retrains: final_retrain/; uniform
and uniform_cm: the run itself) is exported for cortex-m4 with `kws.export.export_run(check_only=True)` (int8
calibrated on 200 stratified training clips) and the report's parity block is collected. An export already in
--out/int8 is read back instead of redone (resumable). JSON on stdout and in --out/int8_arms.json.

    .venv/bin/python bench/int8_arms.py --seeds 0
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from gvf_summary import RETRAIN_OF

from kws.export import export_run


def run_dir_of(arm: str) -> str:
    """Where an arm's model lies inside its run folder (a retrain lies inside the growth run it retrains)."""
    return "final_retrain" if arm in RETRAIN_OF else "." if arm.startswith("uniform") else "final"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench/out/gvf"))
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--budgets", type=float, nargs="+", help="kparams (default: every budget in --out)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for summary in sorted(args.out.glob("b*_s*.json")):
        r = json.loads(summary.read_text())
        if r["seed"] not in args.seeds or (args.budgets and r["budget_k"] not in args.budgets):
            continue
        stem = summary.stem.replace(f"_{r['arm']}_", f"_{RETRAIN_OF.get(r['arm'], r['arm'])}_")
        run = (args.out / stem / run_dir_of(r["arm"])).resolve()
        if not (run / "model.pt").is_file():
            continue
        done = args.out / "int8" / summary.stem / "report.json"
        if done.is_file():
            rep = json.loads(done.read_text())
        else:
            rep = export_run(run, done.parent, check_only=True, progress=False)
        par = rep["parity"]
        rows.append(
            dict(
                budget_k=r["budget_k"],
                arm=r["arm"],
                seed=r["seed"],
                params=rep["params"],
                float_acc=par["torch_accuracy"],
                int8_acc=par["int8_accuracy"],
                agreement=par["int8_vs_float_top1_agreement"],
                arena_bytes=rep["tflm_arena_bytes"],
                flash_bytes=rep["flash_bytes"],
                ram_bytes=rep["ram_bytes"],
            )
        )
        print(
            f"int8: {summary.stem}: float {par['torch_accuracy']:.4f} int8 {par['int8_accuracy']:.4f}",
            file=sys.stderr,
            flush=True,
        )
    (args.out / "int8_arms.json").write_text(json.dumps(rows, indent=1))
    print(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
