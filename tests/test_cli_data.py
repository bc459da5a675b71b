"""`kws data download | synth | check` through kws.cli.main([...]) in-process, plus one real subprocess smoke test.

Covers: download from a file:// archive built here (sha256 from hashlib), one-line errors for a checksum mismatch
and a malicious archive; synth -> data.load_dataset gives the 12-class task in under a minute; the missing
espeak-ng error; check's table, its --json and its exit 1 on an unusable file. Needs espeak-ng for synth.
Run: .venv/bin/pytest tests/test_cli_data.py -q
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from kws import synth
from kws.cli import main

REPO = Path(__file__).resolve().parents[1]
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def _tar(tmp_path: Path, members: dict[str, bytes], evil: str | None = None) -> Path:
    path = tmp_path / "mirror" / "mini.tar.gz"
    path.parent.mkdir(exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in {**members, **({evil: b"evil"} if evil else {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _one_error_line(capsys) -> str:
    """The error is the last stderr line and the only one that is not a progress bar or note (no traceback)."""
    lines = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in lines if "%|" not in line and not line.startswith("kws: note:")]
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].startswith("kws data: error: "), lines
    return errors[0]


def test_download_from_file_url_with_sha256(tmp_path, capsys):
    archive = _tar(tmp_path, {"yes/a_nohash_0.wav": b"a" * 3000, "testing_list.txt": b""})
    sha = hashlib.sha256(archive.read_bytes()).hexdigest()
    out = tmp_path / "data"
    rc = main(["data", "download", "--url", archive.as_uri(), "--sha256", sha, "--out", str(out)])
    assert rc == 0
    assert capsys.readouterr().out.strip() == f"ready: {out / 'mini'}"
    assert (out / "mini" / "yes" / "a_nohash_0.wav").read_bytes() == b"a" * 3000


def test_download_checksum_mismatch_is_one_line(tmp_path, capsys):
    archive = _tar(tmp_path, {"yes/a_nohash_0.wav": b"a"})
    rc = main(["data", "download", "--url", archive.as_uri(), "--sha256", "f" * 64, "--out", str(tmp_path / "d")])
    assert rc == 2 and "sha256" in _one_error_line(capsys)


def test_download_malicious_archive_is_refused(tmp_path, capsys):
    archive = _tar(tmp_path, {"yes/a_nohash_0.wav": b"a"}, evil="../../escaped.txt")
    rc = main(["data", "download", "--url", archive.as_uri(), "--out", str(tmp_path / "d")])
    assert rc == 2 and "refusing to extract" in _one_error_line(capsys)
    assert not list(tmp_path.rglob("escaped.txt"))


def test_data_without_action_prints_usage():
    assert main(["data"]) == 2


@needs_espeak
def test_synth_makes_a_loadable_12_class_dataset_in_under_a_minute(tmp_path, capsys):
    from kws.data import TaskConfig, load_dataset

    out = tmp_path / "synth"
    started = time.perf_counter()
    rc = main(["data", "synth", "--out", str(out), "--per-word", "20", "--seed", "3", "--noise-seconds", "20"])
    assert rc == 0 and "wrote 360 clips of 18 words" in capsys.readouterr().out
    dataset = load_dataset(out, TaskConfig(), progress=False)
    seconds = time.perf_counter() - started
    print(f"synth + load of 12 classes x 20 clips: {seconds:.1f} s", file=sys.stderr)
    assert seconds < 60
    assert dataset.labels == ["_silence_", "_unknown_", *synth.KEYWORDS] and not dataset.problems
    for name, split in dataset.splits.items():
        assert set(split.labels.tolist()) == set(range(12)), name  # every class in every split
    assert (split_sizes := {n: int((s.labels >= 2).sum()) for n, s in dataset.splits.items()}) == {
        "train": 160,
        "validation": 20,
        "test": 20,
    }, split_sizes


def test_synth_without_espeak_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no espeak-ng on PATH
    assert main(["data", "synth", "--out", str(tmp_path / "s")]) == 2
    assert "apt-get install espeak-ng" in _one_error_line(capsys)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    out = tmp_path_factory.mktemp("tiny") / "ds"
    cfg = synth.SynthConfig(words=("yes", "no"), unknown_words=("bed",), per_word=10, noise_seconds=2.0)
    synth.synthesize(out, cfg, jobs=2, progress=False)
    return out


def test_check_flags_an_unusable_file_and_exits_1(tiny, tmp_path, capsys):
    root = tmp_path / "ds"
    shutil.copytree(tiny, root)
    (root / "yes" / "broken_nohash_0.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk")
    assert main(["data", "check", str(root)]) == 1
    out = capsys.readouterr().out
    assert "unusable: yes/broken_nohash_0.wav: truncated header" in out and "; 1 unusable, 0 converted" in out
    # 10 clips of "yes": 10% each to validation and test by the synth plan; the broken extra one is not counted.
    assert next(line for line in out.splitlines() if line.startswith("yes ")).split() == ["yes", "8", "1", "1"]
    assert main(["data", "check", str(root), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["path"] for p in report["unusable"]] == ["yes/broken_nohash_0.wav"]
    listed = (root / "validation_list.txt").read_text().split()
    assert report["splits"]["validation"]["clips"] == len(listed) == 3


def test_check_missing_folder_is_one_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nope")]) == 2
    assert "nope" in _one_error_line(capsys)


def test_subprocess_smoke_check_json(tiny):
    result = subprocess.run(
        [sys.executable, "-m", "kws", "data", "check", str(tiny), "--json"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["unusable"] == report["converted"] == report["padded"] == report["cropped"] == []
