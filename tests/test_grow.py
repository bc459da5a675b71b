"""The growth loop (kws.grow, `kws grow`) on the real-speech slice: hard budgets, checkpoints, resume, report.

Tiny schedules (1-epoch phases, narrow seeds) keep it to about a minute; the real recipe runs in bench/.
Run: .venv/bin/pytest tests/test_grow.py -q
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch
from conftest import TINY_GROW as TINY

from kws import models
from kws.cli import main
from kws.cost import cost
from kws.errors import KwsError
from kws.grow import grow


def test_budget_is_hard_and_reached(grown):
    out, report = grown
    spec = models.ArchSpec.from_dict(report["arch"])
    params = cost(spec).params_deployed
    assert params <= 3000, "the grown model exceeds its parameter budget"
    assert params == report["params"]
    # it grew: more parameters than the seed, from the recorded rounds
    assert report["rounds"][-1]["params"] > report["rounds"][0]["params"]
    seed_params = cost(models.resolve_arch("seed").uniform(8)).params_deployed
    assert report["rounds"][0]["params"] == seed_params


def test_rounds_checkpointed_and_loadable(grown):
    out, report = grown
    rounds = sorted((out / "rounds").glob("round_*"))
    assert [r.name for r in rounds] == [f"round_{i:03d}" for i in range(len(report["rounds"]))]
    for r in rounds:
        rec = json.loads((r / "round.json").read_text())
        spec = models.ArchSpec.from_dict(json.loads((r / "arch.json").read_text()))
        assert rec["widths"] == list(spec.unit_widths)
        model = models.DSCNN(spec)
        model.load_state_dict(torch.load(r / "model.pt", weights_only=True))
    grown_rounds = [r for r in report["rounds"] if "predicted_dloss" in r]
    assert grown_rounds, "no round split anything"
    for r in grown_rounds:
        assert r["splits"] > 0 and r["predicted_dloss"] < 0  # only negative splitting indices are split
        assert set(r["spectra"]) == {"conv1", "blocks.0.pw", "blocks.1.pw", "blocks.2.pw", "blocks.3.pw"}
    md = (out / "growth_report.md").read_text()
    assert "| round |" in md and "Budget use" in md


def test_resume_reproduces_uninterrupted_run(grown, mini_root, tmp_path):
    out, report = grown
    copy = tmp_path / "run"
    shutil.copytree(out, copy)
    last = sorted((copy / "rounds").glob("round_*"))[-1]
    shutil.rmtree(last)  # interrupted during the last round ...
    shutil.rmtree(copy / "final")  # ... so the final stage never ran
    again = grow(mini_root, copy, TINY, resume=True)
    a = torch.load(out / "final" / "model.pt", weights_only=True)
    b = torch.load(copy / "final" / "model.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    how = report["chosen_finish"]
    assert again["final"][how]["test_acc"] == report["final"][how]["test_acc"]


def test_budget_below_seed_is_one_line_error(mini_root, tmp_path, capsys):
    rc = main(
        ["grow", "--data", str(mini_root), "--out", str(tmp_path / "r"), "--budget-kparams", "0.5", "--seed-width", "8"]
    )
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "\n" not in err and "--budget-kparams" in err and "seed" in err


def test_bad_split_stride_is_one_line_error(mini_root, tmp_path, capsys):
    argv = ["grow", "--data", str(mini_root), "--out", str(tmp_path / "r"), "--budget-kparams", "30", "--split-stride"]
    assert main([*argv, "0"]) != 0
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--split-stride" in err and not (tmp_path / "r").exists()


def test_missing_budget_and_missing_data(tmp_path):
    with pytest.raises(KwsError, match="budget"):
        grow(tmp_path, tmp_path / "r", replace(TINY, budget_kparams=None))
    assert (
        main(["grow", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r2"), "--budget-kparams", "300"]) != 0
    )


def test_cli_grow_300k_budget(mini_root, tmp_path, capsys, monkeypatch):
    """The user's words: `kws grow --budget-kparams 300` (one short round here) stays within 300K params. With the
    large-split threshold lowered below the slice's 3,220 clips, it warns once that it trains on the CPU."""
    from kws import distributed

    monkeypatch.setattr(distributed, "CPU_WARN_CLIPS", 3000)
    out = tmp_path / "r300"
    rc = main(
        [
            "grow",
            "--data",
            str(mini_root),
            "--out",
            str(out),
            "--budget-kparams",
            "300",
            "--seed-width",
            "16",
            "--seed-epochs",
            "1",
            "--max-rounds",
            "1",
            "--final-epochs",
            "1",
            "--split-clips",
            "128",
            "--json",
        ]
    )
    assert rc == 0
    captured = capsys.readouterr()
    rep = json.loads(captured.out)
    assert rep["params"] <= 300_000
    warned = [line for line in captured.err.splitlines() if "no GPU found" in line]
    if torch.cuda.is_available():
        assert warned == []
    else:
        assert len(warned) == 1 and "3,220 training clips" in warned[0]
    assert (out / "report" / "report.html").is_file()


