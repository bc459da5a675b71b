"""`kws export`: one trained model -> every deployable artifact, its parity checks and its footprint report.

Artifacts in out_dir:
    model_int8.tflite (+ model_int8.json)    full-integer int8, what the device runs (kws eval reads the JSON)
    model_float.tflite (+ model_float.json)  float32 reference of the same graph
    model.onnx                               torch.onnx export, checked with onnxruntime
    model_data.h / model_data.c              the int8 flatbuffer as an aligned const C array (flash)
    kws_settings.h, kws_tables.h/.c          from kws.firmware.write_settings: frontend, labels, quantization
    report.json, report.md                   figures (MACs, params, bytes, arena, flash, RAM, latency), parity
    project/                                 the ready-to-build folder, when kws.firmware.assemble_project exists
With check_only the models and the report are written but no device files, and nothing fails; without it a model
whose lower bounds already exceed the target fails before converting, and an over-budget one raises
BudgetExceeded after report.json is written (so the numbers can be read).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kws.cost import cost as model_cost
from kws.errors import KwsError
from kws.export import carrays, convert, footprint, parity, report
from kws.export.targets import PLATFORMS, Target, resolve_target
from kws.export.tflite_model import write_meta
from kws.export.tflm import measure_arena
from kws.features import features
from kws.files import atomic_write_bytes
from kws.frontend import FrontendConfig
from kws.models import DSCNN

DEFAULT_CALIB_CLIPS = 200
CALIB_SEED = 59185


@dataclass(frozen=True, kw_only=True)
class ExportData:
    """Features the export needs: a calibration subset of training clips and the labelled test split."""

    calibration: np.ndarray  # float32 (N, frames, coeffs)
    calibration_names: list[str]  # which clips, recorded in the report
    test_features: np.ndarray
    test_labels: np.ndarray  # int64 (M,)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _firmware():
    try:
        from kws import firmware
    except ImportError:
        return None
    return firmware


def _quantization(int8_path: Path) -> dict:
    from kws.export.tflite_model import TFLiteModel

    m = TFLiteModel(int8_path)
    return dict(
        input_scale=m.input_scale,
        input_zero_point=m.input_zero_point,
        output_scale=m.output_scale,
        output_zero_point=m.output_zero_point,
    )


def _write_models(
    model: DSCNN, frontend: FrontendConfig, labels: list[str], data: ExportData, out: Path, meta: dict, bar: tqdm
) -> dict:
    bar.set_description("int8 TFLite")
    int8 = convert.to_tflite_int8(model, data.calibration)
    bar.update()
    bar.set_description("float TFLite + ONNX")
    flt = convert.to_tflite_float(model)
    meta = dict(meta, arch=model.spec.to_dict(), calibration_clips=len(data.calibration_names))
    paths = dict(int8=out / "model_int8.tflite", float=out / "model_float.tflite", onnx=out / "model.onnx")
    for key, blob in (("int8", int8), ("float", flt)):
        atomic_write_bytes(paths[key], blob)
        write_meta(paths[key], labels=labels, frontend=frontend, extra=dict(meta, sha256=_sha256(blob)))
    convert.to_onnx(model, paths["onnx"])
    bar.update()
    return dict(paths=paths, int8=int8)


def _measure(model: DSCNN, models: dict, data: ExportData, bar: tqdm) -> tuple[dict, dict]:
    """(TFLM arena usage, parity figures) of the written models."""
    bar.set_description("TFLM arena")
    arena = measure_arena(models["int8"]).to_dict()
    bar.update()
    bar.set_description("parity")
    paths = models["paths"]
    checks = parity.parity_report(
        model, paths["float"], paths["int8"], paths["onnx"], data.test_features, data.test_labels
    )
    bar.update()
    return arena, checks


def _report(model, frontend, labels, data, target, models, arena, checks, costs) -> dict:
    ops = convert.graph_ops(models["int8"])
    names = data.calibration_names
    extra = dict(
        model_sha256=_sha256(models["int8"]),
        quantization=_quantization(models["paths"]["int8"]),
        arch=model.spec.to_dict(),
        labels=list(labels),
        calibration=dict(clips=len(names), seed=CALIB_SEED, split="train", names=names),
    )
    return report.build_report(
        cost=costs,
        target=target,
        model_bytes=len(models["int8"]),
        arena=arena,
        runtime_flash_bytes=footprint.tflm_runtime_flash_bytes(ops),
        frontend=footprint.frontend_footprint(frontend, target.name, labels),
        ops=ops,
        parity=checks,
        extra=extra,
    )


def _write_device_files(
    out: Path,
    int8: bytes,
    frontend: FrontendConfig,
    labels: list[str],
    rep: dict,
    target: Target,
    platform: str,
    device=None,
) -> list[str]:
    """model_data.h/.c, the firmware settings and, when available, the assembled project; returns file names."""
    q, sha = rep["quantization"], rep["model_sha256"]
    figures = dict(
        flash_bytes=rep["flash_bytes"],
        ram_bytes=rep["ram_bytes"],
        macs=rep["macs"],
        tflm_arena_bytes=rep["tflm_arena_bytes"],
        model_bytes=rep["model_bytes"],
    )
    banner = (
        f"GENERATED by kws export from model sha256={sha}; flash_bytes={figures['flash_bytes']} "
        f"ram_bytes={figures['ram_bytes']} macs={figures['macs']}. Do not edit."
    )
    written = carrays.write_model_array(out, int8, banner)
    firmware = _firmware()
    if firmware is None or not hasattr(firmware, "write_settings"):
        return [p.name for p in written]
    ops = sorted(set(rep["ops"]))
    written += firmware.write_settings(
        out,
        frontend,
        labels,
        q["input_scale"],
        q["input_zero_point"],
        q["output_scale"],
        q["output_zero_point"],
        sha,
        figures,
        arena_bytes=rep["tflm_arena_bytes"],
        ops=ops,
        **({"device": device} if device is not None else {}),  # a stream-eval operating point (kws.streamreport)
    )
    names = [Path(p).name for p in written]
    if hasattr(firmware, "assemble_project"):
        project = firmware.assemble_project(out / "project", target.name, platform=platform, generated_dir=out)
        names.append(str(Path(project).relative_to(out)) if Path(project).is_relative_to(out) else str(project))
    return names


def export_model(
    model: DSCNN,
    *,
    frontend: FrontendConfig,
    labels: list[str],
    data: ExportData,
    out_dir: str | Path,
    target: Target,
    check_only: bool = False,
    platform: str | None = None,
    source: dict | None = None,
    task=None,
    progress: bool = True,
    device=None,
    stream: dict | None = None,
) -> dict:
    """Convert, check and measure `model` for `target`; write the artifacts and the report; return the report.

    Raises BudgetExceeded (after writing report.json) when the model does not fit and check_only is False.
    source (run_dir, data_root) and task (a kws.data.TaskConfig) go into the metadata beside each .tflite, so that
    `kws eval --model model_int8.tflite --data DIR` rebuilds the same task.
    """
    platform = platform or target.platform
    if platform not in PLATFORMS:
        raise KwsError(f"--platform: {platform!r} is not one of {', '.join(PLATFORMS)}")
    if len(labels) != model.num_classes:
        raise KwsError(f"export: {len(labels)} labels for a {model.num_classes}-class model")
    costs = model_cost(model.spec, model.num_classes)
    if not check_only:
        report.precheck_budget(costs, target, footprint.computed_frontend_footprint(frontend))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tqdm(total=4, desc="export", disable=not progress, leave=False) as bar:
        meta = dict(data_root=(source or {}).get("data_root"), task=task.to_dict() if task is not None else None)
        models = _write_models(model.eval(), frontend, labels, data, out, meta, bar)
        arena, checks = _measure(model, models, data, bar)
    rep = _report(model, frontend, labels, data, target, models, arena, checks, costs)
    rep.update(source=source or {}, platform=platform, **({"stream": stream} if stream else {}))
    fits = rep["budget"]["fits_flash"] and rep["budget"]["fits_ram"]
    rep["files"] = (
        []
        if check_only or not fits
        else _write_device_files(out, models["int8"], frontend, labels, rep, target, platform, device)
    )
    report.write_report(out, rep)
    if not check_only:
        report.check_budget(rep)
    return rep


def load_export_data(
    data_root: str | Path, *, frontend: FrontendConfig, task=None, calib_clips: int, progress: bool = True
) -> ExportData:
    """Calibration (a fixed stratified subset of the training split) and test features from a dataset root."""
    from kws import data as kdata

    kw = dict(frontend=frontend, splits=("train", "test"), progress=progress)
    if task is not None:
        kw["task"] = task
    dataset = kdata.load_dataset(Path(data_root), **kw)
    train, test = dataset.splits["train"], dataset.splits["test"]
    if calib_clips < 1:
        raise KwsError(f"--calib-clips: must be >= 1, got {calib_clips}")
    index = np.asarray(kdata.stratified_subset(train.labels, min(calib_clips, len(train.labels)), CALIB_SEED))
    train_features = features(train, frontend, progress=progress)
    return ExportData(
        calibration=np.asarray(train_features[index], np.float32),
        calibration_names=[train.paths[i] for i in index],
        test_features=np.asarray(features(test, frontend, progress=progress), np.float32),
        test_labels=np.asarray(test.labels, np.int64),
    )


def export_run(
    run_dir: str | Path,
    out_dir: str | Path,
    target: str = "cortex-m4",
    check_only: bool = False,
    *,
    flash_kb: int | None = None,
    ram_kb: int | None = None,
    clock_mhz: float | None = None,
    calib_clips: int = DEFAULT_CALIB_CLIPS,
    platform: str | None = None,
    data_root: str | Path | None = None,
    progress: bool = True,
    device=None,
    stream: dict | None = None,
) -> dict:
    """Export a trained run directory (kws.checkpoint layout) for `target`; see export_model."""
    from kws.checkpoint import load_run

    tgt = resolve_target(target, flash_kb=flash_kb, ram_kb=ram_kb, clock_mhz=clock_mhz)
    run = load_run(run_dir)
    if not check_only:  # fail in a second, before loading clips, when even the lower bounds do not fit
        report.precheck_budget(
            model_cost(run.spec, run.model.num_classes), tgt, footprint.computed_frontend_footprint(run.frontend)
        )
    root = data_root or run.data_root
    if not root or not Path(root).is_dir():
        raise KwsError(
            f"--data: the run's dataset root {root!r} is not available; pass --data DIR (calibration "
            "clips come from its training split, accuracy from its test split)"
        )
    data = load_export_data(root, frontend=run.frontend, task=run.task, calib_clips=calib_clips, progress=progress)
    source = dict(run_dir=str(run_dir), data_root=str(root))
    return export_model(
        run.model,
        frontend=run.frontend,
        labels=run.labels,
        data=data,
        out_dir=out_dir,
        target=tgt,
        check_only=check_only,
        platform=platform,
        source=source,
        task=run.task,
        progress=progress,
        device=device,
        stream=stream,
    )
