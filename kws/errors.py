"""One-line user errors.

Every layer raises KwsError for bad input (a missing file, a wrong flag value, an impossible budget); the CLI
prints its message as a single line and exits non-zero. The message names the file or flag and says what to do.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any


class KwsError(Exception):
    """A user-facing error whose message is one line that names the culprit and the fix."""

    exit_code = 2


class BudgetExceeded(KwsError):
    """A model does not fit a resource limit (flash, RAM, params, MACs)."""

    exit_code = 3


def known_fields(cls: type, record: dict[str, Any], what: str) -> dict[str, Any]:
    """A copy of a config record (a run's JSON), refused in one line if it names a field the dataclass `cls` does
    not have: a record written by another version of kws, or edited by hand. Every config's from_dict uses it."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(record) - known)
    if unknown:
        raise KwsError(f"{what}: unknown field(s) {unknown}; expected a subset of {sorted(known)}")
    return dict(record)
