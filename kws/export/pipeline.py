"""`kws export`: one trained model -> every deployable artifact, its parity checks and its footprint report.

Artifacts in out_dir:
    model_int8.tflite (+ model_int8.json)    full-integer int8, what the device runs (kws eval reads the JSON)
    model_float.tflite (+ model_float.json)  float32 reference of the same graph
    model.onnx                               torch.onnx export, checked with onnxruntime
    kws_net.h / kws_net.c                    the generated int8 engine (engine "kws", the default; kws.engine)
    model_data.h / model_data.c              the int8 flatbuffer as an aligned const C array (what TFLM reads)
    kws_settings.h, kws_tables.h/.c          from kws.firmware.write_settings: frontend, labels, quantization,
                                             inference period
    report.json, report.md                   figures (MACs, params, bytes, arena, flash, RAM, time, real-time
                                             verdict), each labelled measured or estimated (kws.export.device)
    project/                                 the ready-to-build folder, when kws.firmware_build.assemble_project exists
With check_only the models and the report are written but no device files, and nothing fails; without it a model
whose lower bounds already exceed the target fails before converting, and an over-budget one or one whose target
cannot keep up with the inference period raises BudgetExceeded after report.json is written (so the numbers can
be read; no device files are written then).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from tqdm import tqdm

from kws.cost import cost as model_cost
from kws.device import ENGINES, PLATFORMS
from kws.errors import KwsError
from kws.export import carrays, convert, device, footprint, parity, report
from kws.export.targets import Target, resolve_target
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
    """(kws.firmware, kws.firmware_build), or (None, None) where they cannot be imported."""
    try:
        from kws import firmware, firmware_build
    except ImportError:
        return None, None
    return firmware, firmware_build


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


def _device(engine, models, frontend, labels, target, arena, dev, gen: Path, macs: int) -> dict:
    """The engine's figures (kws.export.device); for the kws engine, the settings and kws_net.c/.h go into gen."""
    ops = convert.graph_ops(models["int8"])
    if engine == "tflm":
        fe = footprint.frontend_footprint(frontend, target.name, labels)
        return device.tflm_figures(len(models["int8"]), arena["total_bytes"], ops, fe, target, frontend, dev, macs)
    q, sha = _quantization(models["paths"]["int8"]), _sha256(models["int8"])
    _settings(gen, frontend, labels, q, sha, {}, ops, dev, 0)
    return device.engine_figures(models["int8"], gen, target, frontend, dev)


def _settings(out: Path, frontend, labels, q: dict, sha: str, figures: dict, ops, dev, arena: int) -> list[Path]:
    from kws import firmware

    return firmware.write_settings(
        out,
        frontend,
        labels,
        q["input_scale"],
        q["input_zero_point"],
        q["output_scale"],
        q["output_zero_point"],
        sha,
        figures,
        arena_bytes=arena,
        ops=sorted(set(ops)),
        device=dev,
    )


def _report(model, frontend, labels, data, target, models, arena, checks, costs, figures) -> dict:
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
        device=figures,
        ops=ops,
        parity=checks,
        extra=extra,
    )


