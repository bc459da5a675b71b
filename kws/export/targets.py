"""Deployment targets: a Cortex-M core, its default board, the budget an application leaves a model, a speed.

Latency is estimated as MACs x cycles-per-MAC / clock. The cycles-per-MAC figures are for TFLite Micro with
CMSIS-NN kernels and are STATED ESTIMATES, each with its basis below; they include interpreter overhead as the
MLPerf Tiny measurement does, and exclude the MFCC frontend:
- cortex-m4: MLPerf Tiny v1.0 KWS (ds-cnn-s, 2.66 M MACs) on STM32L4R5 at 120 MHz, TFLM + CMSIS-NN: 181.9 ms
  -> 181.9e-3 * 120e6 / 2.66e6 = 8.2 cycles/MAC. The M4's dual 16-bit SMLAD bounds it at 0.5.
- cortex-m33: the same DSP extension (SMLAD) and a similar 3-stage pipeline as the M4 -> the M4 figure.
- cortex-m7: 6-stage dual-issue pipeline running the same CMSIS-NN DSP kernels; assumed 0.6 x the M4 figure
  (4.9), in line with the ~1.6-2x per-clock CoreMark and CMSIS-NN gains Arm reports for M7 over M4.
- cortex-m55: Helium (MVE) CMSIS-NN kernels do 8 int8 MACs per beat-pair; assumed 4x fewer cycles than the M4
  (2.0), the conservative end of Arm's published Helium uplift for int8 convolutions.
- cortex-m0plus: ARMv6-M, no DSP/SIMD, 1-cycle 32x32 multiplier on most parts; CMSIS-NN falls back to plain C
  loads + MUL + ADD per MAC; assumed 3x the M4 figure (25).
These TFLM constants are used only for `kws export --engine tflm`. The default engine (kws.engine) is measured in
QEMU on each target's own core (kws.engine.measure); engine_instructions_per_mac and
frontend_instructions_per_hop below are those measurements on ds-cnn-s (bench/engine.py), used as labelled
estimates only where the cross compiler or QEMU is missing, and by the TFLM path for the frontend's share.
Reserves: flash and RAM kept for the application (Arduino core or Mbed OS, audio driver, stack, heap), stated
per board: the model must fit what remains.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from kws.errors import KwsError


@dataclass(frozen=True, kw_only=True)
class Target:
    """A core with its default board. Sizes in KiB (1024 B), clock in MHz."""

    name: str
    core: str
    board: str
    flash_kb: int
    ram_kb: int
    clock_mhz: float
    platform: str
    cycles_per_mac: float
    cycles_basis: str
    reserve_flash_kb: int  # kept for the application and OS, never given to the model
    reserve_ram_kb: int
    qemu_machine: str | None = None
    engine_instructions_per_mac: float = 0.0  # kws.engine on ds-cnn-s, measured in QEMU (bench/engine.py)
    frontend_instructions_per_hop: int = 0  # the C frontend + rings per 20 ms hop, the same measurement
    # the app with a null model less the platform base (frontend, audio and feature rings, recognizer), linked for
    # the core (kws.engine.measure, -O2); 0: not measured (kws.export.device.network_budgets then computes it)
    app_flash_bytes: int = 0
    app_ram_bytes: int = 0

    @property
    def flash_bytes(self) -> int:
        return self.flash_kb * 1024

    @property
    def ram_bytes(self) -> int:
        return self.ram_kb * 1024

    @property
    def flash_budget_bytes(self) -> int:
        """Flash left for model + TFLM + frontend after the application reserve."""
        return (self.flash_kb - self.reserve_flash_kb) * 1024

    @property
    def ram_budget_bytes(self) -> int:
        return (self.ram_kb - self.reserve_ram_kb) * 1024

    def latency_ms(self, macs: int) -> float:
        """Estimated TFLM inference time: macs * cycles_per_mac / clock."""
        return macs * self.cycles_per_mac / (self.clock_mhz * 1e3)

    def ms(self, instructions: float) -> float:
        """Time of `instructions` at the clock, at 1 instruction per cycle (kws.engine.measure.INSTRUCTIONS_BASIS)."""
        return instructions / (self.clock_mhz * 1e3)

    def inference_budget_ms(self, period_hops: int = 10, hop_ms: float = 20.0, clock_mhz: float | None = None) -> float:
        """The time one inference may take to keep the app's period (period_hops hops of hop_ms): the period less
        the frontend's instructions for those hops, at clock_mhz (default the board's) and 1 instruction/cycle."""
        clock = clock_mhz or self.clock_mhz
        return period_hops * hop_ms - period_hops * self.frontend_instructions_per_hop / (clock * 1e3)

    def to_dict(self) -> dict:
        return asdict(self)


_M4_CPM = 8.2
TARGETS: dict[str, Target] = {
    "cortex-m0plus": Target(
        name="cortex-m0plus",
        core="Cortex-M0+",
        board="Arduino Zero (Microchip SAMD21G18A)",
        flash_kb=256,
        ram_kb=32,
        clock_mhz=48.0,
        platform="arduino",
        cycles_per_mac=25.0,
        cycles_basis="estimate: no DSP/SIMD, plain-C CMSIS-NN, ~3x the M4's measured 8.2",
        reserve_flash_kb=24,
        reserve_ram_kb=6,
        qemu_machine="mps2-an385",  # the ARMv6-M build on a Cortex-M3 machine (microbit has 16 KB RAM)
        engine_instructions_per_mac=12.11,
        frontend_instructions_per_hop=3_566_657,
        app_flash_bytes=19_256,
        app_ram_bytes=43_412,
    ),
    "cortex-m4": Target(
        name="cortex-m4",
        core="Cortex-M4F",
        board="Arduino Nano 33 BLE Sense (nRF52840)",
        flash_kb=1024,
        ram_kb=256,
        clock_mhz=64.0,
        platform="arduino",  # the board runs Arduino's Mbed-OS core: the sketch in deploy/arduino targets it
        cycles_per_mac=_M4_CPM,
        cycles_basis="MLPerf Tiny v1.0 KWS: 181.9 ms x 120 MHz / 2.66 M MACs (STM32L4R5, TFLM + CMSIS-NN)",
        reserve_flash_kb=128,
        reserve_ram_kb=48,
        qemu_machine="mps2-an386",
        engine_instructions_per_mac=1.93,
        frontend_instructions_per_hop=121_181,
        app_flash_bytes=14_400,
        app_ram_bytes=43_412,
    ),
    "cortex-m7": Target(
        name="cortex-m7",
        core="Cortex-M7",
        board="ST DISCO_F746NG (STM32F746NG)",
        flash_kb=1024,
        ram_kb=320,
        clock_mhz=216.0,
        platform="mbed",
        cycles_per_mac=round(0.6 * _M4_CPM, 2),
        cycles_basis="estimate: 0.6 x the M4 figure for dual issue on the same CMSIS-NN DSP kernels",
        reserve_flash_kb=128,
        reserve_ram_kb=48,
        qemu_machine="mps2-an500",
        engine_instructions_per_mac=1.93,
        frontend_instructions_per_hop=120_996,
        app_flash_bytes=14_284,
        app_ram_bytes=43_412,
    ),
    "cortex-m33": Target(
        name="cortex-m33",
        core="Cortex-M33 (DSP)",
        board="ST NUCLEO-L552ZE-Q (STM32L552ZE)",
        flash_kb=512,
        ram_kb=256,
        clock_mhz=110.0,
        platform="mbed",
        cycles_per_mac=_M4_CPM,
        cycles_basis="estimate: same SMLAD DSP extension and pipeline depth as the M4 -> its 8.2",
        reserve_flash_kb=96,
        reserve_ram_kb=40,
        qemu_machine="mps2-an505",
        engine_instructions_per_mac=1.92,
        frontend_instructions_per_hop=121_139,
        app_flash_bytes=14_348,
        app_ram_bytes=43_412,
    ),
    "cortex-m55": Target(
        name="cortex-m55",
        core="Cortex-M55 (Helium)",
        board="Alif Ensemble E7 AppKit (high-efficiency M55 core)",
        flash_kb=2048,
        ram_kb=256,
        clock_mhz=160.0,
        platform="mbed",
        cycles_per_mac=round(_M4_CPM / 4, 2),
        cycles_basis="estimate: Helium MVE CMSIS-NN kernels, 4x fewer cycles than the M4's 8.2",
        reserve_flash_kb=128,
        reserve_ram_kb=48,
        qemu_machine="mps3-an547",
        engine_instructions_per_mac=1.93,
        frontend_instructions_per_hop=116_328,
        app_flash_bytes=14_476,
        app_ram_bytes=43_424,
    ),
}


def resolve_target(
    name: str, *, flash_kb: int | None = None, ram_kb: int | None = None, clock_mhz: float | None = None
) -> Target:
    """The named target with optional overrides of its board's flash, RAM and clock (--flash-kb, ...)."""
    if name not in TARGETS:
        raise KwsError(f"--target: unknown target {name!r}; choose one of {', '.join(TARGETS)} (see `kws targets`)")
    target = TARGETS[name]
    overrides = {k: v for k, v in dict(flash_kb=flash_kb, ram_kb=ram_kb, clock_mhz=clock_mhz).items() if v is not None}
    for flag, value in overrides.items():
        if value <= 0:
            raise KwsError(f"--{flag.replace('_', '-')}: must be > 0, got {value}")
    if overrides:
        target = replace(target, board=f"{target.board} (overridden: {', '.join(overrides)})", **overrides)
    if target.reserve_flash_kb >= target.flash_kb or target.reserve_ram_kb >= target.ram_kb:
        raise KwsError(
            f"--flash-kb/--ram-kb: {target.flash_kb} KB flash / {target.ram_kb} KB RAM leave nothing after "
            f"the application reserve ({target.reserve_flash_kb} KB / {target.reserve_ram_kb} KB)"
        )
    return target


