"""Fit the engine's cost model (kws.engine.costmodel) in QEMU and write kws/engine/cost_model.json.

For a set of DS-CNN specs (presets and non-uniform ones: widths from 8 to 300, strides (1,1), (2,2), (2,1), ReLU
and SiLU), untrained with realistic BatchNorm statistics and quantized on random calibration features (the
instruction counts do not depend on the weights' values), the generated engine runs in QEMU (-icount shift=0)
on every emulated core and each layer's instructions are read (KWS_NET_PROFILE). The coefficients are fitted on
the FIT specs and checked on the HELD_OUT ones, which the fit never saw: per core the JSON states the held-out
relative error of the whole inference and of each layer (a layer's bound: rel x measured + LAYER_SLACK
instructions, the SysTick resolution of the count), which tests/test_engine_costmodel.py then holds the model to.
Prints the JSON (per core: fit and held-out errors, predicted against measured totals) and writes --out.

Run: .venv/bin/python bench/engine_cost.py [--cores cortex-m4 ...] [--out kws/engine/cost_model.json]
     (about 10 minutes on 2 cores: 16 conversions, 80 QEMU runs)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from kws.engine import costmodel as cm  # noqa: E402
from kws.engine import generate  # noqa: E402
from kws.engine.build import write_model_settings  # noqa: E402
from kws.engine.measure import speed_clip  # noqa: E402
from kws.engine.qemu import CORES, build_app_image, run_app_image, write_clips  # noqa: E402
from kws.export import convert  # noqa: E402
from kws.files import atomic_write_text  # noqa: E402
from kws.models import PRESETS, ArchSpec  # noqa: E402

LAYER_SLACK = 400  # instructions: 10 SysTick ticks of 40 (the per-layer count's resolution) and call overheads
S, M = dict(strides=((1, 1),) * 4, conv1_stride=(2, 2)), dict(strides=((2, 2),) + ((1, 1),) * 3, conv1_stride=(2, 1))


def _spec(conv1, widths, geometry, activation="relu", **kw) -> ArchSpec:
    return ArchSpec(conv1_width=conv1, widths=tuple(widths), activation=activation, **{**geometry, **kw})


FIT = {
    "ds-cnn-s": PRESETS["ds-cnn-s"],
    "ds-cnn-m": PRESETS["ds-cnn-m"],
    "narrow-s": _spec(8, (12, 16, 10, 20), S),
    "wide-s-silu": _spec(120, (96, 140, 80, 160), S, "silu"),
    "odd-m": _spec(37, (53, 71, 29, 90), M),
    "wide-m-silu": _spec(200, (180, 240, 150, 300), M, "silu"),
    "strided": _spec(48, (64, 33, 80, 41), S, strides=((2, 1), (1, 1), (1, 2), (1, 1)), conv1_stride=(2, 1)),
    "tiny-silu": _spec(10, (9, 14, 11, 13), M, "silu"),
    "deep": _spec(64, (64, 64, 64, 64, 64, 64), dict(strides=((1, 1),) * 6, conv1_stride=(2, 2))),
}
HELD_OUT = {
    "ds-cnn-l": PRESETS["ds-cnn-l"],
    "grown-shape-22.6k-silu": _spec(38, (51, 64, 76, 90), S, "silu"),
    "grown-shape-135k": _spec(102, (136, 170, 204, 238), M),
    "grown-shape-300k-silu": _spec(154, (205, 256, 307, 358), M, "silu"),
}


def _model(spec: ArchSpec, seed: int = 0):
    """Untrained, BatchNorm statistics far from identity (kws.models.untrained), eval mode."""
    from kws.models import untrained

    return untrained(spec, seed=seed)


def measure_spec(spec: ArchSpec, cores: list[str]) -> dict:
    """{core: per-layer instructions} and the generated layers / fusion of one spec."""
    calibration = np.random.default_rng(0).normal(scale=4.0, size=(32, *spec.input_shape)).astype(np.float32)
    fb = convert.to_tflite_int8(_model(spec), calibration)
    with tempfile.TemporaryDirectory(prefix="kws_engine_cost_") as tmp:
        net = generate(fb, tmp)
        write_model_settings(fb, tmp)
        write_clips(tmp, speed_clip())
        per_core = {}
        for core in cores:
            elf = build_app_image(tmp, Path(tmp) / f"{core}.elf", core)
            per_core[core] = run_app_image(elf, core, timeout_s=600).layer_instructions[0].tolist()
    return dict(layers=list(net.layers), fused=net.plan.fused, measured=per_core)


def _errors(coef, runs: dict, core: str) -> dict:
    totals, layer_rel = [], []
    for run in runs.values():
        measured = np.asarray(run["measured"][core], float)
        pred = np.asarray(cm.predict_calls(run["layers"], run["fused"], coef))
        totals.append(dict(predicted=float(pred.sum()), measured=float(measured.sum())))
        for p, m in zip(pred, measured, strict=True):
            if m > 0 or p > 0:
                layer_rel.append(max(0.0, abs(p - m) - LAYER_SLACK) / max(m, 1.0))
    rel = [abs(t["predicted"] - t["measured"]) / t["measured"] for t in totals]
    return dict(
        max_rel_error=float(max(rel)),
        median_rel_error=float(np.median(rel)),
        layer_max_rel_error=float(max(layer_rel)),
        totals={name: t for name, t in zip(runs, totals, strict=True)},
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cores", nargs="+", default=list(CORES), choices=list(CORES))
    p.add_argument("--out", default=str(REPO / "kws" / "engine" / "cost_model.json"))
    args = p.parse_args(argv)
    t0 = time.time()
    fit_runs = {name: measure_spec(s, args.cores) for name, s in FIT.items()}
    held_runs = {name: measure_spec(s, args.cores) for name, s in HELD_OUT.items()}
    data = dict(
        engine_version=cm.engine_version(),
        what="instructions per engine layer, linear in its counts (kws.engine.costmodel); QEMU -icount shift=0",
        fitted_on={n: s.to_dict() for n, s in FIT.items()},
        held_out={n: s.to_dict() for n, s in HELD_OUT.items()},
        layer_slack_instructions=LAYER_SLACK,
        host=platform.processor() or platform.machine(),
        seconds=None,
        cores={},
    )
    for core in args.cores:
        samples = [(r["layers"], r["fused"], np.asarray(r["measured"][core])) for r in fit_runs.values()]
        coef = cm.fit(samples)
        fit_err, held = _errors(coef, fit_runs, core), _errors(coef, held_runs, core)
        data["cores"][core] = dict(
            coefficients=coef,
            fit_max_rel_error=fit_err["max_rel_error"],
            heldout_max_rel_error=held["max_rel_error"],
            heldout_median_rel_error=held["median_rel_error"],
            heldout_layer_max_rel_error=held["layer_max_rel_error"],
            layer_rel_error=max(fit_err["layer_max_rel_error"], held["layer_max_rel_error"]),
            heldout_totals=held["totals"],
        )
    data["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(data, indent=1)
    atomic_write_text(args.out, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
