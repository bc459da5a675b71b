"""The footprint report of one export: report.json, report.md and the summary table printed on stdout.

The device figures come from kws.export.device, each with its basis in report["basis"] (measured or estimate):
with the default engine (kws) flash, RAM and time are measured on the target's core (linked images, QEMU); with
`--engine tflm` flash_bytes = model_bytes + TFLM runtime (estimate, footprint.py) + frontend and ram_bytes = the
TFLM arena measured by the real interpreter + frontend buffers. Fit is judged against the target's flash and RAM
minus the stated application reserve (targets.py); the real-time verdict against the app's inference period.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from kws.cost import Cost
from kws.errors import BudgetExceeded
from kws.export.footprint import TFLM_RUNTIME_FLASH_BASIS, TFLM_RUNTIME_FLASH_OS_BYTES
from kws.export.targets import Target
from kws.files import atomic_write_text

# TFLite op each cost.py layer kind becomes (activations are fused into the convolutions for ReLU).
_KIND_OP = {
    "conv": "CONV_2D",
    "depthwise": "DEPTHWISE_CONV_2D",
    "pointwise": "CONV_2D",
    "avgpool": "AVERAGE_POOL_2D",
    "fc": "FULLY_CONNECTED",
}


def per_layer(cost: Cost, target: Target) -> list[dict]:
    """One row per layer: cost.py's counts, the TFLite op, int8 weight bytes and the latency estimate."""
    rows = []
    for layer in cost.per_layer:
        row = layer.to_dict()
        channels = layer.out[2]
        weights = layer.params_deployed - channels if layer.params_deployed else 0
        row.update(
            op=_KIND_OP[layer.kind],
            weight_bytes=weights + (4 * channels if layer.params_deployed else 0),
            latency_ms=target.latency_ms(layer.macs),
        )
        rows.append(row)
    return rows


def build_report(
    *,
    cost: Cost,
    target: Target,
    model_bytes: int,
    arena: dict,
    device: dict,
    ops: list[str],
    parity: dict,
    extra: dict,
) -> dict:
    """Assemble the report dict (the keys of report.json); device: kws.export.device's figures for the engine."""
    flash, ram = device["flash_bytes"], device["ram_bytes"]
    report = dict(
        engine=device["engine"],
        macs=cost.macs,
        params=cost.params_deployed,
        model_bytes=model_bytes,
        tflm_arena_bytes=arena["total_bytes"],
        tflm_arena=arena,
        frontend=device["frontend"],
        flash_bytes=flash,
        ram_bytes=ram,
        target=target.to_dict(),
        budget=dict(
            flash_budget_bytes=target.flash_budget_bytes,
            ram_budget_bytes=target.ram_budget_bytes,
            fits_flash=flash <= target.flash_budget_bytes,
            fits_ram=ram <= target.ram_budget_bytes,
            reserve_flash_bytes=target.reserve_flash_kb * 1024,
            reserve_ram_bytes=target.reserve_ram_kb * 1024,
        ),
        latency_ms=device["realtime"]["inference_ms"],
        realtime=device["realtime"],
        basis=dict(
            device["basis"],
            macs="counted from the architecture (kws.cost), equal to the graph's",
            model_bytes="measured: the .tflite's size",
            tflm_arena_bytes="measured: TFLite Micro's RecordingMicroAllocator, x86-64 host build (Cortex-M ~+1%)",
        ),
        ops=ops,
        per_layer=per_layer(cost, target),
        parity=parity,
    )
    if device["engine"] == "tflm":
        report.update(tflm_runtime_flash_bytes=device["tflm_runtime_flash_bytes"])
        report.update(tflm_runtime_flash_basis=TFLM_RUNTIME_FLASH_BASIS)
    else:
        keys = ("network", "measurement", "engine_ram_bytes", "engine_flash_bytes", "engine_code_bytes", "measured")
        report["kws_engine"] = {k: device[k] for k in keys}
        report["kws_engine"]["ram_vs_tflm_arena"] = device["engine_ram_bytes"] / max(1, arena["total_bytes"])
        if "engine_vs_litert_ref_max_lsb" in device:
            parity["engine_vs_litert_ref_max_lsb"] = device["engine_vs_litert_ref_max_lsb"]
    report.update(extra)
    return report


