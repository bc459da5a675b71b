"""Shared fixtures: where the real-speech miniature lives, and small helpers used by several test files.

Run the suite with `make test` (excludes `slow`); `make test-slow` runs the long ones.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KWS_SHARED", REPO.parent / "shared"))
MINI = SHARED / "data" / "speech_commands_mini"


@pytest.fixture(scope="session")
def mini_root() -> Path:
    """The speaker-disjoint Speech Commands v0.02 slice in ../shared (read in place, never copied)."""
    if not (MINI / "testing_list.txt").is_file():
        pytest.fail(f"real-speech slice not found at {MINI}; CI places ../shared beside the clone")
    return MINI
