"""Deployed footprint of the Hello Edge presets and of grown models, beside the published reference figures.

For ds-cnn-s/m/l and every grown run directory (kws.checkpoint layout; by default bench/out/gvf/*_grown_s0/final),
kws.export.export_model(check_only=True) converts the model to int8 TFLite, calibrated on --calib-clips real clips
of the training split of --data, and measures it: deployed params and MACs (kws.cost), the int8 flatbuffer bytes
(flash), the tensor arena the real TFLite Micro interpreter allocates (head + tail), and total flash / RAM for
--target as the export report adds them (model + TFLM runtime estimate + C frontend; arena + frontend buffers).
Parity (float vs int8 top-1 on the test split) comes from the same report.

The presets are not trained to convergence: they are trained --train-epochs (default 1) on clean cached features
so that the int8 scales, the parity columns and the flatbuffer are those of a non-degenerate net. The arena does
not depend on the weights, but the flatbuffer does: at random init every folded bias is zero and the converter
shares identical constant buffers (ds-cnn-s: 25 distinct buffers instead of 33, 42,440 B instead of 46,296 B).
With --train-epochs 0 they stay random-init; if TFLM then aborts (docs/device.md: some int8 softmax scales of
untrained nets), that is recorded in the row's events and the preset is retried after one epoch.

Reference figures (docs/device.md) are printed beside each preset: Hello Edge params / MACs / peak activations,
the host TFLM arena measured earlier, the paper's float and ML-zoo's int8 accuracy; MicroNet-KWS-M is listed as a
peer (reported, not measured here). Output: JSON on stdout and in --out/footprint.json, bars in
--out/footprint.png, the export artifacts in --out/footprint/<name>/.

With --activations relu silu hardswish each preset is also measured with SiLU (LOGISTIC + MUL) and hard swish
(HARD_SWISH) in place of ReLU: same params and MACs, another arena (docs/results.md, "Activations").

Run: .venv/bin/python bench/footprint.py [--runs RUN_DIR ...] [--train-epochs 1] [--calib-clips 64]
     [--activations relu silu hardswish]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from kws import data, recipe, train
from kws.checkpoint import load_run
from kws.cost import cost
from kws.errors import KwsError
from kws.export import export_model, load_export_data, resolve_target
from kws.frontend import FrontendConfig
from kws.models import ACTIVATIONS, create

ROOT = Path(__file__).resolve().parents[1]
MINI = ROOT.parent / "shared" / "data" / "speech_commands_mini"
PRESET_NAMES = ("ds-cnn-s", "ds-cnn-m", "ds-cnn-l")

# docs/device.md: Hello Edge counts (TFLite graphs), the host TFLM arena, float (paper) and int8 (ML-zoo) top-1 %.
REFERENCE = {
    "ds-cnn-s": dict(
        params=22_604,
        macs=2_656_768,
        peak_activation_bytes=16_000,
        tflm_arena_bytes=24_624,
        float_acc_paper=94.4,
        int8_acc_mlzoo=93.11,
    ),
    "ds-cnn-m": dict(
        params=135_032,
        macs=9_816_384,
        peak_activation_bytes=54_180,
        tflm_arena_bytes=70_592,
        float_acc_paper=94.9,
        int8_acc_mlzoo=93.93,
    ),
    "ds-cnn-l": dict(
        params=410_700,
        macs=28_327_812,
        peak_activation_bytes=86_940,
        tflm_arena_bytes=115_744,
        float_acc_paper=95.4,
        int8_acc_mlzoo=94.52,
    ),
}
PEERS = [
    dict(
        name="MicroNet-KWS-M",
        params="~112K",
        flash_kb=182,
        arena_kb=100,
        int8_acc=95.8,
        source="docs/device.md (reported, not measured here)",
    )
]


def default_runs() -> list[Path]:
    return sorted(p for p in (ROOT / "bench/out/gvf").glob("*_grown_s0/final") if (p / "model.pt").is_file())


def run_name(run_dir: Path, taken: set[str]) -> str:
    """A short unique name: the run's parent folder for .../final (+ the suffix of .../final_retrain), else its own
    folder name."""
    base = run_dir.name
    if base == "final" or base.startswith("final_"):
        base = run_dir.parent.name + base[len("final") :]
    name, k = base, 1
    while name in taken:
        k += 1
        name = f"{base}_{k}"
    return name


def train_preset(name: str, dataset: data.Dataset, epochs: int, seed: int, activation: str = "relu") -> torch.nn.Module:
    """A preset trained `epochs` on clean cached features (0: random init), in eval mode."""
    torch.manual_seed(seed)
    model = create(name, activation=activation)
    if epochs:
        cfg = recipe.TrainConfig(epochs=epochs, augment=None, seed=seed)
        train.fit(model, dataset, cfg, progress=False, device="cpu")
    return model.eval()


def export_row(name: str, model, *, frontend, labels, export_data, out: Path, target, task) -> dict:
    """Export one model (check only) and keep the report's footprint figures."""
    t0 = time.perf_counter()
    rep = export_model(
        model,
        frontend=frontend,
        labels=labels,
        data=export_data,
        out_dir=out / "footprint" / name,
        target=target,
        check_only=True,
        task=task,
        progress=False,
        engine="tflm",  # this bench reports TFLM's footprint; bench/engine.py measures the generated engine
    )
    c = cost(model.spec, model.num_classes)
    par = rep["parity"]
    return dict(
        params=rep["params"],
        macs=rep["macs"],
        peak_activation_bytes=c.peak_activation_bytes,
        model_bytes=rep["model_bytes"],
        tflm_arena_bytes=rep["tflm_arena_bytes"],
        tflm_arena=rep["tflm_arena"],
        tflm_runtime_flash_bytes=rep["tflm_runtime_flash_bytes"],
        frontend_flash_bytes=rep["frontend"]["flash_bytes"],
        frontend_ram_bytes=rep["frontend"]["ram_bytes"],
        flash_bytes=rep["flash_bytes"],
        ram_bytes=rep["ram_bytes"],
        fits=rep["budget"]["fits_flash"] and rep["budget"]["fits_ram"],
        latency_ms_estimate=rep["latency_ms"],
        float_acc=round(100 * par["torch_accuracy"], 2),
        int8_acc=round(100 * par["int8_accuracy"], 2),
        int8_vs_float_top1_agreement=par["int8_vs_float_top1_agreement"],
        tflm_vs_tflite_max_lsb=par["tflm_vs_tflite_max_lsb"],
        test_clips=par["clips"],
        arch=[model.spec.conv1_width, *model.spec.widths],
        report=str(out / "footprint" / name / "report.json"),
        export_s=round(time.perf_counter() - t0, 1),
    )


