"""The growth report: a self-contained HTML page (PNG figures embedded as data URIs, no network) plus the PNGs.

Figures: validation accuracy against deployed parameters and against MACs across rounds (the DS-CNN presets
marked for reference), per-layer widths over rounds, the minimum-eigenvalue spectra per layer per round,
predicted vs actual loss change per round, and the export footprint against the target's limits when the run
has been exported (report.json of `kws export` inside the run directory or beside it). The Markdown table
`kws grow` writes beside growth_report.json is kws.grow's (growth_markdown).
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from kws.cost import cost  # noqa: E402
from kws.errors import KwsError  # noqa: E402
from kws.models import PRESETS  # noqa: E402

REFERENCE_PRESETS = ("ds-cnn-s", "ds-cnn-m", "ds-cnn-l")


def _load(run_dir: Path) -> dict:
    path = run_dir / "growth_report.json"
    if not path.is_file():
        raise KwsError(f"{path} not found; run `kws grow --out {run_dir} ...` first (or --resume it)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise KwsError(f"{path} is not valid JSON ({e}); re-run `kws grow --resume --out {run_dir}`") from None


def _find_export(run_dir: Path) -> dict | None:
    for candidate in (run_dir / "export" / "report.json", *sorted(run_dir.glob("*/report.json"))):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError:
                return None
    return None


def _fig_accuracy(rounds: list[dict], final: dict, num_classes: int):
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, key, label in ((axes[0], "params", "deployed parameters"), (axes[1], "macs", "MACs")):
        xs = [r[key] for r in rounds]
        ax.plot(xs, [100 * r["val_acc"] for r in rounds], "o-", label="grown (per round)")
        for marker, (how, f) in zip("*P", sorted(final.items()), strict=False):
            if "val_acc" in f:  # the final stage(s), at the grown model's size
                ax.plot(xs[-1], 100 * f["val_acc"], marker, ms=12, label=f"final: {how}")
        for i, r in enumerate(rounds):
            ax.annotate(
                str(r["round"]), (xs[i], 100 * r["val_acc"]), fontsize=7, xytext=(3, 3), textcoords="offset points"
            )
        for name in REFERENCE_PRESETS:
            c = cost(PRESETS[name], num_classes)
            ax.axvline(c.params_deployed if key == "params" else c.macs, ls=":", color="gray")
            ax.text(
                c.params_deployed if key == "params" else c.macs,
                ax.get_ylim()[0],
                name,
                rotation=90,
                fontsize=7,
                color="gray",
                va="bottom",
            )
        ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.set_ylabel("validation accuracy (%)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Accuracy across rounds (presets marked for size reference)")
    return fig


def _fig_widths(rounds: list[dict]):
    fig, ax = plt.subplots(figsize=(6, 3.8))
    names = ["conv1"] + [f"block{i}" for i in range(len(rounds[0]["widths"]) - 1)]
    for j, name in enumerate(names):
        ax.plot([r["round"] for r in rounds], [r["widths"][j] for r in rounds], "o-", label=name)
    ax.set_xlabel("round")
    ax.set_ylabel("width (channels)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax.set_title("Per-layer widths over rounds")
    return fig


def _fig_spectra(rounds: list[dict]):
    with_spectra = [r for r in rounds if r.get("spectra")]
    layers = list(with_spectra[0]["spectra"]) if with_spectra else []
    fig, axes = plt.subplots(1, max(len(layers), 1), figsize=(2.6 * max(len(layers), 1), 3.6), squeeze=False)
    for ax, layer in zip(axes[0], layers, strict=False):
        for r in with_spectra:
            lam = sorted(r["spectra"][layer]["lambda_min"])
            ax.plot(range(len(lam)), lam, ".", ms=2, label=f"r{r['round']}")
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(layer, fontsize=9)
        ax.set_xlabel("unit (sorted)")
        ax.set_yscale("symlog", linthresh=1e-6)
    if layers:
        axes[0][0].set_ylabel("lambda_min")
        axes[0][-1].legend(fontsize=6)
    fig.suptitle("Minimum eigenvalue of S per unit, per layer and round")
    return fig


def _fig_dloss(rounds: list[dict]):
    rs = [r for r in rounds if "predicted_dloss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = [r["round"] for r in rs]
    ax.bar([i - 0.2 for i in x], [r["predicted_dloss"] for r in rs], width=0.4, label="predicted (eps^2/2 sum lam)")
    ax.bar([i + 0.2 for i in x], [r["actual_dloss"] for r in rs], width=0.4, label="actual, right after split")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("round")
    ax.set_ylabel("loss change on the splitting subset")
    ax.legend(fontsize=8)
    ax.set_title("Predicted vs actual loss change")
    return fig


def _fig_footprint(export: dict):
    target = export.get("target", {})
    name = target.get("name", "target") if isinstance(target, dict) else str(target)
    flash_lim = target.get("flash_bytes") if isinstance(target, dict) else None
    ram_lim = target.get("ram_bytes") if isinstance(target, dict) else None
    fig, ax = plt.subplots(figsize=(6, 3.2))
    used = [export.get("flash_bytes", 0) / 1024, export.get("ram_bytes", 0) / 1024]
    ax.barh(["flash", "RAM"], used, color=["tab:blue", "tab:orange"], label="model + runtime")
    for i, lim in enumerate((flash_lim, ram_lim)):
        if lim:
            ax.plot([lim / 1024] * 2, [i - 0.4, i + 0.4], "r-", lw=2)
            ax.text(lim / 1024, i + 0.42, "limit", color="r", fontsize=7)
    ax.set_xlabel("KiB")
    ax.set_title(f"Export footprint on {name}")
    return fig


def _png(fig, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return base64.b64encode(path.read_bytes()).decode()


def _device_check_table(run_dir: Path) -> list[str]:
    """kws.devicecheck's rows: each figure as growth predicted it, as measured on the target, and its budget."""
    path = run_dir / "device_check.json"
    if not path.is_file():
        return []
    check = json.loads(path.read_text())

    def fmt(v, unit):
        return "" if v is None else (f"{v:,.1f}" if unit == "ms" else f"{int(v):,}")

    verdict = "every figure within its budget" if check["ok"] else "OVER BUDGET: " + "; ".join(check["failures"])
    parts = [
        f"<h2>On the target: {html.escape(check['core'])} at {check['clock_mhz']:g} MHz "
        f"({'measured in QEMU' if check['measured'] else 'estimated: QEMU or the cross compiler is missing'})</h2>",
        f"<p>{html.escape(verdict)}</p><table border=1 cellpadding=3><tr><th>figure</th><th>predicted</th>"
        "<th>measured</th><th>error</th><th>budget</th><th>unit</th><th>basis</th></tr>",
    ]
    for r in check["rows"]:
        err = "" if r["error"] is None else f"{r['error']:+.1%}"
        cells = (r["figure"], fmt(r["predicted"], r["unit"]), fmt(r["measured"], r["unit"]), err)
        cells += (fmt(r["budget"], r["unit"]), r["unit"], r["basis"])
        parts.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return [*parts, "</table>"]