def check_budget(report: dict, at_least: bool = False) -> None:
    """Raise BudgetExceeded, one line naming each resource that does not fit and its numbers."""
    budget, t = report["budget"], report["target"]
    problems, flags = [], []
    for resource, key, flag in (("flash", "flash", "--flash-kb"), ("RAM", "ram", "--ram-kb")):
        need, limit = report[f"{key}_bytes"], budget[f"{key}_budget_bytes"]
        if need > limit:
            problems.append(
                f"{resource} needs {'at least ' * at_least}{need:,} B but {t['name']} ({t['board']}) leaves "
                f"{limit:,} B ({t[f'{key}_kb']} KB minus a {t[f'reserve_{key}_kb']} KB application reserve)"
            )
            flags.append(flag)
    if problems:
        raise BudgetExceeded(
            f"{'; '.join(problems)}; choose a smaller model, another --target or a bigger {' / '.join(flags)}"
        )


def check_realtime(report: dict) -> None:
    """Raise BudgetExceeded, one line naming the time one inference period needs, the period, and the flags."""
    rt, t = report["realtime"], report["target"]
    if rt["keeps_up"]:
        return
    kind = "measured" if rt["basis"].startswith("measured") else "estimated"
    raise BudgetExceeded(
        f"real time: one inference period needs {rt['period_load_ms']:.1f} ms on {t['name']} ({t['board']}) at "
        f"{rt['clock_mhz']:g} MHz ({kind}: inference {rt['inference_ms']:.1f} ms + {rt['period_hops']} frontend hops "
        f"{rt['frontend_ms']:.1f} ms) but the period is {rt['period_ms']:.0f} ms ({rt['period_hops']} hops of "
        f"{rt['hop_ms']:g} ms); choose a longer --period-hops, a faster --clock-mhz or a smaller model "
        "(kws grow --target, or --budget-ms)"
    )


def precheck_budget(cost: Cost, target: Target, frontend: dict, engine: str = "tflm") -> None:
    """Fail before converting when even lower bounds do not fit: int8 weights for flash, the activation peak for RAM.

    The measured arena is always >= the (in + out) activation peak and the .tflite always >= its int8 weights, so
    a model that fails here would fail the measured check too, only minutes later. The kws engine needs no TFLM
    runtime and works in place, so its bounds are the weights and the largest single activation tensor.
    """
    if engine == "tflm":
        runtime, activations = TFLM_RUNTIME_FLASH_OS_BYTES, cost.peak_activation_bytes
    else:
        runtime, activations = 0, max(int(np.prod(layer.out)) for layer in cost.per_layer)
    bounds = dict(
        flash_bytes=cost.weight_bytes_int8 + runtime + frontend["flash_bytes"],
        ram_bytes=activations + frontend["ram_bytes"],
    )
    budget = dict(flash_budget_bytes=target.flash_budget_bytes, ram_budget_bytes=target.ram_budget_bytes)
    check_budget(dict(bounds, budget=budget, target=target.to_dict()), at_least=True)


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def _label(report: dict, key: str) -> str:
    return "measured" if report["basis"][key].startswith("measured") else "estimate"


