"""The tables and the plot of bench/grow_vs_fixed.py: its arms, the summary over seeds (paired with the uniform net
of the same seed), the Markdown table and the validation/test figure. Torch-free; bench/int8_arms.py reads the arms
from here too.
"""

from __future__ import annotations

import statistics
from pathlib import Path

ARMS = ("grown", "retrain", "uniform", "uniform_cm", "own", "random", "own_retrain", "random_retrain")
RETRAIN_OF = {"retrain": "grown", "own_retrain": "own", "random_retrain": "random"}  # arm -> the growth run it retrains


def summarize(results: list[dict]) -> dict:
    table: dict = {}
    for r in results:
        table.setdefault(f"{r['budget_k']:g}K", {}).setdefault(r["arm"], []).append(r)
    out = {}
    for budget, arms in sorted(table.items(), key=lambda kv: float(kv[0][:-1])):
        out[budget] = {}
        for arm, rs in arms.items():
            counted = [r["train_macs"] for r in rs if "train_macs" in r]  # hand-written runs (kws grow) have none
            row = dict(
                n=len(rs),
                params=round(statistics.mean(r["params"] for r in rs)),
                macs=round(statistics.mean(r["macs"] for r in rs)),
                epochs=round(statistics.mean(r.get("epochs", 40) for r in rs), 1),
                train_gmacs=round(statistics.mean(counted) / 1e9, 1) if counted else None,
            )
            for key in ("test_acc", "val_acc"):
                vals = [100 * r[key] for r in rs]
                row[key] = round(statistics.mean(vals), 2)
                row[key + "_std"] = round(statistics.stdev(vals), 2) if len(vals) > 1 else None
            out[budget][arm] = row
        base = {r["seed"]: r for r in arms.get("uniform", [])}
        for arm, rs in arms.items():  # paired by seed: the same data order and init seed for both arms
            pairs = [(r, base[r["seed"]]) for r in rs if r["seed"] in base and arm != "uniform"]
            if pairs:
                d = {}
                for key in ("val_acc", "test_acc"):
                    diffs = [100 * (a[key] - b[key]) for a, b in pairs]
                    d[key] = round(statistics.mean(diffs), 2)
                    d[key + "_std"] = round(statistics.stdev(diffs), 2) if len(diffs) > 1 else None
                    d[key + "_wins"] = sum(x > 0 for x in diffs)
                out[budget][arm]["vs_uniform"] = dict(n=len(pairs), **d)
    return out


def markdown(summary: dict) -> str:
    """The summary as a Markdown table (test and validation accuracy, mean +- std over seeds)."""

    def pm(row: dict, key: str) -> str:
        std = row[key + "_std"]
        return f"{row[key]:.1f}" + (f" +- {std:.1f}" if std is not None else "")

    def paired(row: dict) -> str:
        d = row.get("vs_uniform")
        if not d:
            return ""
        return " / ".join(f"{d[k]:+.1f} ({d[k + '_wins']}/{d['n']})" for k in ("val_acc", "test_acc"))

    lines = [
        "| budget | arm | seeds | params | MACs | epochs | training GMACs | test % | val % "
        "| minus uniform, paired by seed: val / test (wins) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for budget, arms in summary.items():
        for arm in ARMS:
            if arm in arms:
                r = arms[arm]
                lines.append(
                    f"| {budget} | {arm} | {r['n']} | {r['params']:,} | {r['macs']:,} | {r['epochs']:g} | "
                    f"{'' if r['train_gmacs'] is None else r['train_gmacs']} | "
                    f"{pm(r, 'test_acc')} | {pm(r, 'val_acc')} | {paired(r)} |"
                )
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    panels = (("val_acc", "validation (recipes chosen here)"), ("test_acc", "test (as it came)"))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for arm in ARMS:
            pts = sorted(
                (v[arm]["params"], v[arm][key], v[arm][key + "_std"] or 0) for v in summary.values() if arm in v
            )
            if pts:
                ax.errorbar(
                    [p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts], marker="o", capsize=3, label=arm
                )
        ax.set_xscale("log")
        ax.set_xlabel("deployed parameters")
        ax.grid(alpha=0.3)
        ax.set_title(title)
    axes[0].set_ylabel("accuracy (%), mean +- std over seeds")
    axes[1].legend(fontsize=8)
    fig.suptitle("Grown vs fixed DS-CNNs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
