"""kws.files: the one atomic-write helper (mode, fsync, no partial file, no temp file left behind).

Run: .venv/bin/pytest tests/test_files.py -q   (< 1 s)
"""

from __future__ import annotations

import os
import stat

import pytest

from kws import files


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_mode_follows_the_umask_like_open(tmp_path, umask):
    """The written file has the mode a plain open() gives under the same umask (not mkstemp's 0600)."""
    old = os.umask(umask)
    try:
        files.atomic_write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as f:  # the reference: what any other tool would have written
            f.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o666 & ~umask


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    files.atomic_write_json(path, {"v": 1})

    def boom(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_json(path, {"v": 2})
    assert path.read_text() == '{\n  "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_json_converts_paths_tuples_and_arrays(tmp_path):
    import numpy as np

    files.atomic_write_json(tmp_path / "x.json", {"p": tmp_path, "t": (1, 2), "a": np.arange(2)}, indent=None)
    assert (tmp_path / "x.json").read_text() == f'{{"p": "{tmp_path}", "t": [1, 2], "a": [0, 1]}}\n'
