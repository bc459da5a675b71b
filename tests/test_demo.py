"""`kws demo` (what `make demo` runs), small: espeak-ng speech -> grow -> export for cortex-m4 -> report.

Independent checks: the printed paths exist and hold what the other tools read (a run directory that
kws.checkpoint loads, a .tflite the LiteRT interpreter runs, C arrays byte-identical to it, an HTML page with
its figures), the grown network respects the budget by kws.cost's count, and a second run resumes instead of
growing again. Run: `.venv/bin/pytest tests/test_demo.py -q` (about a minute).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from kws.cli import main

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def _c_array_bytes(c_source: str) -> bytes:
    body = c_source[c_source.index("{") + 1 : c_source.index("}")]
    return bytes(int(tok, 16) for tok in re.findall(r"0x[0-9a-fA-F]{2}", body))


def test_demo_end_to_end_and_resume(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KWS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)  # no data/speech_commands_v0.02 here: the demo speaks its own
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--per-word", "12", "--budget-kparams", "6"]) == 0
    printed = capsys.readouterr().out
    where = dict(re.findall(r"^\s+(dataset|model|export|report)\s+(\S+)$", printed, re.M))
    assert set(where) == {"dataset", "model", "export", "report"}
    for path in where.values():
        assert Path(path).exists(), path

    from kws.checkpoint import load_run
    from kws.cost import cost

    run = load_run(where["model"])
    assert cost(run.model.spec, len(run.labels)).params_deployed <= 6000
    assert sum(p.numel() for p in run.model.parameters()) > 0

    tflite = sorted(Path(where["export"]).rglob("*int8*.tflite"))
    assert tflite, "no int8 model exported"
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=tflite[0].read_bytes())
    interp.allocate_tensors()
    inp = interp.get_input_details()[0]
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], dtype=inp["dtype"]))
    interp.invoke()
    assert interp.get_tensor(interp.get_output_details()[0]["index"]).shape[-1] == len(run.labels)
    model_c = next(Path(where["export"]).rglob("model_data.c")).read_text()
    assert _c_array_bytes(model_c) == tflite[0].read_bytes()

    html = Path(where["report"]).read_text()
    assert html.count("data:image/png;base64,") >= 4 and "http://" not in html and "https://" not in html

    report = Path(where["model"]).parent / "growth_report.json"
    stamp = report.stat().st_mtime_ns
    assert main(["demo", "--out", str(out), "--per-word", "12", "--budget-kparams", "6"]) == 0
    assert report.stat().st_mtime_ns == stamp  # resumed: the growth was not redone
