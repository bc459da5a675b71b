"""Atomic file writes, the project's one way to write a file that someone else reads.

A reader (a resumed run, a build, a web server) sees the old file or the whole new one, never part of one:
the bytes go to a temporary sibling in the same folder, are flushed and fsynced, and the sibling is moved into
place with os.replace (atomic on POSIX). The file gets the mode an ordinary open() would give it (0666 less the
umask), not mkstemp's private 0600, so an exported model or a run directory can be shared.
Tests: tests/test_files.py.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"


def _umask() -> int:
    # os.umask can only be read by setting it; set it back at once (read per call: a process may change it).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write `data` to `path` atomically, fsynced, with mode 0666 & ~umask; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any, indent: int = 2) -> Path:
    """JSON (trailing newline) written atomically; dataclasses, paths, numpy arrays and tensors are converted."""
    return atomic_write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def _json_default(x: Any) -> Any:
    if is_dataclass(x):
        return x.to_dict() if hasattr(x, "to_dict") else asdict(x)
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "tolist"):  # numpy arrays and scalars, tensors
        return x.tolist()
    if isinstance(x, (set, tuple)):
        return list(x)
    raise TypeError(f"not JSON serializable: {type(x).__name__}")
