"""`kws export` end to end (kws/export/pipeline.py, report.py, parity.py, kws/cli/export.py) on real speech.

Covers: a ds-cnn-s trained briefly on the real-speech slice (mini_root, cached MFCCs, plain Adam) and saved as a
run directory is exported through the CLI in-process with the default engine (kws); report.json holds the
promised keys and figures (MACs and params equal the Hello Edge counts, head = the analytic peak; flash, RAM and
time measured on the M4 and labelled so, the device's scores equal LiteRT's); int8 accuracy on the test split is
within 1 point of float; TFLiteModel and `kws eval --model model_int8.tflite` reproduce the reported accuracies;
the C array equals the .tflite; a model that cannot fit (ds-cnn-l on the 32 KB-RAM Cortex-M0+ board) fails with
one line and exit 3, in-process and in a real subprocess; check_only reports an over-budget model without failing
and writes no device files, and `--engine tflm`'s flash/RAM are its stated sums, labelled estimates.
Run: .venv/bin/pytest tests/test_export_pipeline.py -q   (~60 s: ~15 s training, ~25 s export)
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

from kws.checkpoint import save_run
from kws.cli import main
from kws.cost import cost
from kws.data import TaskConfig, load_dataset
from kws.errors import BudgetExceeded
from kws.export import TFLiteModel
from kws.export.report import check_budget
from kws.export.targets import resolve_target
from kws.features import features
from kws.frontend import FrontendConfig
from kws.models import create

EPOCHS = 6


def _train(model, x: np.ndarray, y: np.ndarray) -> None:
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small batches on a shared 2-core machine: 1 thread is ~9x faster than 2 under load
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    model.train()
    for _ in range(EPOCHS):
        for idx in torch.randperm(len(xt), generator=g).split(64):
            loss = torch.nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    torch.set_num_threads(threads)
    model.eval()


@pytest.fixture(scope="module")
def exported(mini_root, tmp_path_factory):
    torch.manual_seed(0)
    task, frontend = TaskConfig(), FrontendConfig()
    dataset = load_dataset(mini_root, task=task, frontend=frontend, splits=("train", "test"), progress=False)
    train, test = dataset.splits["train"], dataset.splits["test"]
    model = create("ds-cnn-s")
    _train(model, features(train, frontend), train.labels)
    run = tmp_path_factory.mktemp("run")
    save_run(run, model, frontend, task.labels, None, extra=dict(data_root=str(mini_root), task=task))
    out = tmp_path_factory.mktemp("export")
    code = main(["export", "--model", str(run), "--out", str(out), "--target", "cortex-m4", "--calib-clips", "120"])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    return dict(run=run, out=out, report=report, model=model, test_x=features(test, frontend), test_y=test.labels)


def test_report_keys_and_figures(exported):
    r = exported["report"]
    for key in (
        "macs",
        "params",
        "model_bytes",
        "tflm_arena_bytes",
        "flash_bytes",
        "ram_bytes",
        "target",
        "per_layer",
        "parity",
    ):
        assert key in r
    assert (r["macs"], r["params"]) == (2_656_768, 22_604)  # docs/device.md, counted from the Hello Edge graph
    assert sum(row["macs"] for row in r["per_layer"]) == r["macs"] == cost("ds-cnn-s").macs
    assert r["model_bytes"] == (exported["out"] / "model_int8.tflite").stat().st_size
    assert r["tflm_arena"]["head_bytes"] == 16_000  # docs/device.md: S head 16,000 B
    # the default engine: the app image's flash (frontend + engine + weights) and RAM (static + stack), measured
    e, m = r["kws_engine"], r["kws_engine"]["measurement"]
    assert r["engine"] == "kws" and e["measured"] and m["core"] == "cortex-m4"
    assert r["flash_bytes"] == m["flash_bytes"] == m["frontend_flash_bytes"] + m["engine_flash_bytes"]
    assert r["ram_bytes"] == m["static_ram_bytes"] + m["stack_bytes"]
    assert e["engine_code_bytes"] == e["engine_flash_bytes"] - e["network"]["const_bytes"] > 0
    assert e["engine_ram_bytes"] == e["network"]["arena_bytes"] + e["network"]["scratch_bytes"] < r["tflm_arena_bytes"]
    for key in ("flash_bytes", "ram_bytes", "latency_ms"):
        assert r["basis"][key].startswith("measured"), key
    assert "instructions" in r["basis"]["latency_ms"] and "not exact" in r["basis"]["latency_ms"]
    assert r["realtime"]["keeps_up"] and r["realtime"]["period_ms"] == 200.0
    assert r["parity"]["engine_vs_litert_ref_max_lsb"] == 0
    assert r["target"]["name"] == "cortex-m4" and r["budget"]["fits_ram"] and r["budget"]["fits_flash"]
    assert len(r["calibration"]["names"]) == 120
    assert (exported["out"] / "report.md").read_text().startswith("# Export report")


def test_parity_and_int8_accuracy_within_one_point(exported):
    p = exported["report"]["parity"]
    assert p["float_tflite_vs_torch_max_abs_logit"] < 1e-3
    assert p["onnx_vs_torch_max_abs_logit"] < 1e-3
    assert p["tflm_vs_tflite_max_lsb"] <= 1
    assert p["float_tflite_accuracy"] > 0.5  # trained, not chance (1/12)
    assert abs(p["int8_accuracy"] - p["float_tflite_accuracy"]) <= 0.01
    assert p["int8_vs_float_top1_agreement"] >= 0.95


def test_tflite_model_reproduces_accuracy(exported):
    m = TFLiteModel(exported["out"] / "model_int8.tflite")
    assert m.labels == TaskConfig().labels and m.frontend == FrontendConfig() and m.is_int8
    probs = m.predict(exported["test_x"])
    acc = float(np.mean(probs.argmax(1) == exported["test_y"]))
    assert acc == pytest.approx(exported["report"]["parity"]["int8_accuracy"])
    with torch.no_grad():
        torch_acc = float(
            np.mean(exported["model"](torch.from_numpy(exported["test_x"])).argmax(1).numpy() == exported["test_y"])
        )
    assert torch_acc == pytest.approx(exported["report"]["parity"]["torch_accuracy"])


def test_kws_eval_on_the_int8_model(exported, mini_root, capsys):
    assert TFLiteModel(exported["out"] / "model_int8.tflite").task == TaskConfig()
    model = str(exported["out"] / "model_int8.tflite")
    assert main(["eval", "--model", model, "--data", str(mini_root), "--split", "test", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(exported["test_y"])
    assert result["acc"] == pytest.approx(exported["report"]["parity"]["int8_accuracy"])


def test_device_files(exported):
    out, r = exported["out"], exported["report"]
    c_text = (out / "model_data.c").read_text()
    first = c_text.splitlines()[0]
    assert "GENERATED" in first and r["model_sha256"] in first and f"ram_bytes={r['ram_bytes']}" in first
    body = c_text.split("{", 1)[1].split("}", 1)[0]
    assert bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body)) == (out / "model_int8.tflite").read_bytes()
    assert (out / "model.onnx").is_file() and (out / "model_float.tflite").is_file()
    assert r["model_sha256"] in (out / "kws_net.c").read_text().splitlines()[0]
    if (out / "kws_settings.h").is_file():  # written by kws.firmware when that module is present
        assert r["model_sha256"] in (out / "kws_settings.h").read_text().splitlines()[0]


def test_exported_files_are_readable_by_others(exported):
    """Every exported file has the mode a plain open() gives under this process's umask (a build user or a web
    server reads them), not mkstemp's private 0600; no temp file is left behind."""
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    written = [p for p in exported["out"].rglob("*") if p.is_file()]
    assert len(written) >= 6
    modes = {str(p.relative_to(exported["out"])): oct(stat.S_IMODE(p.stat().st_mode)) for p in written}
    wrong = {name: mode for name, mode in modes.items() if mode not in (oct(0o666 & ~umask), oct(0o777 & ~umask))}
    assert not wrong
    assert not [p for p in written if p.name.endswith(".tmp")]


