"""`kws export --engine kws` (kws/export/pipeline.py + kws/engine/measure.py): the export generates the engine,
links the whole app for the target's core and runs it in QEMU; the report carries the measured flash (linked
image less the platform base), RAM (.data + .bss + painted stack high-water mark) and instructions per inference,
and a real-time verdict against the app's inference period that fails the export in one line naming both figures
and the flags that change them (--check only reports). --engine tflm keeps the estimates.

Run: .venv/bin/python -m pytest tests/test_engine_export.py -q   (~25 s: one export of an untrained ds-cnn-s)
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from engine_support import calibration, model, split_features

from kws.cli import main
from kws.engine.build import DEFAULT_LABELS
from kws.engine.measure import check_real_time
from kws.errors import BudgetExceeded, KwsError
from kws.export import ExportData, export_model, resolve_target
from kws.export.report import summary_table
from kws.frontend import FrontendConfig

pytestmark = pytest.mark.firmware


def _data(root) -> ExportData:
    calib = calibration(root)[:32]
    test = split_features(root)[::10]
    labels = np.arange(len(test), dtype=np.int64) % 12
    return ExportData(
        calibration=calib,
        calibration_names=[f"c{i}" for i in range(len(calib))],
        test_features=test,
        test_labels=labels,
    )


@pytest.fixture(scope="module")
def slow_board_report(mini_root, tmp_path_factory):
    """ds-cnn-s for a Cortex-M4 clocked at 8 MHz, --check: too slow for its 200 ms period, reported, not failed."""
    if shutil.which("arm-none-eabi-gcc") is None or shutil.which("qemu-system-arm") is None:
        pytest.skip("arm-none-eabi-gcc or qemu-system-arm not installed (make install)")
    out = tmp_path_factory.mktemp("export")
    target = resolve_target("cortex-m4", clock_mhz=8)
    rep = export_model(
        model("ds-cnn-s", "relu"),
        frontend=FrontendConfig(),
        labels=list(DEFAULT_LABELS),
        data=_data(mini_root),
        out_dir=out,
        target=target,
        check_only=True,
        progress=False,
    )
    return out, rep


def test_report_holds_the_measured_engine(slow_board_report):
    out, rep = slow_board_report
    e = rep["kws_engine"]
    assert rep["engine"] == "kws" and e["measured"] and e["machine"] == "mps2-an386"
    assert rep["flash_bytes"] == e["flash_bytes"] and rep["ram_bytes"] == e["ram_bytes"]
    assert e["ram_bytes"] == e["static_ram_bytes"] + e["stack_bytes"] and e["stack_bytes"] > 256
    # the linked app holds at least the network's constants and the engine arena; TFLM's runtime alone is 44 KB
    assert e["flash_bytes"] > e["const_bytes"] + e["engine_code_flash_bytes"]
    assert e["static_ram_bytes"] > e["arena_bytes"] + e["scratch_bytes"]
    assert 0 < e["engine_code_flash_bytes"] <= 10 * 1024
    assert e["macs"] == rep["macs"] == 2_656_768
    layers = sum(x["instructions"] for x in e["layer_instructions"])
    assert layers == pytest.approx(e["instructions_per_inference"], rel=0.01)
    assert e["instructions_per_period"] > e["instructions_per_inference"]  # + 10 frontend hops
    assert json.loads((out / "report.json").read_text())["kws_engine"]["flash_bytes"] == e["flash_bytes"]
    table = summary_table(rep)
    assert "kws engine (measured)" in table and "per MAC" in table and "CANNOT KEEP UP" in table


def test_real_time_verdict(slow_board_report):
    _, rep = slow_board_report
    e = rep["kws_engine"]
    busy = e["instructions_per_period"] / 8e3  # ms at 8 MHz, one cycle per instruction
    assert e["period_busy_ms"] == pytest.approx(busy) and e["period_ms"] == 200 and not e["real_time"]
    with pytest.raises(BudgetExceeded) as err:
        check_real_time(e, "cortex-m4")
    msg = str(err.value)
    assert "\n" not in msg and f"{e['period_busy_ms']:.1f} ms" in msg and "200 ms" in msg and "--clock-mhz" in msg
    # at the board's own 64 MHz the same instructions fit the period
    assert e["instructions_per_period"] / 64e3 < 200


def test_check_writes_no_device_files(slow_board_report):
    out, rep = slow_board_report
    assert rep["files"] == [] and not (out / "kws_net.c").exists()


def test_unknown_engine_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as code:
        main(["export", "--model", str(tmp_path), "--out", str(tmp_path / "o"), "--engine", "cmsis"])
    assert code.value.code == 2 and "argument --engine: invalid choice: 'cmsis'" in capsys.readouterr().err
    with pytest.raises(KwsError, match="--engine"):
        export_model(
            model("seed", "relu"),
            frontend=FrontendConfig(),
            labels=list(DEFAULT_LABELS),
            data=None,
            out_dir=tmp_path,
            target=resolve_target("cortex-m4"),
            engine="cmsis",
        )
