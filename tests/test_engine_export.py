"""`kws export` with the generated engine (the default): device files, measured figures, the real-time verdict.

Covers (kws/export/device.py, kws/engine/measure.py, kws/cli/export.py, kws/firmware_build.py's engine projects):
an untrained ds-cnn-s run exported through the CLI in-process writes kws_net.c/.h and a report whose flash, RAM
and time are labelled measured and add up (app image = frontend part + engine part; RAM = static + stack); the
engine's code beyond its constants and its arena + scratch are below the issue's goals (10 KB, 0.5x TFLM's
arena); the same export with a 20 ms inference period (--period-hops 1) fails in one line naming both figures and
the flags, and passes with --check; the assembled Arduino and Mbed projects' C sources link for cortex-m4 (with a
stub platform) with no TFLM include; the M33 image (mps2-an505) of the exported folder gives the M4's scores bit
for bit, and LiteRT's on its own input; without the cross compiler or QEMU the figures are estimates, labelled
with the reason.
Run: .venv/bin/python -m pytest tests/test_engine_export.py -q   (~60 s; needs arm-none-eabi-gcc, qemu-system-arm)
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest
from conftest import REPO, bn_model
from engine_support import reference

from kws.checkpoint import save_run
from kws.cli import main
from kws.data import TaskConfig
from kws.errors import BudgetExceeded
from kws.frontend import FrontendConfig

pytestmark = pytest.mark.firmware


@pytest.fixture(scope="module")
def run_dir(mini_root, tmp_path_factory):
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (make install)")
    run = tmp_path_factory.mktemp("run")
    extra = dict(data_root=str(mini_root), task=TaskConfig())
    save_run(run, bn_model("ds-cnn-s"), FrontendConfig(), TaskConfig().labels, None, extra=extra)
    return run


def _export(run_dir, out, *flags) -> int:
    return main(["export", "--model", str(run_dir), "--out", str(out), "--calib-clips", "24", "--quiet", *flags])


@pytest.fixture(scope="module")
def exported(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    assert _export(run_dir, out) == 0
    return out, json.loads((out / "report.json").read_text())


def test_default_engine_writes_the_network_and_measured_figures(exported):
    out, r = exported
    assert r["engine"] == "kws" and (out / "kws_net.c").is_file() and (out / "kws_net.h").is_file()
    assert r["model_sha256"] in (out / "kws_net.h").read_text().splitlines()[0]
    for key in ("flash_bytes", "ram_bytes", "latency_ms"):
        assert r["basis"][key].startswith("measured"), (key, r["basis"][key])
    m, e = r["kws_engine"]["measurement"], r["kws_engine"]
    assert r["flash_bytes"] == m["frontend_flash_bytes"] + m["engine_flash_bytes"]
    assert r["ram_bytes"] == m["static_ram_bytes"] + m["stack_bytes"] and 256 < m["stack_bytes"] < 8192
    assert m["engine_static_ram_bytes"] >= e["engine_ram_bytes"]  # the arena and scratch are static buffers
    assert 0 < e["engine_code_bytes"] <= 10 * 1024  # the goal: engine code beyond the weights <= 10 KB
    assert e["ram_vs_tflm_arena"] <= 0.5  # the goal against TFLM's measured arena
    rt = r["realtime"]
    assert rt["instructions_per_inference"] == m["inference_instructions"] and rt["keeps_up"]
    assert rt["inference_ms"] == pytest.approx(m["inference_instructions"] / 64e3)  # the Nano's 64 MHz
    assert r["parity"]["engine_vs_litert_ref_max_lsb"] == 0
    assert "Engine layers (measured in QEMU)" in (out / "report.md").read_text()


def test_a_period_too_short_fails_in_one_line_and_check_only_reports(run_dir, tmp_path, capsys):
    assert _export(run_dir, tmp_path / "fail", "--period-hops", "1") == BudgetExceeded.exit_code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.count("real time") == 1, err
    r = json.loads((tmp_path / "fail" / "report.json").read_text())["realtime"]
    assert f"{r['period_load_ms']:.1f} ms" in err and "the period is 20 ms" in err
    assert "--period-hops" in err and "--clock-mhz" in err and "smaller model" in err
    assert not (tmp_path / "fail" / "kws_net.c").exists()  # like a model that does not fit: no device files
    assert _export(run_dir, tmp_path / "check", "--period-hops", "1", "--check") == 0
    assert not json.loads((tmp_path / "check" / "report.json").read_text())["realtime"]["keeps_up"]


@pytest.mark.parametrize("platform", ["arduino", "mbed"])
def test_engine_projects_compile_for_cortex_m4_without_tflm(exported, platform, tmp_path):
    from kws import firmware_build

    out, _ = exported
    project = firmware_build.assemble_project(tmp_path, "cortex-m4", platform, out, engine="kws")
    files = [p for p in project.rglob("*") if p.is_file()]
    includes = [line for p in files if p.suffix != ".md" for line in p.read_text().splitlines() if "#include" in line]
    assert includes and not [line for line in includes if "tensorflow" in line.lower()]
    assert not [p for p in files if p.name.startswith(("model_data", "kws_model_tflm"))]
    sources = sorted(str(p) for p in files if p.suffix == ".c")
    src_dir = project if platform == "arduino" else project / "kws"
    m4 = REPO / "firmware_stub" / "m4"  # a stub platform (app_size_main.c) and a bare start-up: a full link
    cmd = ["arm-none-eabi-gcc", "-std=c99", "-O2", "-mthumb", "-mcpu=cortex-m4", "-mfloat-abi=hard"]
    cmd += ["-mfpu=fpv4-sp-d16", "-Wall", "-Wextra", "-Werror", f"-I{src_dir}", *sources]
    cmd += [str(m4 / "startup.c"), str(m4 / "app_size_main.c"), "-T", str(m4 / "mps2.ld"), f"-L{m4}"]
    cmd += ["--specs=nano.specs", "--specs=nosys.specs", "-Wl,--gc-sections", "-o", str(tmp_path / "app.elf"), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert any(s.endswith("kws_net.c") for s in sources) and any("kws_nn_conv" in s for s in sources)


def test_m33_image_of_the_export_gives_the_m4_scores(exported):
    from kws.engine.measure import measure, speed_clip

    out, r = exported
    m33 = measure(out, "cortex-m33", speed_clip())
    np.testing.assert_array_equal(m33.scores, np.array(r["kws_engine"]["measurement"]["scores"], np.int8))
    want, _ = reference((out / "model_int8.tflite").read_bytes(), m33.features)
    np.testing.assert_array_equal(m33.scores, want)
    assert m33.machine == "mps2-an505" and m33.inference_instructions > 0


def test_without_the_toolchain_the_figures_are_labelled_estimates(monkeypatch, tmp_path):
    """No arm-none-eabi-gcc / QEMU: the engine's figures come from its plan and the target's measured
    instructions per MAC, each labelled an estimate with its reason."""
    from kws.engine import measure
    from kws.export import ExportData, export_model, resolve_target
    from kws.models import create

    monkeypatch.setattr(measure, "available", lambda: "qemu-system-arm not installed (make install)")
    x = np.random.default_rng(0).normal(scale=4.0, size=(24, 49, 10)).astype(np.float32)
    data = ExportData(calibration=x[:12], calibration_names=["c"] * 12, test_features=x[12:], test_labels=np.arange(12))
    r = export_model(
        create("seed").eval(),
        frontend=FrontendConfig(),
        labels=TaskConfig().labels,
        data=data,
        out_dir=tmp_path,
        target=resolve_target("cortex-m4"),
        check_only=True,
        progress=False,
    )
    assert r["engine"] == "kws" and not r["kws_engine"]["measured"] and r["kws_engine"]["measurement"] is None
    for key in ("flash_bytes", "ram_bytes", "latency_ms"):
        assert r["basis"][key].startswith("estimate (qemu-system-arm not installed"), r["basis"][key]
    per_mac = resolve_target("cortex-m4").engine_instructions_per_mac  # measured on ds-cnn-s (bench/engine.py)
    assert r["realtime"]["instructions_per_inference"] == round(r["macs"] * per_mac)
    assert r["ram_bytes"] > r["kws_engine"]["engine_ram_bytes"]