def test_measured_budget_check_names_resource_and_numbers(exported):
    r, m0 = dict(exported["report"]), resolve_target("cortex-m0plus")
    r.update(
        target=m0.to_dict(), budget=dict(flash_budget_bytes=m0.flash_budget_bytes, ram_budget_bytes=m0.ram_budget_bytes)
    )
    with pytest.raises(BudgetExceeded) as e:
        check_budget(r)
    msg = str(e.value)
    assert msg.startswith("RAM needs") and f"{r['ram_bytes']:,} B" in msg and "\n" not in msg


@pytest.fixture(scope="module")
def large_run(tmp_path_factory, mini_root):
    run = tmp_path_factory.mktemp("run_l")
    save_run(
        run,
        create("ds-cnn-l"),
        FrontendConfig(),
        TaskConfig().labels,
        None,
        extra=dict(data_root=str(mini_root), task=TaskConfig()),
    )
    return run


def test_large_model_on_m0plus_fails_in_one_line(large_run, tmp_path, capsys):
    code = main(["export", "--model", str(large_run), "--out", str(tmp_path), "--target", "cortex-m0plus"])
    err = capsys.readouterr().err.strip()
    assert code == BudgetExceeded.exit_code != 0
    assert len(err.splitlines()) == 1 and "RAM needs" in err and "flash needs" in err and "cortex-m0plus" in err


