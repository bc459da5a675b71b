"""--help of the verbs data (download, synth, check), cost, eval, predict, export, targets, stream and report:
every option and argument has help text, and every option with a default shows it; `kws data check` and
`kws export`, which work for minutes, show progress on stderr unless --quiet (issue 19 item 14).

Walks the argparse tree that kws.cli.build_parser() builds, so a flag added later without help fails here.
Run: .venv/bin/python -m pytest tests/test_cli_help.py -q
"""

from __future__ import annotations

import argparse
import shutil

import numpy as np
import pytest

from kws.cli import build_parser

VERBS = ("data download", "data synth", "data check", "cost", "eval", "predict", "export", "targets", "stream")
VERBS += ("report",)


def _subparser(path: str) -> argparse.ArgumentParser:
    parser = build_parser()
    for name in path.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize("path", VERBS)
def test_every_option_has_help_and_shows_its_default(path):
    parser = _subparser(path)
    text = parser.format_help()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"kws {path}: {name} has no help text"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            shown = parser.formatter_class(prog="x")._get_help_string(action)
            assert "default" in shown, f"kws {path}: {name} does not show its default {action.default!r}"
    assert "usage: kws" in text


@pytest.mark.parametrize(
    "path, flag, words",
    [
        ("data synth", "--noise-seconds", "(s)"),
        ("export", "--flash-kb", "KiB"),
        ("export", "--clock-mhz", "MHz"),
        ("stream", "--window-ms", "(ms)"),
        ("stream", "--threshold", "default: 0.7"),
        ("cost", "--classes", "default: 12"),
    ],
)
def test_help_states_units_and_defaults(path, flag, words, capsys):
    with pytest.raises(SystemExit):
        _subparser(path).parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    line = text[text.index(flag, text.index("options:")) :][:300]
    assert words in line, line


@pytest.mark.parametrize("path", ["grow", "train"])
def test_grow_and_train_show_the_recipe_defaults(path):
    """Every flag of kws grow / kws train has help text, and a flag that sets a recipe field shows that field's
    default as the dataclass holds it: a default retyped in the help text would drift from kws.recipe and fail."""
    from dataclasses import fields

    from kws.recipe import GrowConfig, TrainConfig

    cfg = GrowConfig() if path == "grow" else TrainConfig()
    train_cfg = cfg.train if path == "grow" else cfg
    parser = _subparser(path)
    shown = 0
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        name = action.option_strings[-1] if action.option_strings else action.dest
        assert action.help, f"kws {path}: {name} has no help text"
        owner = cfg if action.dest in {f.name for f in fields(cfg)} else train_cfg
        if action.dest not in {f.name for f in fields(owner)} or action.const is not None:
            continue  # a runtime flag (--data, --out, ...), or a shortcut such as --retrain
        default = getattr(owner, action.dest)
        if default is None or isinstance(default, bool):
            continue
        text = " ".join(action.help.split())
        assert f"(default: {default})" in text or "(default: the" in text, f"kws {path}: {name}: {text!r}"
        shown += 1
    assert shown >= (15 if path == "grow" else 8)


def test_grow_flags_are_recipe_fields():
    """kws grow sorts the typed flags by GrowConfig's fields: each setting flag must name one."""
    from dataclasses import fields

    from kws.cli.grow import CHOICE_FLAGS, GROW_FLAGS, RECIPE_FIELDS, TRAIN_FLAGS
    from kws.recipe import GrowConfig, TrainConfig

    assert set(GROW_FLAGS) | set(CHOICE_FLAGS) <= RECIPE_FIELDS == {f.name for f in fields(GrowConfig)}
    assert set(TRAIN_FLAGS) <= {f.name for f in fields(TrainConfig)} and not set(TRAIN_FLAGS) & RECIPE_FIELDS


def test_stream_and_export_read_the_device_records():
    """kws stream's defaults are DeviceConfig's and kws export's platforms are PLATFORMS (kws.device), not retyped."""
    from kws.device import PLATFORMS, DeviceConfig

    stream = {a.dest: a for a in _subparser("stream")._actions}
    for dest, field in [("threshold", "detection_threshold"), ("window_ms", "average_window_ms")]:
        assert stream[dest].default == getattr(DeviceConfig(), field)
    platform = next(a for a in _subparser("export")._actions if a.dest == "platform")
    assert tuple(platform.choices) == PLATFORMS