def test_lanczos_solver_grows_within_budget_and_needs_every_position(mini_root, tmp_path, capsys):
    argv = ["grow", "--data", str(mini_root), "--out", str(tmp_path / "r"), "--budget-kparams", "3"]
    argv += [
        "--seed-width",
        "8",
        "--seed-epochs",
        "1",
        "--max-rounds",
        "1",
        "--final-epochs",
        "1",
        "--split-clips",
        "64",
    ]
    assert main([*argv, "--split-solver", "lanczos", "--split-stride", "8"]) != 0  # lanczos reads every position
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--split-stride" in err and not (tmp_path / "r").exists()
    assert main([*argv, "--split-solver", "lanczos", "--lanczos-iters", "8", "--json"]) == 0
    assert 0 < json.loads(capsys.readouterr().out)["params"] <= 3000
    rounds = json.loads((tmp_path / "r" / "growth_report.json").read_text())["rounds"]
    assert len(rounds) == 2 and rounds[1]["splits"] > 0
    assert rounds[1]["split_pass"]["solver"] == "lanczos" and rounds[1]["split_pass"]["clip_sampling"] == "importance"
    cfg = json.loads((tmp_path / "r" / "grow_config.json").read_text())
    assert cfg["split_solver"] == "lanczos" and cfg["lanczos_iters"] == 8


@pytest.mark.parametrize("activation", ["silu", "hardswish"])
def test_ram_budget_holds_in_the_tflm_arena_for_gated_activations(activation, mini_root, tmp_path):
    """--budget-ram-kb with SiLU / hard swish: the real TFLM head of the grown int8 model stays within the budget.

    Seed width 8 with this activation peaks at 3,000 B (SiLU: 3 x 1,000 B of conv1 output) or 2,000 B; a ReLU
    count (input + output) would allow widths whose SiLU arena is half as large again.
    """
    import numpy as np

    from kws.checkpoint import load_run
    from kws.export import convert
    from kws.export.tflm import measure_arena

    ram = {"silu": 4500, "hardswish": 3000}[activation]
    cfg = replace(
        TINY, activation=activation, budget_kparams=None, budget_ram_kb=ram / 1024, growth_per_round=2.0, engine="tflm"
    )
    report = grow(mini_root, tmp_path / "r", cfg)
    assert report["rounds"][-1]["params"] > report["rounds"][0]["params"]  # it grew
    model = load_run(tmp_path / "r" / "final").model.eval()
    assert model.spec.activation == activation
    calibration = np.random.default_rng(0).normal(scale=4.0, size=(8, 49, 10)).astype(np.float32)
    head = measure_arena(convert.to_tflite_int8(model, calibration)).head_bytes
    assert report["peak_activation_bytes"] <= ram and head <= ram + 3 * 16  # 16 B alignment per live tensor


# --- bad input, --resume against the run's record, --words (issue 19), on a small yes/no slice -----------------


@pytest.fixture(scope="module")
def yes_no(mini_root, tmp_path_factory):
    from test_cli_train import yes_no_slice

    return yes_no_slice(tmp_path_factory.mktemp("yesno") / "ds", mini_root)


