"""The growth report (kws.report) embeds the streaming DET curve when the run's export was made with
`kws export --operating-point` (report.json's "stream" names the PNG), and not otherwise.

Run: PYTHONPATH=. .venv/bin/python -m pytest tests/test_streameval_report.py -q  (the session's tiny grow run)
"""

from __future__ import annotations

import json
import shutil

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from kws.report import write_report


def test_det_curve_in_the_growth_report_once_a_stream_evaluation_exists(grown, tmp_path):
    out, _ = grown
    run = tmp_path / "run"
    shutil.copytree(out, run)
    assert 'id="det"' not in write_report(run).read_text()
    fig, ax = plt.subplots()
    ax.plot([1, 2], [3, 4])
    fig.savefig(tmp_path / "det.png")
    plt.close(fig)
    export = dict(
        flash_bytes=81_928,
        ram_bytes=67_616,
        target=dict(name="cortex-m4", flash_bytes=1 << 20, ram_bytes=256 << 10),
        stream=dict(det_png=str(tmp_path / "det.png")),
    )
    (run / "export").mkdir()
    (run / "export" / "report.json").write_text(json.dumps(export))
    page = write_report(run).read_text()
    assert 'id="det"' in page and "Streaming DET curve" in page