def summary_rows(report: dict) -> list[tuple[str, str]]:
    t, p, b, rt = report["target"], report["parity"], report["budget"], report["realtime"]
    unit = "instructions" if report["engine"] == "kws" else "cycles"
    rows = [
        ("target", f"{t['name']} on {t['board']}, {t['clock_mhz']:.0f} MHz; engine {report['engine']}"),
        ("params / MACs", f"{report['params']:,} / {report['macs']:,}"),
        ("model (int8 .tflite)", f"{report['model_bytes']:,} B"),
        (
            "TFLM arena (measured)",
            f"{report['tflm_arena_bytes']:,} B (head {report['tflm_arena']['head_bytes']:,}, "
            f"tail {report['tflm_arena']['tail_bytes']:,})",
        ),
    ]
    if report["engine"] == "kws":
        e = report["kws_engine"]
        rows.append(
            (
                "engine arena + scratch",
                f"{e['engine_ram_bytes']:,} B ({e['ram_vs_tflm_arena']:.2f}x the TFLM arena); engine flash "
                f"{e['engine_flash_bytes']:,} B, {e['engine_code_bytes']:,} B of it code",
            )
        )
    rows += [
        (
            f"flash ({_label(report, 'flash_bytes')})",
            f"{_kb(report['flash_bytes'])} of {_kb(b['flash_budget_bytes'])} available "
            f"({'fits' if b['fits_flash'] else 'DOES NOT FIT'})",
        ),
        (
            f"RAM ({_label(report, 'ram_bytes')})",
            f"{_kb(report['ram_bytes'])} of {_kb(b['ram_budget_bytes'])} available "
            f"({'fits' if b['fits_ram'] else 'DOES NOT FIT'})",
        ),
        (
            f"inference ({_label(report, 'latency_ms')})",
            f"{report['latency_ms']:.1f} ms at {t['clock_mhz']:g} MHz ({rt['instructions_per_inference']:,} "
            f"{unit}, {rt['instructions_per_inference'] / report['macs']:.2f}/MAC)",
        ),
        (
            "real time",
            f"{rt['period_load_ms']:.1f} ms per {rt['period_ms']:.0f} ms inference period "
            f"({'keeps up' if rt['keeps_up'] else 'CANNOT KEEP UP'})",
        ),
        ("float TFLite vs torch", f"max abs logit diff {p['float_tflite_vs_torch_max_abs_logit']:.2e}"),
        ("int8 vs float top-1", f"{100 * p['int8_vs_float_top1_agreement']:.1f}% agree on {p['clips']} test clips"),
        ("accuracy float / int8", f"{100 * p['float_tflite_accuracy']:.2f}% / {100 * p['int8_accuracy']:.2f}%"),
    ]
    if "engine_vs_litert_ref_max_lsb" in p:
        rows.append(("engine vs LiteRT (ref)", f"max {p['engine_vs_litert_ref_max_lsb']} LSB on the device's input"))
    return rows


def summary_table(report: dict) -> str:
    rows = summary_rows(report)
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def markdown(report: dict) -> str:
    """report.md: the summary, the per-layer table and the bases of every estimate."""
    lines = ["# Export report", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in summary_rows(report)]
    lines += [
        "",
        "## Per layer",
        "",
        "| layer | op | output | MACs | params | weight B | act B | TFLM est. ms |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["per_layer"]:
        lines.append(
            f"| {r['name']} | {r['op']} | {'x'.join(map(str, r['output']))} | {r['macs']:,} | "
            f"{r['params_deployed']:,} | {r['weight_bytes']:,} | {r['activation_bytes']:,} | "
            f"{r['latency_ms']:.2f} |"
        )
    t = report["target"]
    lines += _engine_layers(report)
    lines += ["", "## Bases", ""]
    lines += [f"- {key}: {text}." for key, text in report["basis"].items()]
    lines += [
        f"- real time: {report['realtime']['basis']}.",
        f"- per-layer est. ms: TFLM at {t['cycles_per_mac']} cycles/MAC ({t['cycles_basis']}).",
        f"- Frontend {report['frontend']['flash_bytes']:,} B flash, {report['frontend']['ram_bytes']:,} B RAM: "
        f"{report['frontend']['source']}.",
        f"- Reserve for the application: {t['reserve_flash_kb']} KB flash, {t['reserve_ram_kb']} KB RAM.",
        "",
        "## Parity",
        "",
        "```",
        json.dumps(report["parity"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def _engine_layers(report: dict) -> list[str]:
    e = report.get("kws_engine") or {}
    if not e.get("measurement"):
        return []
    lines = ["", "## Engine layers (measured in QEMU)", "", "| layer | op | MACs | instructions | per MAC | in place |"]
    lines.append("|---|---|---:|---:|---:|---|")
    for layer, n in zip(e["network"]["layers"], e["measurement"]["layer_instructions"], strict=True):
        per = f"{n / layer['macs']:.2f}" if layer["macs"] else ""
        lines.append(
            f"| {layer['name']} | {layer['op']} | {layer['macs']:,} | {n:,} | {per} | {'yes' * layer['in_place']} |"
        )
    return lines


def write_report(out_dir: Path, report: dict) -> list[Path]:
    """Write report.json and report.md into out_dir (atomically)."""
    out_dir = Path(out_dir)
    return [
        atomic_write_text(out_dir / "report.json", json.dumps(report, indent=2) + "\n"),
        atomic_write_text(out_dir / "report.md", markdown(report)),
    ]