def _grow_argv(data, out, *more: str) -> list[str]:
    tiny = ["--seed-width", "8", "--seed-epochs", "1", "--max-rounds", "1", "--final-epochs", "1"]
    return ["grow", "--data", str(data), "--out", str(out), *tiny, "--split-clips", "32", "--batch-size", "16", *more]


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("kws grow: error: ") and "\n" not in err, err
    return err


def _must_not_load(*args, **kwargs):
    raise AssertionError("the dataset was loaded before the settings were checked")


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0", "0.5"])
def test_bad_or_too_small_budget_is_one_line_before_the_data_loads(yes_no, tmp_path, capsys, monkeypatch, value):
    from kws import data

    monkeypatch.setattr(data, "load_dataset", _must_not_load)
    assert main(_grow_argv(yes_no, tmp_path / "r", "--budget-kparams", value)) == 2
    err = _one_line(capsys)
    assert "--budget-kparams" in err and (value in err or "seed already needs" in err)
    assert not (tmp_path / "r").exists()


@pytest.fixture(scope="module")
def yes_no_grown(yes_no, tmp_path_factory):
    """A grown run on the yes/no task (--words yes,no), budget 3K, growth cap 1.0."""
    out = tmp_path_factory.mktemp("grow_yes_no") / "run"
    assert main(_grow_argv(yes_no, out, "--words", "yes,no", "--budget-kparams", "3", "--growth-per-round", "1")) == 0
    return out


def _files(run) -> dict:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()}


def test_words_grow_the_yes_no_task_and_are_recorded(yes_no_grown, yes_no):
    from kws.checkpoint import load_run

    run = load_run(yes_no_grown / "final")
    assert run.labels == ["_silence_", "_unknown_", "yes", "no"] and run.task.words == ("yes", "no")
    rec = json.loads((yes_no_grown / "grow_data.json").read_text())
    assert rec["task"]["words"] == ["yes", "no"] and rec["data_root"] == str(yes_no)
    assert json.loads((yes_no_grown / "grow_config.json").read_text())["budget_kparams"] == 3.0


def test_resume_with_other_flags_is_refused_and_rewrites_nothing(yes_no_grown, yes_no, capsys):
    before = _files(yes_no_grown)
    resume = ["grow", "--out", str(yes_no_grown), "--resume"]
    assert main([*resume, "--budget-kparams", "20", "--growth-per-round", "0.2"]) == 2
    err = _one_line(capsys)
    assert "--budget-kparams 20.0 (the run's: 3.0" in err and "--growth-per-round 0.2 (the run's: 1.0" in err
    assert main([*resume, "--words", "yes,no,cat", "--lr", "0.1"]) == 2
    err = _one_line(capsys)
    assert "--words yes,no,cat (the run's: yes,no" in err and "--lr 0.1 (the run's: 0.001" in err
    assert main([*resume, "--data", str(yes_no.parent)]) == 2
    assert "--data" in _one_line(capsys)
    assert _files(yes_no_grown) == before  # grow_config.json and every other record untouched


def test_resume_removes_stale_temp_files_and_takes_the_runs_settings(yes_no_grown, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(yes_no_grown, run)
    (run / "rounds" / ".tmp_round_002_4242").mkdir()
    (run / "rounds" / ".tmp_round_002_4242" / "model.pt").write_bytes(b"half")
    (run / ".growth_report.json.x1y2z3.tmp").write_text("{")
    (run / "final" / ".metrics.json.abc123.tmp").write_text("{")
    argv = ["grow", "--out", str(run), "--resume", "--budget-kparams", "3", "--words", "yes,no", "--json"]
    assert main(argv) == 0  # equal to the record: fine; --data and the rest come from the run
    err = capsys.readouterr().err
    assert "removed" in err and not list(run.rglob(".*tmp*"))
    assert json.loads((run / "grow_config.json").read_text()) == json.loads(
        (yes_no_grown / "grow_config.json").read_text()
    )


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "model.pt").write_bytes(b"PK\x03\x04 truncated"),
        lambda d: (d / "round.json").write_text((d / "round.json").read_text()[:40]),
        lambda d: (d / "arch.json").unlink(),
    ],
    ids=["corrupt-model", "truncated-round-json", "missing-arch"],
)
def test_damaged_round_is_one_line_naming_the_file(yes_no_grown, tmp_path, capsys, monkeypatch, damage):
    from kws import data

    run = tmp_path / "run"
    shutil.copytree(yes_no_grown, run)
    damage(run / "rounds" / "round_001")
    monkeypatch.setattr(data, "load_dataset", _must_not_load)
    assert main(["grow", "--out", str(run), "--resume"]) == 2
    err = _one_line(capsys)
    assert "round_001" in err and f"delete {run / 'rounds' / 'round_001'}" in err


