"""`kws grow`: grow a DS-CNN by splitting steepest descent up to a params / MACs / RAM / time budget.

Defaults and choices come from kws.recipe.GrowConfig (torch-free); untyped flags stay out of the namespace, so with
--resume the typed ones are checked against the run's grow_config.json / grow_data.json.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace

from kws.cli import ACTIVATIONS
from kws.cli.options import default_of, given, suppressing_parser, with_default, words_arg
from kws.device import ENGINES
from kws.recipe import (
    COST_METRICS,
    FINISHES,
    SELECTORS,
    SPLIT_CLIP_SAMPLINGS,
    SPLIT_SAMPLINGS,
    SPLIT_SOLVERS,
    GrowConfig,
    TrainConfig,
)

# dest -> (type, help); the default shown is GrowConfig's field of the same name.
GROW_FLAGS = {
    "budget_kparams": (float, "max deployed parameters (BN folded), thousands (give at least one budget)"),
    "budget_mmacs": (float, "max multiply-accumulates per inference, millions"),
    "budget_ram_kb": (
        float,
        "max RAM of the network, KiB: with --engine kws the generated engine's planned arena + scratch (in-place and "
        "fused layers included, exact); with --engine tflm TFLM's arena head (a layer's input + output, SiLU 3 "
        "outputs); --target sets it from the board",
    ),
    "budget_flash_kb": (
        float,
        "max flash of the network, KiB: the generated engine's weights, biases, requantization constants and "
        "tables (--engine kws); --target sets it from the board",
    ),
    "budget_ms": (
        float,
        "max milliseconds per inference on --core at --clock-mhz, predicted by the engine's cost model (fitted in "
        "QEMU, 1 instruction per cycle); --target sets it from the board's real-time budget",
    ),
    "clock_mhz": (float, "the core's clock for --budget-ms, MHz (--target: the board's)"),
    "core": (str, "the core --budget-ms is counted on, one the cost model was fitted for (`kws targets`)"),
    "target": (
        str,
        "take --core, --clock-mhz and the budgets from this target's board (`kws targets`): --budget-ms from its "
        "200 ms inference period less the frontend's 10 hops, --budget-ram-kb and --budget-flash-kb from its RAM "
        "and flash after the application reserve, less the app, the stack and the engine's code, and --cost-metric "
        "ms; typed flags override them (default: unset)",
    ),
    "seed_arch": (str, "seed preset or spec JSON"),
    "seed_width": (int, "uniform width of the seed's layers, channels; 0 keeps the preset's own widths"),
    "seed_epochs": (int, "epochs of training the seed, >= 0"),
    "epochs_per_round": (int, "epochs of training after each round of splits, >= 1"),
    "final_epochs": (int, "epochs of the final stage, >= 1"),
    "total_epochs": (int, "fix the total epochs instead: the final stage gets what growth left (default: unset)"),
    "max_rounds": (int, "most rounds of splits"),
    "growth_per_round": (float, "cap on growth per round, fraction of the current cost"),
    "max_width": (int, "per-layer width cap, channels"),
    "eps": (float, "split step size (the two children move +-eps along the eigenvector)"),
    "tau": (float, "split only units with lambda_min < -tau"),
    "split_clips": (int, "clips in the splitting pass (default: the pass preset's)"),
    "position_stride": (int, "keep ~1 in N (clip, position) rows in the pass (default: the pass preset's)"),
    "lanczos_iters": (int, "Lanczos steps per layer with --split-solver lanczos (default: the preset's)"),
    "seed": (int, "seed of every phase's weights, shuffling and augmentation, and of the splitting pass"),
}
CHOICE_FLAGS = {
    "cost_metric": (COST_METRICS, "what the budget and the growth cap charge a split for"),
    "selector": (SELECTORS, "exact S_own+S_dw (ours), S_own only (public code), random units (ablation)"),
    "split_sampling": (SPLIT_SAMPLINGS, "how the pass draws its rows (default: the preset's, importance)"),
    "split_solver": (
        SPLIT_SOLVERS,
        "auto: dense while the network is narrow, lanczos once wide; dense: form S and eigh (splitting.FAST); "
        "lanczos: matrix-free over every position (splitting.WIDE)",
    ),
    "split_clip_sampling": (
        SPLIT_CLIP_SAMPLINGS,
        "how the pass draws its clips: a stratified subset, or by how wrong the network is on them "
        "(default: the preset's)",
    ),
    "finish": (FINISHES, "continue training the grown network, or retrain its architecture from scratch"),
    "engine": (ENGINES, "the runtime the RAM, flash and time budgets count: our generated engine, or TFLite Micro"),
}
TRAIN_FLAGS = {"batch_size": (int, "clips per optimizer step"), "lr": (float, "peak learning rate of every phase")}
# a typed flag that is not a GrowConfig field (nor a TRAIN_FLAGS one) is a runtime one: --data, --out, --words,
# --resume, --json
RECIPE_FIELDS = frozenset(f.name for f in fields(GrowConfig))


def target_budget(typed: dict) -> dict:
    """--target's core, clock and budgets, where not typed: the board's real-time budget for one inference (the
    app's 10-hop, 200 ms period less the frontend's 10 hops, at the board's clock and 1 instruction/cycle), and the
    RAM and flash its board leaves the network (kws.export.device.network_budgets)."""
    from kws.device import DeviceConfig
    from kws.errors import KwsError
    from kws.export.device import network_budgets
    from kws.export.targets import TARGETS
    from kws.frontend import FrontendConfig

    if typed["target"] not in TARGETS:
        raise KwsError(f"--target: {typed['target']!r} is not one of {', '.join(TARGETS)}")
    t, fe, engine = TARGETS[typed["target"]], FrontendConfig(), typed.get("engine", GrowConfig().engine)
    clock = typed.get("clock_mhz", t.clock_mhz)
    room = network_budgets(t, fe, engine)
    if room["ram_bytes"] <= 0 and "budget_ram_kb" not in typed:
        raise KwsError(
            f"--target {t.name}: the app without a network already needs more RAM than the {t.board} leaves "
            f"({t.ram_budget_bytes:,} B after its {t.reserve_ram_kb} KB reserve; app {t.app_ram_bytes:,} B measured); "
            "choose another --target or type --budget-ram-kb"
        )
    out = dict(core=t.name, clock_mhz=clock, budget_ram_kb=round(room["ram_bytes"] / 1024, 3))
    if engine == "kws":  # and each split is charged its predicted milliseconds
        budget = t.inference_budget_ms(DeviceConfig().inference_period_hops, fe.hop_ms, clock)
        out.update(budget_ms=round(budget, 3), budget_flash_kb=round(room["flash_bytes"] / 1024, 3), cost_metric="ms")
    return {**out, **{k: typed[k] for k in (*out, "core") if k in typed}}


def _flag(dest: str) -> str:
    return "--split-stride" if dest == "position_stride" else "--" + dest.replace("_", "-")


def _help(cls: type, dest: str, text: str) -> str:
    default = default_of(cls, dest)
    return text if default is None or "default:" in text else with_default(text, default)


def register(sub) -> None:
    p = suppressing_parser(
        sub,
        "grow",
        help="grow a DS-CNN from a seed under a params / MACs / RAM / time budget",
        description="Defaults are kws.recipe.GrowConfig's. With --resume every setting comes from the run in --out; "
        "a setting flag typed with it must equal the run's record.",
    )
    p.add_argument("--data", help="Speech Commands layout dataset folder; required unless --resume")
    p.add_argument("--out", required=True, help="run directory (rounds/, final/, growth_report.*)")
    p.add_argument(
        "--words",
        help="comma-separated keyword folders to classify, plus _silence_ and _unknown_ (e.g. yes,no: "
        "micro_speech's task) (default: the 10 Speech Commands keywords)",
    )
    for dest, (kind, text) in GROW_FLAGS.items():
        p.add_argument(_flag(dest), type=kind, dest=dest, help=_help(GrowConfig, dest, text))
    p.add_argument(
        "--activation",
        choices=ACTIVATIONS,
        help=_help(
            GrowConfig,
            "activation",
            "silu: best on validation, 1.5x ReLU's activation RAM; hardswish: ReLU's RAM in the seed's",
        ),
    )
    for dest, (choices, text) in CHOICE_FLAGS.items():
        p.add_argument(_flag(dest), choices=choices, dest=dest, help=_help(GrowConfig, dest, text))
    p.add_argument("--retrain", action="store_const", const="retrain", dest="finish", help="same as --finish retrain")
    p.add_argument("--compare-retrain", action="store_true", help="finish both ways and report both")
    for dest, (kind, text) in TRAIN_FLAGS.items():  # GrowConfig.train is a TrainConfig() (the test checks)
        p.add_argument(_flag(dest), type=kind, dest=dest, help=_help(TrainConfig, dest, text))
    p.add_argument(
        "--no-device-check",
        action="store_false",
        dest="device_check",
        help="skip the check after growing (with --target or a --budget-ms / --budget-ram-kb / --budget-flash-kb "
        "budget, the final model is exported with the engine, measured in QEMU on the core and compared with its "
        "budgets and predicted figures; a figure over its budget fails the run)",
    )
    p.add_argument("--resume", action="store_true", help="continue from the last complete round")
    p.add_argument("--json", action="store_true", help="print the growth report as JSON")
    p.set_defaults(handler=_grow)


def _grow(args) -> int:
    from kws.data import TaskConfig
    from kws.devicecheck import check_lines, device_check, needs_device_check
    from kws.errors import KwsError
    from kws.grow import grow
    from kws.report import write_report
    from kws.resume import grow_config

    typed = given(args)
    train_typed = {k: typed.pop(k) for k in TRAIN_FLAGS if k in typed}
    runtime = {k: typed.pop(k) for k in list(typed) if k not in RECIPE_FIELDS}
    if typed.get("seed_width") == 0:
        typed["seed_width"] = None
    if typed.get("target"):
        typed.update(target_budget(typed))
    base = grow_config(args.out) if runtime.get("resume") else GrowConfig()
    cfg = replace(base, **typed, train=replace(base.train, **train_typed))
    words = words_arg(runtime["words"]) if "words" in runtime else None
    task = TaskConfig(words=words) if words else None
    report = grow(runtime.get("data"), args.out, cfg, task=task, resume=bool(runtime.get("resume")))
    check = device_check(args.out, cfg, runtime.get("data")) if needs_device_check(cfg) else None
    html = write_report(args.out)
    if runtime.get("json"):
        shown = {k: v for k, v in report.items() if k != "rounds"}
        print(json.dumps({**shown, **({"device_check": check} if check else {})}, indent=1))
    else:
        print(f"grown: widths {report['arch']['conv1_width']} {report['arch']['widths']}")
        print(
            f"params {report['params']:,}  MACs {report['macs']:,}  peak activations "
            f"{report['peak_activation_bytes']:,} B  rounds {len(report['rounds']) - 1}"
        )
        for how, f in report["final"].items():
            print(f"final ({how}, {f['epochs']} epochs): test acc {f['test_acc']:.4f}  -> {f['run_dir']}")
        if check is not None:
            print(check_lines(check))
        print(f"report: {html}")
    if check is not None and not check["ok"]:
        raise KwsError(f"device check ({args.out}/device_check.json): " + "; ".join(check["failures"]))
    return 0
