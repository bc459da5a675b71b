"""Build and run a generated network: with the host gcc (tests, any input), and as a Cortex-M image in QEMU.

build_host() compiles kws_net.c + firmware_stub/engine/*.c + a stdin/stdout runner; run_host() feeds it int8
inputs. The Cortex-M side (qemu_app, in kws.engine.qemu) links the whole firmware app into an mps2 image.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from kws.engine.graph import read_tflite
from kws.errors import KwsError

REPO = Path(__file__).resolve().parents[2]
FIRMWARE = REPO / "firmware_stub"
ENGINE_C = FIRMWARE / "engine"
KERNEL_SOURCES = tuple(sorted(ENGINE_C.glob("kws_nn_*.c")))
DEFAULT_LABELS = ("_silence_", "_unknown_", "yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def write_model_settings(flatbuffer: bytes, out_dir: str | os.PathLike, labels=None) -> list[Path]:
    """kws_settings.h / kws_tables.h/.c (kws.firmware) for this model's input/output quantization."""
    from kws import firmware
    from kws.frontend import FrontendConfig

    graph = read_tflite(flatbuffer)
    x, y = graph.tensors[graph.input], graph.tensors[graph.output]
    labels = list(labels or (DEFAULT_LABELS if y.size == 12 else [f"class{i}" for i in range(y.size)]))
    return firmware.write_settings(
        out_dir, FrontendConfig(), labels, float(x.scale), x.zero_point, float(y.scale), y.zero_point, "engine", {}
    )


def build_host(gen_dir: str | os.PathLike, exe: str | os.PathLike, defines: tuple[str, ...] = ()) -> Path:
    """Compile the generated network in gen_dir (kws_net.c + settings) with the engine kernels into exe."""
    if shutil.which("gcc") is None:
        raise KwsError("engine: gcc not found; run `make install` (Debian)")
    gen = Path(gen_dir)
    cmd = ["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-Wno-unused-function"]
    cmd += [f"-D{d}" for d in defines]
    cmd += [f"-I{ENGINE_C}", f"-I{FIRMWARE / 'src'}", f"-I{gen}", "-o", str(exe)]
    cmd += [str(gen / "kws_net.c"), *map(str, KERNEL_SOURCES), str(ENGINE_C / "host" / "kws_net_main.c"), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise KwsError(f"engine: host build failed: {(proc.stderr.strip().splitlines() or ['?'])[0]}")
    return Path(exe)


def run_host(
    exe: str | os.PathLike, inputs: np.ndarray, output_elements: int, layer_sizes: tuple[int, ...] = ()
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Run int8 inputs (N, elements) through the host runner: (outputs (N, output_elements), per-layer outputs).

    layer_sizes: each layer's output size, when exe was built with KWS_NET_DUMP (then the per-layer list holds
    one (N, size) array per layer); empty otherwise.
    """
    x = np.ascontiguousarray(np.asarray(inputs, np.int8).reshape(len(inputs), -1))
    proc = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, timeout=600)
    if proc.returncode != 0:
        raise KwsError(f"engine: {exe} exited {proc.returncode}")
    per = sum(layer_sizes) + output_elements
    raw = np.frombuffer(proc.stdout, np.int8).reshape(len(x), per)
    bounds = np.cumsum((0, *layer_sizes))
    layers = [raw[:, bounds[i] : bounds[i + 1]] for i in range(len(layer_sizes))]
    return raw[:, per - output_elements :], layers