def write_report(run_dir: str | Path) -> Path:
    """Write report.html and its PNGs into run_dir/report/; returns the HTML path."""
    run_dir = Path(run_dir)
    rep = _load(run_dir)
    rounds = rep["rounds"]
    num_classes = 12
    out = run_dir / "report"
    out.mkdir(exist_ok=True)
    figures = [
        ("accuracy", "Accuracy vs parameters and MACs", _fig_accuracy(rounds, rep["final"], num_classes)),
        ("widths", "Per-layer widths", _fig_widths(rounds)),
        ("spectra", "Eigenvalue spectra", _fig_spectra(rounds)),
        ("dloss", "Predicted vs actual loss change", _fig_dloss(rounds)),
    ]
    export = _find_export(run_dir)
    if export:
        figures.append(("footprint", "Export footprint", _fig_footprint(export)))
    parts = [
        f"<h1>kws growth report</h1><p>{html.escape(str(run_dir))}</p>",
        f"<p>{rep['params']:,} deployed parameters, {rep['macs']:,} MACs, "
        f"{rep['peak_activation_bytes']:,} B peak activations.</p><table border=1 cellpadding=3>"
        "<tr><th>finish</th><th>epochs</th><th>test accuracy</th></tr>",
    ]
    for how, f in rep["final"].items():
        parts.append(f"<tr><td>{html.escape(how)}</td><td>{f['epochs']}</td><td>{100 * f['test_acc']:.2f}%</td></tr>")
    parts.append("</table>")
    parts += _device_check_table(run_dir)
    for key, title, fig in figures:
        data = _png(fig, out / f"{key}.png")
        parts.append(f'<h2>{html.escape(title)}</h2><img id="{key}" alt="{key}" src="data:image/png;base64,{data}">')
    det = Path(((export or {}).get("stream") or {}).get("det_png", ""))  # an export made with --operating-point
    if det.is_file():
        data = base64.b64encode(det.read_bytes()).decode()
        parts.append(f'<h2>Streaming DET curve</h2><img id="det" alt="det" src="data:image/png;base64,{data}">')
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>kws growth report</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}img{max-width:100%}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    path = out / "report.html"
    path.write_text(page)
    return path
