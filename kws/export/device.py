"""The device figures of one export, each labelled measured or estimated with its basis, and the real-time verdict.

engine_figures() (`kws export --engine kws`, the default): kws.engine generates kws_net.c/.h for the int8 model
into gen_dir beside the export's settings, and kws.engine.measure links and runs the whole app for the target's
own core: flash = the app image less the platform base, RAM = .data + .bss + the stack high-water mark, time =
instructions per inference and per inference period in QEMU over the target's clock. The device's scores on its
own input are compared with LiteRT's reference kernels. Where the cross compiler or QEMU is missing, the figures
are estimates from the engine's plan and the target's measured instructions per MAC (targets.py), labelled so.

tflm_figures() (`--engine tflm`): today's sums, every one an estimate except the measured TFLM arena.

realtime(): one inference period of the app (KWS_INFERENCE_PERIOD_HOPS hops of the frontend + one inference)
against the period's audio time; check_realtime (report.py) fails an export that cannot keep up.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from kws.engine import generate
from kws.engine import measure as engine_measure
from kws.engine.qemu import CORES
from kws.export import footprint
from kws.export.targets import Target
from kws.frontend import FrontendConfig

ENGINE_STACK_ESTIMATE_BYTES = 2048  # measured 1,656-1,744 B for kws_setup + kws_loop on every core (QEMU, painted)
ENGINE_CODE_ESTIMATE_BYTES = 11 * 1024  # engine code beyond its constants, measured 8.6-11.0 KB (-O2, every core)


def period(frontend: FrontendConfig, device) -> dict:
    hop_ms = 1000.0 * frontend.hop_samples / frontend.sample_rate_hz
    return dict(
        period_hops=device.inference_period_hops, hop_ms=hop_ms, period_ms=device.inference_period_hops * hop_ms
    )


def realtime(target: Target, frontend: FrontendConfig, device, inference: float, per_hop: float, basis: str) -> dict:
    """The verdict: inference + period_hops x frontend hop, in instructions (or cycles) at the target's clock."""
    p = period(frontend, device)
    load = inference + p["period_hops"] * per_hop
    return dict(
        p,
        clock_mhz=target.clock_mhz,
        inference_ms=target.ms(inference),
        frontend_ms=target.ms(p["period_hops"] * per_hop),
        period_load_ms=target.ms(load),
        instructions_per_inference=int(round(inference)),
        instructions_per_period=int(round(load)),
        keeps_up=target.ms(load) <= p["period_ms"],
        basis=basis,
    )


