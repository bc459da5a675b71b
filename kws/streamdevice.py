"""The C firmware app over a long recording on the host: the check that kws.stream's pipeline is the device's.

build_stream_app() links firmware_stub/src (frontend, rings, recognizer, app), the host platform and wav reader,
firmware_stub/host/kws_stream_main.c and a model backend: the generated engine (kws.engine: kws_net.c over
firmware_stub/engine kernels, bit-exact with LiteRT for the same int8 input) or the host stub (fixed scores, no
network). run_stream_app() feeds it a recording and parses every inference's response.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from kws.device import DeviceConfig
from kws.errors import KwsError
from kws.firmware import FIRMWARE_DIR

APP_SOURCES = ("src/kws_fft.c", "src/kws_frontend.c", "src/kws_ring.c", "src/kws_recognizer.c", "src/kws_app.c")
HOST_SOURCES = ("host/kws_platform_host.c", "host/kws_wav.c", "host/kws_stream_main.c")


@dataclass(frozen=True)
class Response:
    time_ms: int
    label: int
    score_q: int
    is_new: bool


def write_generated(flatbuffer: bytes, labels, device: DeviceConfig, gen_dir: str | os.PathLike) -> Path:
    """kws_net.c/.h for the model plus kws_settings.h / tables with its quantization and this device config."""
    from kws import firmware
    from kws.engine import generate
    from kws.engine.graph import read_tflite
    from kws.frontend import FrontendConfig

    generate(flatbuffer, gen_dir)
    g = read_tflite(flatbuffer)
    x, y = g.tensors[g.input], g.tensors[g.output]
    firmware.write_settings(
        gen_dir, FrontendConfig(), list(labels), float(x.scale), x.zero_point, float(y.scale), y.zero_point,
        "stream-check", {}, device=device,
    )  # fmt: skip
    return Path(gen_dir)


def build_stream_app(gen_dir: str | os.PathLike, exe: str | os.PathLike, backend: str = "engine") -> Path:
    """Compile the app with gen_dir's settings; backend "engine" (gen_dir/kws_net.c) or "stub"."""
    if shutil.which("gcc") is None:
        raise KwsError("stream check: gcc not found; run `make install` (Debian)")
    fw, gen = FIRMWARE_DIR, Path(gen_dir)
    cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function"]
    cmd += [f"-I{fw / d}" for d in ("src", "host", "engine")] + [f"-I{gen}", "-o", str(exe)]
    cmd += [str(fw / s) for s in (*APP_SOURCES, *HOST_SOURCES)] + [str(gen / "kws_tables.c")]
    if backend == "engine":
        cmd += [str(gen / "kws_net.c"), *map(str, sorted((fw / "engine").glob("kws_nn_*.c")))]
    elif backend == "stub":
        cmd += [str(fw / "host" / "kws_model_host_stub.c")]
    else:
        raise KwsError(f"stream check: backend {backend!r} is not engine or stub")
    proc = subprocess.run([*cmd, "-lm"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise KwsError(f"stream check: build failed: {(proc.stderr.strip().splitlines() or ['?'])[0]}")
    return Path(exe)


QEMU_MAX_SECONDS = 120  # 3.8 MB of PCM: what fits in the mps2-an386 image's 4 MB of RAM beside the app


def build_stream_image(gen_dir: str | os.PathLike, elf: str | os.PathLike) -> Path:
    """The same app (generated engine) as a Cortex-M4 semihosting image for QEMU mps2-an386."""
    from kws.engine.build import KERNEL_SOURCES
    from kws.engine.qemu import compile_command

    fw, gen = FIRMWARE_DIR, Path(gen_dir)
    cmd = compile_command("cortex-m4", gen)  # the core's flags, include paths and linker script (kws.engine.qemu)
    cmd += [f"-I{fw / 'host'}", f"-DKWS_STREAM_MAX_SECONDS={QEMU_MAX_SECONDS}L"]
    cmd += [str(fw / s) for s in (*APP_SOURCES, *HOST_SOURCES, "m4/startup.c")]
    cmd += [str(gen / "kws_tables.c"), str(gen / "kws_net.c"), *map(str, KERNEL_SOURCES)]
    cmd += ["--specs=rdimon.specs", "-o", str(elf), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KwsError(f"stream check: Cortex-M4 build failed: {(proc.stderr.strip().splitlines() or ['?'])[0]}")
    return Path(elf)


def run_stream_app(
    exe: str | os.PathLike, samples: np.ndarray, wav: str | os.PathLike, sample_rate_hz: int = 16000, qemu=False
):
    """Write samples (float in [-1, 1]) as 16-bit PCM to wav, run the app on it (the host executable, or with
    qemu the image of build_stream_image): (responses, dropped samples)."""
    pcm = np.clip(np.round(np.asarray(samples, np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    sf.write(wav, pcm, sample_rate_hz, subtype="PCM_16")
    cmd = [str(exe), str(wav)]
    if qemu:
        if len(pcm) > QEMU_MAX_SECONDS * sample_rate_hz:
            raise KwsError(f"stream check: QEMU runs at most {QEMU_MAX_SECONDS} s of audio")
        semi = f"enable=on,target=native,arg=kws_stream,arg={Path(wav).resolve()}"
        cmd = ["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial", "none"]
        cmd += ["-semihosting-config", semi, "-kernel", str(exe)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise KwsError(f"stream check: {exe} exited {proc.returncode}: {proc.stderr.strip()[-200:]}")
    lines = proc.stdout.splitlines()
    dropped = int(lines[-1].split()[1])
    out = [Response(int(t), int(lab), int(q), n == "1") for t, lab, q, n in (ln.split() for ln in lines[:-1])]
    return out, dropped


def pcm_roundtrip(samples: np.ndarray) -> np.ndarray:
    """The float samples the C app sees after 16-bit quantization (what kws.stream should be given to compare)."""
    pcm = np.clip(np.round(np.asarray(samples, np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    return pcm.astype(np.float32) / 32768.0