def _write_device_files(
    out: Path, int8: bytes, frontend, labels: list[str], rep: dict, target: Target, platform: str, dev, gen: Path
) -> list[str]:
    """kws_net.h/.c (engine kws), model_data.h/.c, the firmware settings and the assembled project; file names."""
    q, sha = rep["quantization"], rep["model_sha256"]
    figures = dict(
        engine=rep["engine"],
        flash_bytes=rep["flash_bytes"],
        ram_bytes=rep["ram_bytes"],
        macs=rep["macs"],
        tflm_arena_bytes=rep["tflm_arena_bytes"],
        model_bytes=rep["model_bytes"],
    )
    banner = (
        f"GENERATED by kws export from model sha256={sha}; engine={rep['engine']} flash_bytes={figures['flash_bytes']} "
        f"ram_bytes={figures['ram_bytes']} macs={figures['macs']}. Do not edit."
    )
    written = carrays.write_model_array(out, int8, banner)
    if rep["engine"] == "kws":
        for name in ("kws_net.h", "kws_net.c"):
            written.append(Path(shutil.copy2(gen / name, out / name)))
    firmware, firmware_build = _firmware()
    if firmware is None or not hasattr(firmware, "write_settings"):
        return [p.name for p in written]
    arena = None if rep["engine"] == "tflm" else 0  # TFLM: the measured arena + margin; the engine plans its own
    written += _settings(out, frontend, labels, q, sha, figures, rep["ops"], dev, arena)
    names = [Path(p).name for p in written]
    if firmware_build is not None:
        project = firmware_build.assemble_project(
            out / "project", target.name, platform=platform, generated_dir=out, engine=rep["engine"]
        )
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
    engine: str = "kws",
    device_config=None,
    stream: dict | None = None,
) -> dict:
    """Convert, check and measure `model` for `target`; write the artifacts and the report; return the report.

    engine: "kws" (the generated engine, measured on the target's core) or "tflm" (TFLite Micro, estimated).
    device_config: a kws.device.DeviceConfig (the inference period among others; default DeviceConfig()).
    Raises BudgetExceeded (after writing report.json) when the model does not fit, or its target cannot keep up
    with the inference period, and check_only is False.
    source (run_dir, data_root) and task (a kws.data.TaskConfig) go into the metadata beside each .tflite, so that
    `kws eval --model model_int8.tflite --data DIR` rebuilds the same task.
    """
    from kws.device import DeviceConfig

    dev = device_config or DeviceConfig()
    if engine not in ENGINES:
        raise KwsError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    platform = platform or target.platform
    if platform not in PLATFORMS:
        raise KwsError(f"--platform: {platform!r} is not one of {', '.join(PLATFORMS)}")
    if len(labels) != model.num_classes:
        raise KwsError(f"export: {len(labels)} labels for a {model.num_classes}-class model")
    costs = model_cost(model.spec, model.num_classes)
    if not check_only:
        report.precheck_budget(costs, target, footprint.computed_frontend_footprint(frontend), engine)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="kws_engine_") as tmp,
        tqdm(total=5, desc="export", disable=not progress, leave=False) as bar,
    ):
        meta = dict(data_root=(source or {}).get("data_root"), task=task.to_dict() if task is not None else None)
        models = _write_models(model.eval(), frontend, labels, data, out, meta, bar)
        arena, checks = _measure(model, models, data, bar)
        bar.set_description(f"{engine} engine on {target.name}")
        figures = _device(engine, models, frontend, labels, target, arena, dev, Path(tmp), costs.macs)
        bar.update()
        rep = _report(model, frontend, labels, data, target, models, arena, checks, costs, figures)
        rep.update(source=source or {}, platform=platform, **({"stream": stream} if stream else {}))
        fits = rep["budget"]["fits_flash"] and rep["budget"]["fits_ram"] and rep["realtime"]["keeps_up"]
        rep["files"] = (
            []
            if check_only or not fits
            else _write_device_files(out, models["int8"], frontend, labels, rep, target, platform, dev, Path(tmp))
        )
    report.write_report(out, rep)
    if not check_only:
        report.check_budget(rep)
        report.check_realtime(rep)
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
    engine: str = "kws",
    period_hops: int | None = None,
    device=None,
    stream: dict | None = None,
) -> dict:
    """Export a trained run directory (kws.checkpoint layout) for `target`; see export_model.

    period_hops: the app's inference period in frontend hops (KWS_INFERENCE_PERIOD_HOPS; default DeviceConfig's).
    """
    from kws.checkpoint import load_run
    from kws.device import DeviceConfig

    if engine not in ENGINES:
        raise KwsError(f"--engine: {engine!r} is not one of {', '.join(ENGINES)}")
    if period_hops is not None and period_hops < 1:
        raise KwsError(f"--period-hops: must be >= 1, got {period_hops}")
    dev = device if device is not None else DeviceConfig()  # device: a stream-eval operating point (kws.streamreport)
    if period_hops is not None:
        dev = replace(dev, inference_period_hops=period_hops)

    tgt = resolve_target(target, flash_kb=flash_kb, ram_kb=ram_kb, clock_mhz=clock_mhz)
    run = load_run(run_dir)
    if not check_only:  # fail in a second, before loading clips, when even the lower bounds do not fit
        report.precheck_budget(
            model_cost(run.spec, run.model.num_classes),
            tgt,
            footprint.computed_frontend_footprint(run.frontend),
            engine,
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
        engine=engine,
        device_config=dev,
        stream=stream,
    )
