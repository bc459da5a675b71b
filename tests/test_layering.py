"""The dependency rule of kws/__init__.py, enforced: imports point DOWN the module map, and there are no cycles.

The module map is the docstring's list of names, one per line at a 4-space indent. check_layering() reads every
.py under kws/ with `ast` and counts every import, at the top of a module and inside a function alike: a lazy
import is still a dependency. It reports
  - an import of a kws module listed later (higher) in the map than the importer;
  - a module under kws/ missing from the map, and a map entry with no module;
  - an import cycle between modules (within a package too).
A package (kws/cli, kws/engine, kws/export, kws/splitting) is one entry; imports between its own modules are
checked for cycles only. The last tests plant an upward import, a cycle and an unmapped module in a copy of the
tree and assert that each is caught.

Run: .venv/bin/python -m pytest tests/test_layering.py -q   (about 1 s)
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_ENTRY = re.compile(r"^ {4}(\w+)(?:\s|$)")  # a map line: 4 spaces, the name; its description may follow


def module_map(root: Path) -> list[str]:
    """The map's names in order, from the docstring of root/kws/__init__.py."""
    tree = ast.parse((root / "kws" / "__init__.py").read_text())
    doc = tree.body[0].value.value  # raw, not cleandoc'ed: the 4-space indent is the map's marker
    return [m.group(1) for line in doc.splitlines() if (m := _ENTRY.match(line))]


def _modules(root: Path) -> dict[str, Path]:
    """{dotted name: path} of every module under root/kws (a package is named by its __init__)."""
    out = {}
    for path in sorted((root / "kws").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def _entry(module: str) -> str:
    """The map entry a module belongs to: kws.grow -> grow, kws.export.pipeline -> export."""
    return module.split(".")[1]


def _imports(module: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, int]]:
    """(kws module imported, line) for every import in the file, lazy ones included."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..y import z
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:  # `from kws.pkg import sub` imports the submodule where one exists
                sub = f"{base}.{a.name}"
                found.append((sub if sub in modules else base, node.lineno))
    return [(name, line) for name, line in found if name == "kws" or name.startswith("kws.")]


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of the module graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def check_layering(root: Path) -> list[str]:
    """Every breach of the dependency rule in the tree at root (root/kws/...), one line each; [] when it holds."""
    names = module_map(root)
    rank = {name: i for i, name in enumerate(names)}
    modules = _modules(root)
    problems = [f"map entry {n!r} is listed twice" for n in sorted(set(names)) if names.count(n) > 1]
    entries = {_entry(m) for m in modules if m != "kws"}
    problems += [f"map entry {n!r} has no module kws/{n}.py or package kws/{n}/" for n in names if n not in entries]
    problems += [f"kws/{n} is missing from the module map in kws/__init__.py" for n in sorted(entries - set(names))]
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        for target, line in _imports(module, path, modules):
            if target == "kws" or target == module:
                continue  # the root package (__version__) sits below everything
            if target not in modules:
                problems.append(f"{path.relative_to(root)}:{line}: imports {target}, which does not exist")
                continue
            graph.setdefault(module, set()).add(target)
            low, high = _entry(target), _entry(module) if module != "kws" else None
            if high is not None and low != high and rank.get(low, -1) > rank.get(high, len(names)):
                problems.append(
                    f"{path.relative_to(root)}:{line}: {module} imports {target}, but {low!r} comes after {high!r} "
                    "in the module map (a higher layer: imports point down the map only)"
                )
    cycle = _cycle(graph)
    if cycle:
        problems.append("import cycle: " + " -> ".join(cycle))
    return problems


def test_kws_follows_its_module_map():
    problems = check_layering(REPO)
    assert not problems, "\n".join(problems)


def test_the_map_names_the_packages_once_and_cli_last():
    names = module_map(REPO)
    assert {"splitting", "export", "engine", "cli"} <= set(names)
    assert names.index("cli") == len(names) - 2 and names[-1] == "__main__"  # only `python -m kws` imports cli


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "kws", tmp_path / "kws", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return tmp_path


def _plant(path: Path, line: str, lazily: bool = False) -> None:
    text = f"\n\ndef _planted():\n    {line}\n" if lazily else f"\n{line}\n"
    path.write_text(path.read_text() + text)


def test_an_upward_import_is_caught(tmp_path):
    root = _copy(tmp_path)
    assert check_layering(root) == []
    _plant(root / "kws" / "errors.py", "from kws import cli")
    problems = check_layering(root)
    assert any("kws.errors imports kws.cli" in p and "kws/errors.py" in p for p in problems), problems


def test_a_lazy_upward_import_is_caught_too(tmp_path):
    root = _copy(tmp_path)
    _plant(root / "kws" / "frontend.py", "from kws.splitting import FAST", lazily=True)
    problems = check_layering(root)
    assert any("kws.frontend imports kws.splitting" in p for p in problems), problems


def test_a_cycle_inside_a_package_is_caught(tmp_path):
    root = _copy(tmp_path)
    _plant(root / "kws" / "splitting" / "capture.py", "from kws.splitting import dense", lazily=True)
    problems = check_layering(root)
    assert any(p.startswith("import cycle:") and "kws.splitting.capture" in p for p in problems), problems


def test_an_unmapped_module_and_an_empty_entry_are_caught(tmp_path):
    root = _copy(tmp_path)
    (root / "kws" / "stray.py").write_text('"""Not in the map."""\n')
    (root / "kws" / "tblog.py").unlink()
    problems = check_layering(root)
    assert "kws/stray is missing from the module map in kws/__init__.py" in problems, problems
    assert any(p.startswith("map entry 'tblog' has no module") for p in problems), problems