def _litert_ref(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = Interpreter(model_content=flatbuffer, experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs = []
    for x in inputs:
        it.set_tensor(i["index"], np.asarray(x, np.int8).reshape(i["shape"]))
        it.invoke()
        outs.append(it.get_tensor(o["index"]).reshape(-1).copy())
    return np.array(outs)


def engine_figures(flatbuffer: bytes, gen_dir: Path, target: Target, frontend: FrontendConfig, device) -> dict:
    """Generate kws_net.c/.h into gen_dir (which already holds the settings) and measure or estimate its figures."""
    net = generate(flatbuffer, gen_dir)
    reason = engine_measure.available() or ("" if target.name in CORES else f"QEMU emulates no {target.core}")
    out = dict(engine="kws", network=net.to_dict(), engine_ram_bytes=net.ram_bytes)
    if reason:
        return _estimated(out, net, reason, target, frontend, device)
    return _measured(out, net, flatbuffer, gen_dir, target, frontend, device)


def _measured(out: dict, net, flatbuffer: bytes, gen_dir: Path, target: Target, frontend, device) -> dict:
    clip = engine_measure.speed_clip(frontend.sample_rate_hz, frontend.clip_samples)
    m = engine_measure.measure(gen_dir, target.name, clip)
    where = f"{target.name} build ({m.opt}) on QEMU {m.machine}"
    if target.name == "cortex-m0plus":
        where += " (" + CORES[target.name].note + ")"
    lsb = int(np.abs(m.scores.astype(int) - _litert_ref(flatbuffer, m.features).astype(int)).max())
    time_basis = f"measured: {where}; {engine_measure.INSTRUCTIONS_BASIS}"
    out.update(
        measured=True,
        measurement=m.to_dict(),
        flash_bytes=m.flash_bytes,
        ram_bytes=m.ram_bytes,
        frontend=dict(
            flash_bytes=m.frontend_flash_bytes,
            ram_bytes=m.frontend_ram_bytes,
            source=f"measured: the app with a null model less the platform base, {where}",
        ),
        engine_flash_bytes=m.engine_flash_bytes,
        engine_code_bytes=m.engine_flash_bytes - net.const_bytes,
        engine_vs_litert_ref_max_lsb=lsb,
        realtime=realtime(
            target, frontend, device, m.inference_instructions, m.frontend_instructions_per_hop, time_basis
        ),
        basis=dict(
            flash_bytes=f"measured: arm-none-eabi-size of the linked app (frontend + engine + weights + app) less "
            f"the platform base (same start-up, empty main), {where}",
            ram_bytes=f"measured: .data + .bss of the app less the base, + the stack high-water mark painted and "
            f"read back in QEMU ({m.stack_bytes:,} B), {where}",
            latency_ms=time_basis,
        ),
    )
    return out


def _estimated(out: dict, net, reason: str, target: Target, frontend, device) -> dict:
    fe = footprint.computed_frontend_footprint(frontend, f"; {reason}")
    inference = net.macs * target.engine_instructions_per_mac
    est = f"estimate ({reason}): ds-cnn-s measured on {target.name} by bench/engine.py"
    out.update(
        measured=False,
        measurement=None,
        flash_bytes=net.const_bytes + ENGINE_CODE_ESTIMATE_BYTES + fe["flash_bytes"],
        ram_bytes=net.ram_bytes + ENGINE_STACK_ESTIMATE_BYTES + fe["ram_bytes"],
        frontend=fe,
        engine_flash_bytes=net.const_bytes + ENGINE_CODE_ESTIMATE_BYTES,
        engine_code_bytes=ENGINE_CODE_ESTIMATE_BYTES,
        realtime=realtime(
            target,
            frontend,
            device,
            inference,
            target.frontend_instructions_per_hop,
            f"{est}: {target.engine_instructions_per_mac} instructions/MAC, "
            f"{target.frontend_instructions_per_hop:,} per frontend hop; {engine_measure.INSTRUCTIONS_BASIS}",
        ),
        basis=dict(
            flash_bytes=f"{est.split(':')[0]}: the network's constants {net.const_bytes:,} B + "
            f"~{ENGINE_CODE_ESTIMATE_BYTES:,} B engine code + the computed frontend",
            ram_bytes=f"{est.split(':')[0]}: the engine's planned arena + scratch {net.ram_bytes:,} B + "
            f"~{ENGINE_STACK_ESTIMATE_BYTES:,} B stack + the computed frontend buffers",
            latency_ms=f"{est}: {target.engine_instructions_per_mac} instructions/MAC",
        ),
    )
    return out


def tflm_figures(
    model_bytes: int, arena_bytes: int, ops: list[str], fe: dict, target: Target, frontend, device, macs: int
) -> dict:
    """`--engine tflm`: flash = model + TFLM runtime (estimate) + frontend; RAM = measured arena + frontend."""
    runtime = footprint.tflm_runtime_flash_bytes(ops)
    per_hop = target.frontend_instructions_per_hop
    basis = (
        f"estimate: {target.cycles_per_mac} cycles/MAC ({target.cycles_basis}) + {per_hop:,} instructions per "
        "frontend hop (kws.engine measured on this core) at 1 per cycle"
    )
    return dict(
        engine="tflm",
        measured=False,
        flash_bytes=model_bytes + runtime + fe["flash_bytes"],
        ram_bytes=arena_bytes + fe["ram_bytes"],
        frontend=fe,
        tflm_runtime_flash_bytes=runtime,
        realtime=realtime(target, frontend, device, macs * target.cycles_per_mac, per_hop, basis),
        basis=dict(
            flash_bytes=f"estimate: the .tflite + TFLM runtime ({footprint.TFLM_RUNTIME_FLASH_BASIS}) + frontend "
            f"({fe['source']})",
            ram_bytes="measured TFLM arena (TFLite Micro's allocator on the x86-64 host build; Cortex-M ~+1%) + "
            f"frontend ({fe['source']}); stack not included",
            latency_ms=basis,
        ),
    )


def network_budgets(target: Target, frontend: FrontendConfig, engine: str = "kws") -> dict:
    """The RAM and flash a grown network may take on `target`: the board's budget after its application reserve,
    less what the rest of the app needs beside the network (`kws grow --target`; kws export checks the totals).

    engine kws: RAM = arena + scratch of the generated engine, flash = its constants (weights, biases, tables);
    the rest is the app without its network (frontend, audio and feature rings, recognizer: measured on the core
    as the app with a null model, Target.app_*_bytes, or computed from the frontend config where not measured),
    the engine's stack and its code (measured at most 1.7 KB and 11.0 KB, rounded up). engine tflm: RAM = TFLM's
    arena head, less the app; no flash budget (TFLM's runtime size is an estimate, so the export checks it).
    """
    fe = footprint.computed_frontend_footprint(frontend)
    app_ram = target.app_ram_bytes or fe["ram_bytes"]
    app_flash = target.app_flash_bytes or fe["flash_bytes"]
    if engine == "tflm":
        return dict(ram_bytes=target.ram_budget_bytes - app_ram, flash_bytes=None)
    return dict(
        ram_bytes=target.ram_budget_bytes - app_ram - ENGINE_STACK_ESTIMATE_BYTES,
        flash_bytes=target.flash_budget_bytes - app_flash - ENGINE_CODE_ESTIMATE_BYTES,
    )