def preset_rows(args, target, export_data, labels) -> list[dict]:
    frontend, task = FrontendConfig(), data.TaskConfig()
    dataset = (
        data.load_dataset(args.data, task=task, frontend=frontend, splits=("train", "validation"), progress=False)
        if args.train_epochs
        else None
    )
    rows = []
    for preset, activation in [(n, a) for a in args.activations for n in PRESET_NAMES]:
        name = preset if activation == "relu" else f"{preset}-{activation}"
        kw = dict(frontend=frontend, labels=labels, export_data=export_data, out=args.out, target=target, task=task)
        epochs, events = args.train_epochs, []
        t0 = time.perf_counter()
        model = train_preset(preset, dataset, epochs, args.seed, activation)
        try:
            row = export_row(name, model, **kw)
        except KwsError as e:
            if epochs:
                raise
            events.append(f"random init: {e}; retried after 1 epoch")
            epochs = 1
            dataset = data.load_dataset(
                args.data, task=task, frontend=frontend, splits=("train", "validation"), progress=False
            )
            row = export_row(name, train_preset(preset, dataset, epochs, args.seed, activation), **kw)
        weights = "random init" if epochs == 0 else f"{epochs} epoch(s), clean cached features, seed {args.seed}"
        rows.append(
            dict(
                name=name,
                kind="preset",
                activation=activation,
                weights=weights,
                events=events,
                **row,
                seconds=round(time.perf_counter() - t0, 1),
                reference=REFERENCE[preset] if activation == "relu" else None,  # Hello Edge's nets are ReLU
            )
        )
        print(f"footprint: {name} done in {rows[-1]['seconds']} s", file=sys.stderr, flush=True)
    return rows


