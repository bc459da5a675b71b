"""After `kws grow`: the grown model on its target, measured, against the budgets and the figures growth predicted.

Growth counts its budgets from the ArchSpec alone: the engine cost model's instructions (kws.engine.costmodel,
fitted in QEMU), the engine's memory plan and its constants (kws.engine.spec). device_check() exports the final
model as `kws export` does (int8 TFLite, the generated engine, linked and run for the target's core in QEMU) into
<run>/device_check/, and sets each measured figure beside its prediction and its budget:

- inference time: QEMU instructions of one inference over the clock (1 instruction per cycle, stated), against
  --budget-ms; predicted from the cost model;
- network RAM: the generated engine's planned arena + scratch (kws engine) or TFLM's measured arena head (tflm),
  against --budget-ram-kb;
- network flash: the generated engine's constant arrays, against --budget-flash-kb;
- the device totals (flash of the linked app, RAM with the painted stack) against the board's budgets, and one
  inference period (inference + the frontend's hops) against the period: kws export's own verdicts.

A figure over its budget fails the run with one line (kws.cli.grow); the record <run>/device_check.json and the
growth report show every row either way. Where QEMU or the cross compiler is missing the export's figures are
estimates, and the rows say so.
"""

from __future__ import annotations

from pathlib import Path

from kws.errors import BudgetExceeded, KwsError
from kws.files import atomic_write_json
from kws.recipe import GrowConfig

CHECK_FILE = "device_check.json"


def needs_device_check(cfg: GrowConfig) -> bool:
    """A run with a device budget (--target, --budget-ms, --budget-ram-kb, --budget-flash-kb) is checked."""
    budgets = (cfg.target, cfg.budget_ms, cfg.budget_ram_kb, cfg.budget_flash_kb)
    return cfg.device_check and any(x is not None for x in budgets)


def _row(name: str, unit: str, predicted, measured, budget, basis: str) -> dict:
    return dict(
        figure=name,
        unit=unit,
        predicted=predicted,
        measured=measured,
        budget=budget,
        error=None if predicted in (None, 0) or measured is None else measured / predicted - 1,
        within_budget=budget is None or measured is None or measured <= budget,
        basis=basis,
    )


def _rows(rep: dict, cfg: GrowConfig) -> list[dict]:
    from kws.grow import budget_figures, budget_of
    from kws.models import ArchSpec

    spec = ArchSpec.from_dict(rep["arch"])
    pred, rt = budget_figures(cfg, spec, len(rep["labels"])), rep["realtime"]
    b = budget_of(cfg)
    budget = dict(ram_bytes=b.ram_bytes, flash_bytes=b.flash_bytes)
    kind = "measured" if rt["basis"].startswith("measured") else "estimate"
    clock_khz = cfg.clock_mhz * 1e3
    rows = []
    if cfg.engine == "kws":
        eng = rep["kws_engine"]
        instr = rt["instructions_per_inference"]
        rows.append(
            _row(
                "inference time",
                "ms",
                None if pred["instructions"] is None else pred["instructions"] / clock_khz,
                instr / clock_khz,
                cfg.budget_ms,
                f"{kind}: {rt['basis']}; predicted by the engine's cost model (kws.engine.costmodel)",
            )
        )
        rows.append(
            _row(
                "network RAM (engine arena + scratch)",
                "B",
                pred["ram_bytes"],
                eng["engine_ram_bytes"],
                budget["ram_bytes"],
                "exact: the memory plan of the generated kws_net.c; predicted by kws.engine.spec.engine_ram_bytes",
            )
        )
        rows.append(
            _row(
                "network flash (engine constants)",
                "B",
                pred["flash_bytes"],
                eng["network"]["const_bytes"],
                budget["flash_bytes"],
                "exact: KWS_NET_CONST_BYTES of the generated kws_net.c; predicted: kws.engine.spec.engine_const_bytes",
            )
        )
    else:
        rows.append(
            _row(
                "network RAM (TFLM arena head)",
                "B",
                pred["ram_bytes"],
                rep["tflm_arena"]["head_bytes"],
                budget["ram_bytes"],
                "measured: TFLite Micro's allocator (x86-64 host build); predicted by kws.cost (in + out peak)",
            )
        )
    b, label = rep["budget"], ("measured" if rep.get("kws_engine", {}).get("measured") else "estimate")
    rows += [
        _row("device flash (app less platform)", "B", None, rep["flash_bytes"], b["flash_budget_bytes"], label),
        _row("device RAM (app + stack)", "B", None, rep["ram_bytes"], b["ram_budget_bytes"], label),
        _row("inference period (inference + frontend)", "ms", None, rt["period_load_ms"], rt["period_ms"], kind),
    ]
    return rows


def device_check(run_dir: str | Path, cfg: GrowConfig, data_root: str | Path | None = None) -> dict:
    """Export <run_dir>/final for the run's target (or its core) and compare; writes <run_dir>/device_check.json."""
    from kws.export import export_run

    run = Path(run_dir)
    target = cfg.target or cfg.core
    try:
        rep = export_run(
            run / "final",
            run / "device_check",
            target=target,
            check_only=True,
            clock_mhz=cfg.clock_mhz,
            engine=cfg.engine,
            data_root=data_root,
            progress=False,
        )
    except BudgetExceeded as e:  # check_only reports; this is the lower-bound precheck's failure
        raise KwsError(f"device check: {e}") from None
    rows = _rows(rep, cfg)
    failures = [
        f"{r['figure']} {r['measured']:,.1f} {r['unit']} > budget {r['budget']:,.1f} {r['unit']}"
        for r in rows
        if not r["within_budget"]
    ]
    out = dict(
        target=target,
        core=rep["target"]["name"],
        clock_mhz=cfg.clock_mhz,
        engine=cfg.engine,
        measured=bool(rep.get("kws_engine", {}).get("measured")),
        export_dir=str(run / "device_check"),
        int8_test_acc=rep["parity"].get("int8_accuracy"),
        rows=rows,
        failures=failures,
        ok=not failures,
    )
    atomic_write_json(run / CHECK_FILE, out)
    return out


def check_lines(check: dict) -> str:
    """The check as text: one line per figure, predicted / measured / budget."""
    lines = [f"device check on {check['core']} at {check['clock_mhz']:g} MHz ({check['engine']} engine):"]
    for r in check["rows"]:

        def fmt(v, r=r):
            return "-" if v is None else (f"{v:,.1f}" if r["unit"] == "ms" else f"{int(v):,}")

        err = "" if r["error"] is None else f" ({r['error']:+.1%})"
        ok = "ok" if r["within_budget"] else "OVER BUDGET"
        lines.append(
            f"  {r['figure']}: predicted {fmt(r['predicted'])}, measured {fmt(r['measured'])}{err}, budget "
            f"{fmt(r['budget'])} {r['unit']}: {ok}"
        )
    return "\n".join(lines)
