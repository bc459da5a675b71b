"""What the generated engine costs on a target, measured: flash and RAM of the linked app, time in QEMU.

flash: the whole application image (frontend + rings + recognizer + app + engine kernels + network constants)
linked with arm-none-eabi-gcc, less an empty program with the same start-up (m4/base_main.c). RAM: its .data +
.bss, less the base's, plus the stack high-water mark that the QEMU image paints and reads back. Engine code: the
kernels' and kws_net.c's sections in the linker map, less the network constants. Time: instructions per inference
(and per inference period: the inference plus that many frontend hops) counted by QEMU -icount shift=0 on the
target's core, divided by its clock. These are INSTRUCTIONS, not cycles: the time assumes one instruction per
cycle, which real Cortex-M cores exceed on loads and taken branches (CPI ~1.1-1.5 on such loops).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from kws.engine.build import FIRMWARE, KERNEL_SOURCES, write_model_settings
from kws.engine.codegen import generate
from kws.engine.qemu import APP_SOURCES, CORES, build_app_image, run_app_image, write_clips
from kws.errors import BudgetExceeded, KwsError

CPI_ASSUMED = 1.0


def _size(elf: Path) -> dict:
    out = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], capture_output=True, text=True, check=True).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return dict(text=text, data=data, bss=bss)


def _map_bytes(map_file: Path, objects: tuple[str, ...]) -> int:
    """Bytes the linker kept from input sections of the named object files (the map's 'section addr size obj')."""
    total = 0
    pattern = re.compile(r"^\s*(\.\S+)?\s+0x[0-9a-f]+\s+(0x[0-9a-f]+)\s+(\S+\.o)\s*$")
    pending = None
    for line in map_file.read_text().splitlines():
        m = pattern.match(line)
        if m is None:
            pending = line.strip() if line.strip().startswith(".") and " " not in line.strip() else None
            continue
        section = m.group(1) or pending
        if section and section.startswith((".text", ".rodata")) and Path(m.group(3)).name in objects:
            total += int(m.group(2), 16)
        pending = None
    return total


def _link_size_images(gen: Path, work: Path, core: str) -> dict:
    c = CORES[core]
    cc = ["arm-none-eabi-gcc", "-std=c99", "-O2", "-mthumb", *c.cflags, "-ffunction-sections", "-fdata-sections"]
    ld = [*cc, "-T", str(FIRMWARE / c.linker_script), "-Wl,--gc-sections", "--specs=nano.specs", "--specs=nosys.specs"]
    ld += ["-Wl,-e,kws_reset_handler"]
    inc = [f"-I{FIRMWARE / d}" for d in ("src", "engine")] + [f"-I{gen}"]
    objs = work / "obj"
    objs.mkdir(exist_ok=True)
    sources = [FIRMWARE / s for s in APP_SOURCES] + list(KERNEL_SOURCES) + [gen / "kws_tables.c", gen / "kws_net.c"]
    sources += [FIRMWARE / "m4" / "startup.c", FIRMWARE / "m4" / "engine_size_main.c"]
    compiled = []
    for src in sources:
        o = objs / (src.stem + ".o")
        run = subprocess.run([*cc, *inc, "-c", str(src), "-o", str(o)], capture_output=True, text=True)
        if run.returncode != 0:
            raise KwsError(f"engine: compiling {src.name} for {core} failed: {run.stderr.strip()[:200]}")
        compiled.append(str(o))
    app, base, map_file = work / "app_size.elf", work / "base.elf", work / "app_size.map"
    for elf, files, extra in (
        (app, compiled, [f"-Wl,-Map={map_file}"]),
        (base, [str(objs / "startup.o"), str(FIRMWARE / "m4" / "base_main.c")], []),
    ):
        run = subprocess.run([*ld, *extra, *files, "-o", str(elf), "-lm"], capture_output=True, text=True)
        if run.returncode != 0:
            raise KwsError(f"engine: linking {elf.name} for {core} failed: {run.stderr.strip()[:200]}")
    a, b = _size(app), _size(base)
    engine_objs = tuple(Path(s).stem + ".o" for s in KERNEL_SOURCES) + ("kws_net.o",)
    return dict(
        flash_bytes=(a["text"] + a["data"]) - (b["text"] + b["data"]),
        static_ram_bytes=(a["data"] + a["bss"]) - (b["data"] + b["bss"]),
        engine_and_network_flash_bytes=_map_bytes(map_file, engine_objs),
    )


def measure_engine(
    flatbuffer: bytes,
    *,
    core: str,
    clock_mhz: float,
    period_hops: int,
    hop_ms: float,
    labels=None,
    work_dir: str | Path | None = None,
) -> dict:
    """Generate the engine for the model, link it into the app for `core`, run it in QEMU; the figures as a dict."""
    if core not in CORES:
        raise KwsError(f"engine: core {core!r} cannot be emulated here; measured cores: {', '.join(CORES)}")
    with tempfile.TemporaryDirectory(prefix="kws_engine_") as tmp:
        work = Path(work_dir or tmp)
        gen = work / "generated"
        net = generate(flatbuffer, gen)
        write_model_settings(flatbuffer, gen, labels)
        rng = np.random.default_rng(0)
        write_clips(gen, np.stack([np.zeros(16000), rng.normal(0, 3000, 16000)]).astype(np.int16))
        sizes = _link_size_images(gen, work, core)
        run = run_app_image(build_app_image(gen, work / "app.elf", core), core)
    inference = int(np.max(run.inference_instructions))
    frame = (int(np.max(run.loop_instructions)) - inference) / 49  # 49 frontend frames + ring + recognizer
    per_period = inference + period_hops * frame
    period_ms = period_hops * hop_ms
    return dict(
        core=core,
        machine=CORES[core].machine,
        macs=net.macs,
        flash_bytes=sizes["flash_bytes"],
        ram_bytes=sizes["static_ram_bytes"] + run.stack_bytes,
        static_ram_bytes=sizes["static_ram_bytes"],
        stack_bytes=run.stack_bytes,
        arena_bytes=net.plan.arena_bytes,
        scratch_bytes=net.plan.scratch_bytes,
        const_bytes=net.const_bytes,
        engine_code_flash_bytes=sizes["engine_and_network_flash_bytes"] - net.const_bytes,
        instructions_per_inference=inference,
        instructions_per_mac=inference / net.macs,
        instructions_per_frame=round(frame),
        instructions_per_period=round(per_period),
        layer_instructions=[
            dict(name=x.name, op=x.op, macs=x.macs, instructions=int(v))
            for x, v in zip(net.layers, run.layer_instructions.max(axis=0), strict=True)
        ],
        clock_mhz=clock_mhz,
        cpi_assumed=CPI_ASSUMED,
        inference_ms=inference * CPI_ASSUMED / (clock_mhz * 1e3),
        period_busy_ms=per_period * CPI_ASSUMED / (clock_mhz * 1e3),
        period_ms=period_ms,
        real_time=per_period * CPI_ASSUMED / (clock_mhz * 1e3) <= period_ms,
        time_basis=f"QEMU {CORES[core].machine} -icount shift=0 instruction counts / clock, assuming "
        f"{CPI_ASSUMED:g} cycle per instruction (instructions, not cycles)",
    )


def check_real_time(engine: dict, target_name: str) -> None:
    """BudgetExceeded, one line, when an inference period's work takes longer than the period."""
    if engine["real_time"]:
        return
    raise BudgetExceeded(
        f"real time: {target_name} needs {engine['period_busy_ms']:.1f} ms per {engine['period_ms']:.0f} ms "
        f"inference period ({engine['instructions_per_period']:,} instructions at {engine['clock_mhz']:g} MHz, "
        f"{engine['cpi_assumed']:g} cycle each); raise --clock-mhz, choose a smaller model (kws grow "
        "--budget-kparams) or a longer inference period (DeviceConfig.inference_period_hops)"
    )


def engine_rows(report: dict) -> list[tuple[str, str]]:
    """Summary-table rows for a report whose engine was measured (none otherwise)."""
    e = report.get("kws_engine") or {}
    if not e.get("measured"):
        return [("kws engine", e["reason"])] if e.get("reason") else []
    verdict = "keeps up" if e["real_time"] else "CANNOT KEEP UP"
    return [
        (
            "kws engine (measured)",
            f"arena {e['arena_bytes']:,} B + scratch {e['scratch_bytes']:,} B, code {e['engine_code_flash_bytes']:,} B "
            f"beyond {e['const_bytes']:,} B of constants",
        ),
        (
            "instructions (QEMU)",
            f"{e['instructions_per_inference']:,} per inference ({e['instructions_per_mac']:.2f} per MAC) on "
            f"{e['machine']}",
        ),
        (
            "time (1 cycle/instr.)",
            f"{e['inference_ms']:.1f} ms per inference; {e['period_busy_ms']:.1f} ms busy per {e['period_ms']:.0f} ms "
            f"period at {e['clock_mhz']:g} MHz: {verdict}",
        ),
    ]