def realtime_width(target: Target, period_hops: int = 10, hop_ms: float = 20.0) -> tuple[int, float] | None:
    """The largest uniform width of the ds-cnn-s geometry whose inference fits Target.inference_budget_ms, and its
    predicted ms per inference (kws.engine.costmodel, fitted in QEMU; 1 instruction per cycle); None when the core
    has no fit or not even width 1 keeps up. Charged as growth charges a time budget: the prediction times
    (1 + the model's stated error on the core)."""
    from kws.engine import costmodel
    from kws.errors import KwsError
    from kws.models import PRESETS

    budget = target.inference_budget_ms(period_hops, hop_ms) * target.clock_mhz * 1e3
    base = PRESETS["ds-cnn-s"]

    def instr(w: int) -> float:
        return costmodel.instructions(base.uniform(w), target.name)

    try:
        margin = costmodel.margin(target.name)
        if instr(1) * (1 + margin) > budget:
            return None
    except KwsError:
        return None
    lo, hi = 1, 1024
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if instr(mid) * (1 + margin) <= budget else (lo, mid - 1)
    return lo, instr(lo) / (target.clock_mhz * 1e3)


REALTIME_MEASURED = Path(__file__).resolve().parents[1] / "engine" / "realtime_widths.json"


def measured_realtime() -> dict:
    """{target: {width, measured_ms, ...}} from bench/realtime_widths.py, for the current engine only ({} if the
    file is missing or was measured on another engine version: `kws targets` then shows no measured column)."""
    import json

    from kws.engine.costmodel import engine_version

    if not REALTIME_MEASURED.is_file():
        return {}
    data = json.loads(REALTIME_MEASURED.read_text())
    return data["targets"] if data.get("engine_version") == engine_version() else {}


