"""What the app with a generated network costs on one Cortex-M core, measured: flash and RAM from linked images,
time in QEMU.

measure(gen_dir, core, pcm) works on a folder holding the export's settings (kws_settings.h, kws_tables.h/.c) and
the generated kws_net.c/.h, for a core of kws.engine.qemu.CORES, at the QEMU image's optimisation (-O2):
- Three size probes linked as a board links them (newlib-nano, no semihosting, m4/app_size_main.c): the app
  (kws_setup / kws_loop: frontend, rings, recognizer, the network and its kernels), the same app with a null
  model (m4/null_model.c) and the platform base (the same start-up with an empty main, m4/base_main.c).
  arm-none-eabi-size gives
      flash          = text + data of app - base       frontend + engine + weights + app
      static RAM     = data + bss of app - base        arena, scratch, audio and feature rings, frontend, recognizer
      engine flash   = app - null-model app            kernels + kws_net.c's code and constants
- The QEMU app image (kws.engine.qemu) on the clips' PCM: instructions per inference, per layer and per clip's
  whole loop (49 frontend frames + 1 inference + recognizer), and the stack high-water mark of kws_setup +
  kws_loop, painted and read back. RAM = static RAM + stack. A frontend hop's instructions are (loop - inference)
  / frames, which also counts kws_setup and copying the clip into the ring once: a slight over-estimate.
Time is counted in instructions (QEMU -icount shift=0), never cycles; INSTRUCTIONS_BASIS states how they are turned
into milliseconds, and why that is an approximation.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from kws.engine.build import FIRMWARE, KERNEL_SOURCES
from kws.engine.qemu import APP_SOURCES, CORES, build_app_image, compile_command, link, run_app_image, write_clips
from kws.errors import KwsError

OPT = "-O2"
INSTRUCTIONS_BASIS = (
    "instructions counted in QEMU (-icount shift=0) for the core's own build, turned into time at 1 instruction per "
    "cycle. That is not exact: on a real M0+/M3/M4/M33 loads, multiplies, taken branches and flash wait states "
    "cost extra cycles (slower than stated), an M7 can issue two instructions per cycle (faster)"
)


@dataclass(frozen=True)
class Measurement:
    """One core's figures for the app with the network (bytes, instructions)."""

    core: str
    machine: str
    opt: str
    flash_bytes: int  # the app image less the platform base: frontend + engine + weights + app
    static_ram_bytes: int  # .data + .bss of the app less the base
    stack_bytes: int  # high-water mark of kws_setup + kws_loop (QEMU, painted)
    engine_flash_bytes: int  # the app less the app with a null model: kernels + kws_net.c
    engine_static_ram_bytes: int
    frontend_flash_bytes: int  # the app with a null model less the base: frontend, rings, recognizer, app
    frontend_ram_bytes: int
    inference_instructions: int  # per inference (the largest over the clips)
    layer_instructions: tuple[int, ...]  # per layer, on the clip of the largest inference
    frontend_instructions_per_hop: float  # (loop - inference) / frames: one hop through the frontend + rings
    frames_per_clip: int
    scores: np.ndarray  # (clips, labels) int8, as the device computed them
    features: np.ndarray  # (clips, elements) int8: the network input the device built

    @property
    def ram_bytes(self) -> int:
        return self.static_ram_bytes + self.stack_bytes

    def period_instructions(self, period_hops: int) -> float:
        """One inference period of the app: one inference + period_hops hops through the frontend."""
        return self.inference_instructions + period_hops * self.frontend_instructions_per_hop

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(
            ram_bytes=self.ram_bytes, layer_instructions=list(self.layer_instructions), scores=self.scores.tolist()
        )
        d.pop("features")
        return d


def available() -> str:
    """'' when the cross compiler and QEMU are installed, else the reason the figures must be estimated."""
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm") if shutil.which(t) is None]
    return f"{' and '.join(missing)} not installed (make install)" if missing else ""