def test_data_check_shows_progress_unless_quiet(tmp_path, mini_root, capsys):
    from kws.cli import main

    root = tmp_path / "ds"
    for word in ("yes", "no"):
        (root / word).mkdir(parents=True)
        for f in sorted((mini_root / word).glob("*.wav"))[:3]:
            shutil.copy(f, root / word / f.name)
    assert main(["data", "check", str(root)]) == 0
    assert "check:   0%|          | 0/6" in capsys.readouterr().err  # 6 clips to read
    assert main(["data", "check", str(root), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


def test_export_asks_for_progress_unless_quiet(monkeypatch, tmp_path):
    import kws.export
    from kws.cli import main

    asked = []
    monkeypatch.setattr(kws.export, "export_run", lambda *a, **kw: asked.append(kw["progress"]) or {"files": []})
    monkeypatch.setattr("kws.export.report.summary_table", lambda report: "table")
    for quiet in ([], ["--quiet"]):
        assert main(["export", "--model", str(tmp_path), "--out", str(tmp_path / "o"), *quiet]) == 0
    assert asked == [True, False]  # on a terminal or not: an export's silence must not look like a hang


def test_features_show_mfcc_progress_when_asked(tmp_path, capsys):
    from kws.data import Split
    from kws.features import features
    from kws.frontend import FrontendConfig

    split = Split("train", np.zeros((300, 16000), np.float32), np.zeros(300, np.int64), [f"{i}" for i in range(300)])
    features(split, FrontendConfig(), cache_dir=tmp_path, progress=True)
    assert "train MFCC:   0%|          | 0/300" in capsys.readouterr().err
    features(split, FrontendConfig(), cache_dir=tmp_path / "other")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "{file}"],
        ["export", "--model", "{dir}", "--out", "{file}"],
        ["data", "download", "--url", "{file}", "--out", "{file}"],
        ["data", "check", "{file}"],
        ["eval", "--model", "{dir}", "--data", "{file}"],
    ],
)
def test_a_file_where_a_folder_is_expected_is_called_a_file(argv, tmp_path, capsys):
    """Not "does not exist" (nor a traceback) for a path that exists but is of the wrong kind (issue 19 item 12)."""
    from kws.cli import main

    (tmp_path / "f.tar.gz").write_text("x")
    argv = [a.format(file=tmp_path / "f.tar.gz", dir=tmp_path) for a in argv]
    if argv[0] == "eval":  # a run directory, so that the --data check is reached
        from kws.checkpoint import save_run
        from kws.data import TaskConfig
        from kws.frontend import FrontendConfig
        from kws.models import create
        from kws.recipe import TrainConfig

        save_run(tmp_path / "run", create("seed").eval(), FrontendConfig(), TaskConfig().labels, TrainConfig())
        argv[2] = str(tmp_path / "run")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "is a file, expected a folder" in err and "does not exist" not in err and "\n" not in err, err


def test_grow_target_sets_the_budgets_from_the_board():
    """--target cortex-m4: the Nano's 200 ms period less 10 frontend hops (121,173 instructions each, measured in
    QEMU) at 64 MHz, by hand: 200 - 10 * 121173 / 64000 = 181.07 ms. RAM: its 256 KB less the 48 KB reserve, less
    the app without a network (43,412 B measured) and a 2 KB stack; flash: 1024 - 128 KB, less the app's 14,400 B
    and 11 KB of engine code. Typed flags win; with --engine tflm no time or flash budget is set."""
    from kws.cli.grow import target_budget
    from kws.errors import KwsError
    from kws.export.targets import TARGETS

    hop = TARGETS["cortex-m4"].frontend_instructions_per_hop
    got = target_budget({"target": "cortex-m4"})
    ram, flash = (208 * 1024 - 43_412 - 2048) / 1024, (896 * 1024 - 14_400 - 11 * 1024) / 1024
    expect = dict(core="cortex-m4", clock_mhz=64.0, budget_ms=round(200 - 10 * hop / 64e3, 3))
    assert got == dict(expect, budget_ram_kb=round(ram, 3), budget_flash_kb=round(flash, 3), cost_metric="ms")
    assert target_budget({"target": "cortex-m4", "cost_metric": "macs"})["cost_metric"] == "macs"
    assert 180 < got["budget_ms"] < 182
    tflm = target_budget({"target": "cortex-m4", "engine": "tflm"})
    assert tflm == dict(core="cortex-m4", clock_mhz=64.0, budget_ram_kb=round((208 * 1024 - 43_412) / 1024, 3))
    assert target_budget({"target": "cortex-m4", "budget_ram_kb": 20.0})["budget_ram_kb"] == 20.0
    with pytest.raises(KwsError, match="--target cortex-m0plus: the app without a network") as e:
        target_budget({"target": "cortex-m0plus"})  # Arduino Zero: 26 KB after its reserve, the app needs 43 KB
    assert "\n" not in str(e.value)
    assert target_budget({"target": "cortex-m4", "budget_ms": 50.0})["budget_ms"] == 50.0
    assert target_budget({"target": "cortex-m4", "clock_mhz": 128.0})["budget_ms"] == round(200 - 10 * hop / 128e3, 3)
    with pytest.raises(KwsError, match="--target"):
        target_budget({"target": "cortex-a53"})