def test_large_model_subprocess_smoke(large_run, tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kws",
            "export",
            "--model",
            str(large_run),
            "--out",
            str(tmp_path),
            "--target",
            "cortex-m0plus",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 3
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_missing_run_dir_is_one_line(tmp_path, capsys):
    assert main(["export", "--model", str(tmp_path / "nope"), "--out", str(tmp_path)]) != 0
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_check_only_reports_without_failing(tmp_path):
    from kws.export import ExportData, export_model

    torch.manual_seed(0)
    x = np.random.default_rng(0).normal(scale=4.0, size=(36, 49, 10)).astype(np.float32)
    data = ExportData(
        calibration=x[:12],
        calibration_names=[f"clip{i}" for i in range(12)],
        test_features=x[12:],
        test_labels=np.arange(24) % 12,
    )
    report = export_model(
        create("seed").eval(),
        frontend=FrontendConfig(),
        labels=TaskConfig().labels,
        data=data,
        out_dir=tmp_path,
        target=resolve_target("cortex-m0plus", ram_kb=8),
        check_only=True,
        progress=False,
        engine="tflm",
    )
    assert not report["budget"]["fits_ram"] and report["files"] == []
    # TFLM's figures: stated sums, estimates except the measured arena
    assert report["ram_bytes"] == report["tflm_arena_bytes"] + report["frontend"]["ram_bytes"]
    fl = report["model_bytes"] + report["tflm_runtime_flash_bytes"] + report["frontend"]["flash_bytes"]
    assert report["flash_bytes"] == fl
    # TFLM with these ops built for cortex-m4 (outside the project): 44,280 B at -Os, 57,139 B at -O2, ~1.5 KB glue
    assert 44_280 + 1_000 <= report["tflm_runtime_flash_bytes"] <= 44_280 + 2_000
    assert report["tflm_runtime_flash_basis"].startswith("estimate") and "57,139" in report["tflm_runtime_flash_basis"]
    assert all(report["basis"][k].startswith("estimate") for k in ("flash_bytes", "latency_ms"))
    assert json.loads((tmp_path / "report.json").read_text())["ram_bytes"] == report["ram_bytes"]
    assert not (tmp_path / "model_data.c").exists()
    with pytest.raises(BudgetExceeded, match="RAM needs"):
        check_budget(report)