def _size(elf: Path) -> dict[str, int]:
    proc = subprocess.run(["arm-none-eabi-size", "-B", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise KwsError(f"engine: arm-none-eabi-size {elf.name} failed: {proc.stderr.strip()[:200]}")
    text, data, bss = (int(v) for v in proc.stdout.splitlines()[1].split()[:3])
    return dict(text=text, data=data, bss=bss)


def size_probes(gen_dir: str | os.PathLike, core: str, work: Path, opt: str = OPT) -> dict[str, dict[str, int]]:
    """arm-none-eabi-size of the app, the app with a null model and the base, linked for `core`."""
    gen, m4 = Path(gen_dir), FIRMWARE / "m4"
    common = compile_command(core, gen, opt)
    tail = ["--specs=nano.specs", "--specs=nosys.specs", "-Wl,-e,kws_reset_handler", "-lm"]
    app = [str(FIRMWARE / s) for s in APP_SOURCES] + [str(gen / "kws_tables.c"), str(m4 / "app_size_main.c")]
    probes = dict(
        app=app + [str(gen / "kws_net.c"), *map(str, KERNEL_SOURCES)],
        null_model=app + [str(m4 / "null_model.c")],
        base=[str(m4 / "base_main.c")],
    )
    sizes = {}
    for name, sources in probes.items():
        elf = work / f"size_{name}.elf"
        link([*common, *sources, str(m4 / "startup.c"), *tail, "-o", str(elf)], f"{core} {name} size probe")
        sizes[name] = _size(elf)
    return sizes


def measure(gen_dir: str | os.PathLike, core: str, pcm: np.ndarray, timeout_s: float = 300.0) -> Measurement:
    """Size probes and the QEMU run for `core` (see the module docstring); pcm: (clips, clip samples) int16."""
    if core not in CORES:
        raise KwsError(f"--core: {core!r} is not one of {', '.join(CORES)}")
    with tempfile.TemporaryDirectory(prefix="kws_measure_") as tmp:
        work = Path(tmp)
        for f in Path(gen_dir).glob("*.[ch]"):
            if f.name != "kws_clips.c" and f.name != "kws_clips.h":
                shutil.copy2(f, work / f.name)
        write_clips(work, pcm)
        sizes = size_probes(work, core, work)
        run = run_app_image(build_app_image(work, work / "kws_app.elf", core), core, timeout_s=timeout_s)
    app, null, base = sizes["app"], sizes["null_model"], sizes["base"]

    def flash(a, b):
        return (a["text"] + a["data"]) - (b["text"] + b["data"])

    def ram(a, b):
        return (a["data"] + a["bss"]) - (b["data"] + b["bss"])

    worst = int(np.argmax(run.inference_instructions))
    frames = int(len(run.features[0]) // max(1, _coefficients(gen_dir)))
    per_hop = float(np.max(run.loop_instructions - run.inference_instructions)) / frames
    if per_hop <= 0:  # the whole loop's ticks wrapped SysTick's 24 bits (> ~500 M instructions)
        raise KwsError(f"engine: the {core} loop over one clip is too long to time with SysTick; use fewer MACs")
    return Measurement(
        core=core,
        machine=CORES[core].machine,
        opt=OPT,
        flash_bytes=flash(app, base),
        static_ram_bytes=ram(app, base),
        stack_bytes=run.stack_bytes,
        engine_flash_bytes=flash(app, null),
        engine_static_ram_bytes=ram(app, null),
        frontend_flash_bytes=flash(null, base),
        frontend_ram_bytes=ram(null, base),
        inference_instructions=int(run.inference_instructions[worst]),
        layer_instructions=tuple(int(v) for v in run.layer_instructions[worst]),
        frontend_instructions_per_hop=per_hop,
        frames_per_clip=frames,
        scores=run.scores,
        features=run.features,
    )


def _coefficients(gen_dir: str | os.PathLike) -> int:
    for line in (Path(gen_dir) / "kws_settings.h").read_text().splitlines():
        if line.startswith("#define KWS_NUM_COEFFICIENTS "):
            return int(line.split()[2])
    raise KwsError(f"engine: {gen_dir}/kws_settings.h has no KWS_NUM_COEFFICIENTS")


def speed_clip(sample_rate_hz: int = 16000, samples: int = 16000, seed: int = 0) -> np.ndarray:
    """A deterministic 1-s clip for speed figures (a 1 kHz tone under noise), (1, samples) int16: the network's
    and the frontend's instruction counts hardly depend on the audio."""
    t = np.arange(samples) / sample_rate_hz
    noise = np.random.default_rng(seed).normal(scale=1500.0, size=samples)
    return np.clip(6000 * np.sin(2 * np.pi * 1000 * t) + noise, -32768, 32767).astype(np.int16)[None]
