"""Deployment targets (kws/export/targets.py): the table, the default boards, overrides and the latency estimate.

Covers: the five cores with their named default boards and figures (from the issue / datasheets), overrides of
flash / RAM / clock, bad names and values as one-line KwsErrors, the latency formula checked by hand against
MLPerf Tiny's measured 181.9 ms for ds-cnn-s at 120 MHz, and `kws targets` through the CLI.
Run: .venv/bin/pytest tests/test_targets.py -q   (< 1 s)
"""

from __future__ import annotations

import json

import pytest

from kws.cli import main
from kws.errors import KwsError
from kws.export.targets import TARGETS, resolve_target


def test_five_cores_with_named_boards():
    assert {"cortex-m0plus", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55"} <= set(TARGETS)
    m4 = TARGETS["cortex-m4"]
    assert "Nano 33 BLE Sense" in m4.board and "nRF52840" in m4.board
    assert (m4.flash_kb, m4.ram_kb, m4.clock_mhz, m4.platform) == (1024, 256, 64.0, "arduino")
    m7 = TARGETS["cortex-m7"]
    assert "DISCO_F746NG" in m7.board and (m7.flash_kb, m7.ram_kb, m7.clock_mhz) == (1024, 320, 216.0)
    assert TARGETS["cortex-m0plus"].ram_kb == 32
    for t in TARGETS.values():
        assert t.cycles_per_mac > 0 and t.cycles_basis and 0 < t.reserve_ram_kb < t.ram_kb
    # No SIMD on the M0+: it must be the slowest per MAC; Helium on the M55 the fastest.
    cpm = {name: t.cycles_per_mac for name, t in TARGETS.items()}
    assert max(cpm, key=cpm.get) == "cortex-m0plus" and min(cpm, key=cpm.get) == "cortex-m55"


def test_latency_reproduces_mlperf_tiny_m4():
    # MLPerf Tiny v1.0: ds-cnn-s (2,656,768 MACs) on a 120 MHz Cortex-M4, TFLM + CMSIS-NN: 181.9 ms.
    m4 = resolve_target("cortex-m4", clock_mhz=120)
    assert m4.latency_ms(2_656_768) == pytest.approx(181.9, rel=0.01)
    assert resolve_target("cortex-m4").latency_ms(1_000_000) == pytest.approx(1e6 * 8.2 / 64e6 * 1e3)


def test_overrides_and_budgets():
    t = resolve_target("cortex-m4", flash_kb=512, ram_kb=128, clock_mhz=100)
    assert (t.flash_kb, t.ram_kb, t.clock_mhz) == (512, 128, 100)
    assert t.ram_budget_bytes == (128 - t.reserve_ram_kb) * 1024
    assert t.flash_budget_bytes == (512 - t.reserve_flash_kb) * 1024
    assert "overridden" in t.board


@pytest.mark.parametrize(
    "kwargs,flag",
    [
        (dict(name="cortex-m3000"), "--target"),
        (dict(name="cortex-m4", ram_kb=0), "--ram-kb"),
        (dict(name="cortex-m4", ram_kb=16), "--ram-kb"),
        (dict(name="cortex-m4", clock_mhz=-1), "--clock-mhz"),
    ],
)
def test_bad_input_is_one_line(kwargs, flag):
    with pytest.raises(KwsError) as e:
        resolve_target(**kwargs)
    assert flag in str(e.value) and "\n" not in str(e.value)


def test_cli_lists_targets(capsys):
    assert main(["targets"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in TARGETS) and "Arduino Nano 33 BLE Sense" in out
    assert main(["targets", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cortex-m7"]["clock_mhz"] == 216.0


def test_measured_realtime_widths_are_current_and_keep_real_time(capsys):
    """kws/engine/realtime_widths.json (bench/realtime_widths.py, QEMU): measured on this engine version, for the
    widths realtime_width() gives today, each within the cost model's stated error of its prediction and keeping
    the 200 ms period with its 10 frontend hops; `kws targets` shows them. Re-run the bench after an engine change."""
    from kws.engine import costmodel
    from kws.export.targets import REALTIME_MEASURED, measured_realtime, realtime_width

    data = json.loads(REALTIME_MEASURED.read_text())
    assert data["engine_version"] == costmodel.engine_version(), "stale: re-run bench/realtime_widths.py"
    got = measured_realtime()
    for t in TARGETS.values():
        rt = realtime_width(t)
        if rt is None:
            assert got[t.name]["width"] is None
            continue
        m = got[t.name]
        assert m["width"] == rt[0] and m["predicted_ms"] == pytest.approx(rt[1])
        assert abs(m["error"]) <= costmodel.margin(t.name) and m["keeps_up"] and m["period_load_ms"] <= 200
    assert main(["targets"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("cortex-m4 "))
    assert line.split()[-1] == f"{got['cortex-m4']['measured_ms']:.0f}"