def targets_table() -> str:
    """The target list as a fixed-width table (what `kws targets` prints): instr/MAC is the kws engine on ds-cnn-s,
    measured in QEMU on the core (bench/engine.py); TFLM cyc/MAC the stated estimate `--engine tflm` uses."""
    head = (
        f"{'target':<14} {'board':<52} {'flash KB':>8} {'RAM KB':>7} {'MHz':>5} {'instr/MAC':>9} {'TFLM cyc/MAC':>12}"
    )
    head += f"  {'platform':<8} {'real-time width':>15} {'ms':>6} {'measured':>8}"
    rows = [head, "-" * len(head)]
    measured = measured_realtime()
    for t in TARGETS.values():
        rt = realtime_width(t)
        width, ms = (f"{rt[0]}", f"{rt[1]:.0f}") if rt else ("none", "-")
        m = measured.get(t.name)
        meas = f"{m['measured_ms']:.0f}" if rt and m and m["width"] == rt[0] else "-"
        rows.append(
            f"{t.name:<14} {t.board:<52} {t.flash_kb:>8} {t.ram_kb:>7} {t.clock_mhz:>5.0f} "
            f"{t.engine_instructions_per_mac:>9.2f} {t.cycles_per_mac:>12.2f}  {t.platform:<8} {width:>15} {ms:>6} "
            f"{meas:>8}"
        )
    rows.append(
        "real-time width: the widest uniform ds-cnn-s-geometry network whose inference + 10 frontend hops fits the "
        "200 ms period at the board's clock; ms: its inference, predicted by the engine's cost model (fitted in "
        "QEMU, within 1.4% on held-out specs, charged +2.9%; 1 instruction per cycle); measured: that network run in "
        "QEMU on the core (bench/realtime_widths.py)"
    )
    return "\n".join(rows)
