"""The README is the front door: under 10 KB, every link inside the repository resolves, and its commands run as
written. The cheap ones (`kws cost`, `kws targets`) run for real in a subprocess, as a user would type them; every
other verb it shows gets `--help`, and each flag the README shows for it must be one the verb accepts.
Run: .venv/bin/pytest tests/test_readme.py -q   (~15 s: one subprocess per verb)
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest
from conftest import REPO

README = (REPO / "README.md").read_text()


def _commands() -> list[list[str]]:
    block = README.split("## Commands", 1)[1].split("```", 2)[1]
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.startswith("kws ")]


def _kws(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kws", *args], capture_output=True, text=True, timeout=120)


def test_readme_is_short_and_its_links_resolve():
    assert len(README.encode()) < 10 * 1024
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if not target.startswith("http"):
            assert (REPO / target).exists(), target


@pytest.mark.parametrize("argv", [c for c in _commands() if c[1] in ("cost", "targets")], ids=" ".join)
def test_cheap_commands_run_as_written(argv):
    done = _kws(*argv[1:])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()


def test_every_shown_command_is_a_verb_with_those_flags():
    commands = _commands()
    assert len(commands) >= 10
    for argv in commands:
        verb = argv[1:3] if argv[1] == "data" else argv[1:2]
        done = _kws(*verb, "--help")
        assert done.returncode == 0, (verb, done.stderr)
        for flag in (a for a in argv if a.startswith("--")):
            assert re.search(rf"(^|\s|\[){re.escape(flag)}\b", done.stdout), (verb, flag)
