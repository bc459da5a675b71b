"""Shared by tests/test_engine*.py: cached int8 models, real-speech features, the LiteRT reference, engine runs.

The reference is LiteRT's interpreter with its reference kernels (OpResolverType.BUILTIN_REF), never the engine.
Models are untrained DS-CNNs with realistic BatchNorm statistics, calibrated on real training clips of the mini
set, so that every activation range is that of real speech. Conversions are cached per session (module state).
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import bn_model

from kws import frontend as fe
from kws.engine import generate
from kws.engine.build import build_host, run_host, write_model_settings
from kws.models import ArchSpec

# Widths not a multiple of 4 (17, 23), depthwise strides (2, 1) and (1, 2), a (2, 1) first conv.
NONUNIFORM = ArchSpec(
    conv1_width=24, widths=(40, 17, 23, 56), strides=((2, 1), (1, 1), (1, 2), (1, 1)), conv1_stride=(2, 1)
)


def read_clips(files: list[Path]) -> np.ndarray:
    """int16 PCM (N, clip_samples), zero-padded / cropped at the end as the device buffers them."""
    pcm = np.zeros((len(files), fe.FrontendConfig().clip_samples), np.int16)
    for i, f in enumerate(files):
        x, _ = sf.read(f, dtype="int16")
        pcm[i, : min(len(x), pcm.shape[1])] = x[: pcm.shape[1]]
    return pcm


def split_files(root: Path) -> list[Path]:
    return [root / f for f in (root / "testing_list.txt").read_text().split()]


@cache
def split_features(root: Path) -> np.ndarray:
    """Float MFCCs (558, 49, 10) of every clip of the mini set's test split."""
    return fe.compute_mfcc(read_clips(split_files(root)) / 32768.0)


@cache
def calibration(root: Path) -> np.ndarray:
    held_out = set((root / "testing_list.txt").read_text().split()) | set(
        (root / "validation_list.txt").read_text().split()
    )
    train = sorted(p for p in root.glob("[a-z]*/*.wav") if f"{p.parent.name}/{p.name}" not in held_out)
    return fe.compute_mfcc(read_clips(train[::40][:64]) / 32768.0)


@cache
def tflite(root: Path, arch, activation: str) -> bytes:
    from kws.export import convert

    return convert.to_tflite_int8(bn_model(arch, activation), calibration(root))


def quantized(flatbuffer: bytes, features: np.ndarray) -> np.ndarray:
    """Features quantized with the model's input scale / zero point, (N, 490) int8."""
    i = interpreter(flatbuffer).get_input_details()[0]
    scale, zp = i["quantization"]
    return fe.quantize_features(features, float(scale), int(zp)).reshape(len(features), -1).astype(np.int8)


def random_inputs(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(n, 490), dtype=np.int8)


def interpreter(flatbuffer: bytes, all_tensors: bool = False):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = Interpreter(
            model_content=flatbuffer,
            experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
            experimental_preserve_all_tensors=all_tensors,
        )
    it.allocate_tensors()
    return it


def reference(flatbuffer: bytes, inputs: np.ndarray, tensors: tuple[int, ...] = ()) -> tuple[np.ndarray, list]:
    """LiteRT BUILTIN_REF: (outputs (N, out), [per tensor (N, size)]) for int8 inputs (N, 490)."""
    it = interpreter(flatbuffer, all_tensors=bool(tensors))
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    outs, per = [], [[] for _ in tensors]
    for x in inputs:
        it.set_tensor(i["index"], x.reshape(i["shape"]))
        it.invoke()
        outs.append(it.get_tensor(o["index"]).reshape(-1).copy())
        for k, t in enumerate(tensors):
            per[k].append(it.get_tensor(t).reshape(-1).copy())
    return np.array(outs), [np.array(p) for p in per]


def engine(flatbuffer: bytes, out: Path, inputs: np.ndarray, *, defines=(), tabulate=True, layers=False):
    """Generate, build with the host gcc and run: (network, outputs, per-layer outputs if layers).

    With layers every layer's output is kept whole (no fusion), so each can be compared; without, the network is
    generated as it ships (fused)."""
    net = generate(flatbuffer, out, tabulate=tabulate, fuse=not layers)
    write_model_settings(flatbuffer, out)
    exe = build_host(out, out / "kws_net_run", (*defines, *(("KWS_NET_DUMP",) if layers else ())))
    sizes = tuple(int(np.prod(_shape(flatbuffer, x.output))) for x in net.layers) if layers else ()
    outputs, per_layer = run_host(exe, inputs, net.output_elements, sizes)
    return net, outputs, per_layer


def _shape(flatbuffer: bytes, tensor: int) -> tuple[int, ...]:
    from kws.engine.graph import read_tflite

    return read_tflite(flatbuffer).tensors[tensor].shape
