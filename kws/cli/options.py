"""Helpers for the verbs' flags: defaults read from the config dataclasses, and which flags the user typed.

A verb that resumes a run must tell a flag the user typed from a default (a typed flag that differs from the run's
record is an error; a default is not). Its parser is built with argument_default=SUPPRESS, so an untyped flag is
absent from the namespace (given() returns exactly the typed ones), and each flag's help text states its default,
read from the dataclass field (default_of), never retyped. No torch is imported here or by kws.recipe.
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, fields
from typing import Any

from kws.errors import KwsError

RESERVED = ("handler", "verb")


def default_of(cls: type, name: str) -> Any:
    """The default of dataclass field `name` (its factory's value for a default_factory field)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__} has no field {name!r} with a default")


def with_default(text: str, default: Any) -> str:
    """Help text ending in the default, as the HelpFormatter writes it for flags with a plain default."""
    shown = ",".join(map(str, default)) if isinstance(default, (tuple, list)) else default
    return f"{text} (default: {shown})"


def suppressing_parser(sub, name: str, **kwargs) -> argparse.ArgumentParser:
    """A verb whose untyped flags stay out of the namespace (see given())."""
    return sub.add_parser(name, argument_default=argparse.SUPPRESS, **kwargs)


def given(args: argparse.Namespace) -> dict[str, Any]:
    """The flags the user typed on a suppressing_parser verb, by dest."""
    return {k: v for k, v in vars(args).items() if k not in RESERVED}


def words_arg(text: str) -> tuple[str, ...]:
    """--words yes,no: comma-separated keyword folder names, distinct, none empty or starting with '_'."""
    words = tuple(w.strip() for w in text.split(","))
    if not text.strip() or any(not w for w in words):
        raise KwsError(f"--words {text!r}: give comma-separated keyword folder names, e.g. --words yes,no")
    dup = sorted({w for w in words if words.count(w) > 1})
    if dup:
        raise KwsError(f"--words {text!r} names {', '.join(dup)} twice; give each keyword once")
    bad = [w for w in words if w.startswith(("_", "."))]
    if bad:
        raise KwsError(f"--words: {', '.join(bad)} is not a keyword folder (names starting with _ or . are not)")
    return words


def at_least(name: str, value: int | None, least: int = 1, hint: str = "") -> None:
    """A one-line error when an integer flag is below `least`."""
    if value is not None and value < least:
        raise KwsError(f"{name} {value} must be >= {least}{'; ' + hint if hint else ''}")
