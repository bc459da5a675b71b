"""The growth report (kws.report, `kws report`): a self-contained page whose every figure is present and decodes.

The page is parsed with the standard library's HTML parser (an independent reader) and each embedded image is
decoded as PNG by matplotlib; where Debian's headless Chromium is installed, a screenshot of the page renders.
Run: .venv/bin/pytest tests/test_report.py -q
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess
from html.parser import HTMLParser

import matplotlib.image as mpimg
import pytest

from kws.cli import main
from kws.report import write_report

FIGURES = {"accuracy", "widths", "spectra", "dloss"}


class _Images(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.external = {}, []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images[a.get("id")] = a.get("src", "")
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.external.append(a[key])


def _parse(path):
    p = _Images()
    p.feed(path.read_text())
    return p


def test_page_is_self_contained_and_every_figure_decodes(grown):
    out, report = grown
    html = write_report(out)
    page = _parse(html)
    assert not page.external, "the page must not reach the network"
    assert FIGURES <= set(page.images)
    for key in FIGURES:
        src = page.images[key]
        assert src.startswith("data:image/png;base64,")
        img = mpimg.imread(io.BytesIO(base64.b64decode(src.split(",", 1)[1])), format="png")
        assert img.shape[0] > 100 and img.shape[1] > 100
        assert (out / "report" / f"{key}.png").is_file()
    text = html.read_text()
    assert f"{report['params']:,} deployed parameters" in text


def test_footprint_figure_appears_once_exported(grown, tmp_path):
    out, _ = grown
    run = tmp_path / "run"
    shutil.copytree(out, run)
    (run / "export").mkdir()
    (run / "export" / "report.json").write_text(
        json.dumps(
            dict(
                flash_bytes=81_928,
                ram_bytes=67_616,
                target=dict(name="cortex-m4", flash_bytes=1 << 20, ram_bytes=256 << 10),
            )
        )
    )
    assert "footprint" in _parse(write_report(run)).images


def test_cli_report_and_missing_run(grown, tmp_path, capsys):
    out, _ = grown
    assert main(["report", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("report.html")
    assert main(["report", str(tmp_path)]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "growth_report.json" in err


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is not installed")
def test_chromium_renders_a_screenshot(grown, tmp_path):
    out, _ = grown
    html = write_report(out)
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,3000",
            html.as_uri(),
        ],
        check=True,
        timeout=120,
        capture_output=True,
    )
    img = mpimg.imread(shot)[..., :3]
    assert img.shape[0] > 500
    # a blank page is all white; the report's text and five figures darken ~6% of the pixels, over >1000 rows
    dark = img.mean(axis=2) < 0.9
    assert dark.mean() > 0.02 and dark.any(axis=1).sum() > 1000, (dark.mean(), dark.any(axis=1).sum())