def test_grow_config_matches_the_split_presets_and_help_shows_its_defaults(capsys):
    from kws.recipe import GrowConfig
    from kws.splitting import FAST, WIDE

    assert GrowConfig().surrogate_beta == FAST.surrogate_beta == WIDE.surrogate_beta
    with pytest.raises(SystemExit):
        main(["grow", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    cfg = GrowConfig()
    for flag, value in (("--seed-epochs", cfg.seed_epochs), ("--final-epochs", cfg.final_epochs)):
        assert f"(default: {value})" in text.split(f"{flag} {flag[2:].upper().replace('-', '_')} ", 1)[1][:200]
    from kws.cli import build_parser

    grow_parser = build_parser()._subparsers._group_actions[0].choices["grow"]
    assert all(a.help for a in grow_parser._actions), [a.dest for a in grow_parser._actions if not a.help]


def test_demo_words_and_budget_are_checked_before_speaking_and_against_an_earlier_run(
    yes_no_grown, tmp_path, capsys, monkeypatch
):
    from kws import demo

    monkeypatch.chdir(tmp_path)  # no data/speech_commands_v0.02 here: the demo would speak its own
    monkeypatch.setattr(demo, "dataset", _must_not_load)
    for argv, needle in (
        (["--words", "yes,maybe"], "--words: the demo's synthetic dataset has no maybe"),
        (["--budget-kparams", "nan"], "--budget-kparams nan"),
        (["--per-word", "0"], "--per-word 0"),
    ):
        assert main(["demo", "--out", str(tmp_path / "d"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("kws demo: error: ") and "\n" not in err and needle in err, err
    shutil.copytree(yes_no_grown, tmp_path / "d" / "grown")  # an earlier demo grown on yes,no
    assert main(["demo", "--out", str(tmp_path / "d"), "--words", "yes,no,up"]) == 2
    assert "--words yes,no,up (the run's: yes,no" in capsys.readouterr().err


def test_a_seed_over_the_time_budget_is_a_one_line_error():
    from kws.grow import check_budget, seed_spec
    from kws.recipe import GrowConfig

    cfg = GrowConfig(budget_ms=0.5, core="cortex-m4", clock_mhz=64.0)
    with pytest.raises(KwsError, match="--budget-ms: the seed already needs") as e:
        check_budget(cfg, seed_spec(cfg), 12)
    assert "\n" not in str(e.value) and "--clock-mhz" in str(e.value)
    check_budget(GrowConfig(budget_ms=500.0), seed_spec(GrowConfig()), 12)  # a 32-wide seed fits 500 ms


# --- growing to the chip (issue 16): the time, RAM and flash budgets, checked on the target after growing -------


@pytest.mark.firmware
def test_growth_under_a_time_budget_keeps_it_measured_in_qemu(mini_root, tmp_path, capsys, monkeypatch):
    """kws grow --target cortex-m4 --budget-ms B: the seed (width 8, SiLU) is predicted at 12.7 ms, so B = 15 ms
    binds. After growing, the final model is exported with the engine, linked for the M4 and run in QEMU: the
    measured inference is within B and within the cost model's 5% of its prediction, and the engine's RAM and
    flash are exactly what growth counted. A measured figure over its budget fails the run with one line."""
    from kws import devicecheck
    from kws.engine import measure
    from kws.recipe import GrowConfig

    if measure.available():
        pytest.skip(measure.available())
    out = tmp_path / "m4"
    argv = ["grow", "--data", str(mini_root), "--out", str(out), "--target", "cortex-m4", "--budget-ms", "15"]
    argv += ["--seed-width", "8", "--seed-epochs", "1", "--max-rounds", "2", "--final-epochs", "1"]
    argv += ["--growth-per-round", "2.0", "--cost-metric", "ms", "--split-clips", "64", "--batch-size", "32", "--json"]
    assert main(argv) == 0
    shown = json.loads(capsys.readouterr().out)
    check = json.loads((out / "device_check.json").read_text())
    assert shown["device_check"] == check and check["ok"] and check["measured"]
    rows = {r["figure"]: r for r in check["rows"]}
    t = rows["inference time"]
    assert t["budget"] == 15.0 and t["measured"] <= 15.0 and abs(t["error"]) < 0.05, t
    assert t["measured"] > 12.7 * 1.05  # it grew towards the budget, measured
    for name in ("network RAM (engine arena + scratch)", "network flash (engine constants)"):
        assert rows[name]["predicted"] == rows[name]["measured"] <= rows[name]["budget"], rows[name]
    assert rows["device RAM (app + stack)"]["budget"] == 208 * 1024  # the board's, less its reserve
    grown = json.loads((out / "growth_report.json").read_text())
    assert grown["budget"]["instructions"] == 15 * 64_000 and "time budget" in grown["rounds"][-1]["stop"]
    assert "On the target: cortex-m4" in (out / "report" / "report.html").read_text()

    # the same run held to a budget below its measured time fails, naming the figure and both numbers
    cfg = GrowConfig.from_dict(json.loads((out / "grow_config.json").read_text()))
    tight = replace(cfg, budget_ms=round(t["measured"] - 0.5, 1))
    failed = devicecheck.device_check(out, tight, mini_root)
    assert not failed["ok"] and failed["failures"] == [
        f"inference time {t['measured']:,.1f} ms > budget {tight.budget_ms:,.1f} ms"
    ]
    # with --engine tflm the RAM row is TFLM's arena head, measured by the real interpreter, against kws.cost's count
    tflm = replace(cfg, engine="tflm", budget_ms=None, budget_flash_kb=None, cost_metric="params")
    rows = {r["figure"]: r for r in devicecheck.device_check(out, tflm, mini_root)["rows"]}
    head = rows["network RAM (TFLM arena head)"]
    assert 0 <= head["measured"] - head["predicted"] < 3 * 16 and "inference time" not in rows  # 16 B alignment
    real = devicecheck.device_check
    monkeypatch.setattr(devicecheck, "device_check", lambda run, c, data: real(run, tight, data))
    assert main([*argv[:-1], "--resume"]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "device check" in err and "inference time" in err and "> budget" in err, err


def test_a_seed_over_the_ram_or_flash_budget_is_a_one_line_error():
    """The engine's count, not TFLM's: a budget between the seed's engine RAM and its TFLM head passes with the
    default engine and fails with --engine tflm; --budget-flash-kb counts the engine's constants."""
    from kws.engine.spec import engine_const_bytes, engine_ram_bytes
    from kws.grow import check_budget, seed_spec
    from kws.recipe import GrowConfig

    spec = seed_spec(GrowConfig())
    between = (engine_ram_bytes(spec) + cost(spec).peak_activation_bytes) / 2 / 1024
    check_budget(GrowConfig(budget_ram_kb=between), spec, 12)
    with pytest.raises(KwsError, match="--budget-ram-kb: the seed already needs"):
        check_budget(GrowConfig(budget_ram_kb=between, engine="tflm"), spec, 12)
    with pytest.raises(KwsError, match="--budget-flash-kb: the seed already needs") as e:
        check_budget(GrowConfig(budget_flash_kb=(engine_const_bytes(spec) - 1) / 1024), spec, 12)
    assert "\n" not in str(e.value)
    with pytest.raises(KwsError, match="--budget-ms counts the generated engine"):
        GrowConfig(budget_ms=100.0, engine="tflm")