def grown_rows(args, target, taken: set[str]) -> list[dict]:
    rows, cache = [], {}
    for run_dir in args.runs:
        run = load_run(run_dir)
        key = json.dumps([run.frontend.to_dict(), run.task.to_dict() if run.task else None], sort_keys=True)
        if key not in cache:
            cache[key] = load_export_data(
                args.data, frontend=run.frontend, task=run.task, calib_clips=args.calib_clips, progress=False
            )
        name = run_name(Path(run_dir), taken)
        taken.add(name)
        t0 = time.perf_counter()
        row = export_row(
            name,
            run.model,
            frontend=run.frontend,
            labels=run.labels,
            export_data=cache[key],
            out=args.out,
            target=target,
            task=run.task,
        )
        rows.append(
            dict(
                name=name,
                kind="run",
                weights=f"trained run {run_dir}",
                events=[],
                **row,
                seconds=round(time.perf_counter() - t0, 1),
                reference=None,
            )
        )
        print(f"footprint: {name} done in {rows[-1]['seconds']} s", file=sys.stderr, flush=True)
    return rows


def plot(rows: list[dict], target: dict, path: Path) -> None:
    """Stacked flash and RAM bars per model; reference arena ticks; MicroNet-KWS-M as a hatched peer bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in rows] + [p["name"] for p in PEERS]
    x = range(len(names))
    fig, (ax_f, ax_r) = plt.subplots(1, 2, figsize=(12, 4.5))
    kb = 1024
    parts_f = (
        ("model_bytes", "int8 model"),
        ("tflm_runtime_flash_bytes", "TFLM runtime (est.)"),
        ("frontend_flash_bytes", "C frontend"),
    )
    parts_r = (("tflm_arena_bytes", "TFLM arena (measured)"), ("frontend_ram_bytes", "frontend buffers"))
    for ax, parts in ((ax_f, parts_f), (ax_r, parts_r)):
        bottom = [0.0] * len(rows)
        for key, label in parts:
            vals = [r[key] / kb for r in rows]
            ax.bar(range(len(rows)), vals, bottom=bottom, label=label)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    for ax, key in ((ax_f, "flash_kb"), (ax_r, "arena_kb")):
        ax.bar(
            [len(rows) + i for i in range(len(PEERS))],
            [p[key] for p in PEERS],
            color="none",
            edgecolor="k",
            hatch="//",
            label="peer, reported",
        )
    ref = [(i, r["reference"]["tflm_arena_bytes"] / kb) for i, r in enumerate(rows) if r["reference"]]
    ax_r.scatter(
        [i for i, _ in ref], [v for _, v in ref], marker="_", s=600, color="k", zorder=3, label="docs/device.md arena"
    )
    ax_f.axhline(target["flash_budget_bytes"] / kb, ls="--", color="grey", label=f"{target['name']} budget")
    ax_r.axhline(target["ram_budget_bytes"] / kb, ls="--", color="grey", label=f"{target['name']} budget")
    for ax, title in ((ax_f, "flash (KiB)"), (ax_r, "RAM (KiB)")):
        ax.set_xticks(list(x), names, rotation=20, ha="right")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=MINI, help="dataset root: calibration and test clips")
    p.add_argument(
        "--runs",
        type=Path,
        nargs="*",
        default=None,
        help="grown run directories (default: bench/out/gvf/*_grown_s0/final)",
    )
    p.add_argument("--target", default="cortex-m4")
    p.add_argument("--calib-clips", type=int, default=64)
    p.add_argument("--train-epochs", type=int, default=1, help="epochs for the presets before export (0: random)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--activations", nargs="+", default=["relu"], choices=ACTIVATIONS, help="preset variants")
    p.add_argument("--out", type=Path, default=ROOT / "bench/out")
    args = p.parse_args(argv)
    args.runs = default_runs() if args.runs is None else args.runs
    torch.set_num_threads(1)  # the 2 cores are shared with other benchmarks
    t0 = time.perf_counter()
    target = resolve_target(args.target)
    task = data.TaskConfig()
    export_data = load_export_data(
        args.data, frontend=FrontendConfig(), task=task, calib_clips=args.calib_clips, progress=False
    )
    rows = preset_rows(args, target, export_data, task.labels)
    rows += grown_rows(args, target, {r["name"] for r in rows})
    result = dict(
        target=target.to_dict()
        | dict(flash_budget_bytes=target.flash_budget_bytes, ram_budget_bytes=target.ram_budget_bytes),
        data=str(args.data),
        calib_clips=args.calib_clips,
        train_epochs=args.train_epochs,
        test_clips=len(export_data.test_labels),
        models=rows,
        peers=PEERS,
        elapsed_s=round(time.perf_counter() - t0, 1),
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "footprint.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(rows, result["target"], args.out / "footprint.png")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
