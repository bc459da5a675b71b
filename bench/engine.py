"""The generated int8 engine on every core QEMU emulates, side by side for DS-CNN presets and grown-shape specs.

For each model (ds-cnn-s, ds-cnn-l and three non-uniform specs of the grown models' sizes, 22.6K / 135K / 300K
params: NO grown run exists in this repository, so these are hand-made specs that widen with depth as the grown
ones do, stated as such in the JSON), untrained but with realistic BatchNorm statistics and quantized on random
calibration features (speed does not depend on the weights), and for each core of kws.engine.qemu.CORES:
- instructions per inference (QEMU -icount), per MAC, and per layer kind (conv, depthwise, pointwise, ...);
- engine RAM (planned arena + scratch, and + the measured stack) against the TFLM arena the real interpreter
  allocates for the same model (kws.export.tflm.measure_arena), as a ratio;
- engine flash (the app less the app with a null model) and its code beyond the constants;
- on --clips real test clips of the mini set: the device's scores against LiteRT's reference kernels on the
  device's own input (max LSB), and the device's top-1 against LiteRT int8 on the Python pipeline's features;
- the real-time verdict per target board (kws.export.targets): one inference period (one inference + 10 frontend
  hops) at the board's clock against 200 ms, at 1 instruction per cycle (kws.engine.measure.INSTRUCTIONS_BASIS).
Prints JSON (one run) on stdout and writes it to --out; --markdown prints the bench/README.md tables instead.

Run: .venv/bin/python bench/engine.py [--models ds-cnn-s ...] [--cores cortex-m4 ...] [--clips 4]
     [--out bench/out/engine.json] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from kws import frontend as fe  # noqa: E402
from kws.cost import cost  # noqa: E402
from kws.engine import generate  # noqa: E402
from kws.engine.build import write_model_settings  # noqa: E402
from kws.engine.measure import INSTRUCTIONS_BASIS, measure  # noqa: E402
from kws.engine.qemu import CORES  # noqa: E402
from kws.errors import KwsError  # noqa: E402
from kws.export import convert  # noqa: E402
from kws.export.targets import TARGETS  # noqa: E402
from kws.models import PRESETS, ArchSpec  # noqa: E402

MINI = REPO.parent / "shared" / "data" / "speech_commands_mini"
_S, _M = dict(strides=((1, 1),) * 4, conv1_stride=(2, 2)), dict(strides=((2, 2),) + ((1, 1),) * 3, conv1_stride=(2, 1))
MODELS: dict[str, ArchSpec] = {
    "ds-cnn-s": PRESETS["ds-cnn-s"],
    "ds-cnn-l": PRESETS["ds-cnn-l"],
    # Not grown runs: non-uniform specs of the grown models' sizes (widths rising with depth), ds-cnn-s geometry
    # for 22.6K and ds-cnn-m geometry for 135K and 300K.
    "grown-shape-22.6k": ArchSpec(conv1_width=38, widths=(51, 64, 76, 90), **_S),
    "grown-shape-135k": ArchSpec(conv1_width=102, widths=(136, 170, 204, 238), **_M),
    "grown-shape-300k": ArchSpec(conv1_width=154, widths=(205, 256, 307, 358), **_M),
}
PERIOD_HOPS = 10


def _model(spec: ArchSpec, seed: int = 0):
    """Untrained, BatchNorm statistics far from identity (kws.models.untrained), eval mode."""
    from kws.models import untrained

    return untrained(spec, seed=seed)


def _clips(n: int) -> np.ndarray:
    import soundfile as sf

    files = (MINI / "testing_list.txt").read_text().split()
    pick = np.linspace(0, len(files) - 1, n).astype(int)
    pcm = np.zeros((n, fe.FrontendConfig().clip_samples), np.int16)
    for i, k in enumerate(pick):
        x, _ = sf.read(MINI / files[k], dtype="int16")
        pcm[i, : min(len(x), pcm.shape[1])] = x[: pcm.shape[1]]
    return pcm


def _litert(flatbuffer: bytes, inputs: np.ndarray) -> np.ndarray:
    from kws.export.device import _litert_ref

    return _litert_ref(flatbuffer, inputs)


def _tflm_arena(flatbuffer: bytes) -> int | None:
    from kws.export.tflm import measure_arena

    try:
        return int(measure_arena(flatbuffer).total_bytes)
    except KwsError:
        return None  # TFLM aborts on some untrained softmax scales (docs/device.md)


def _by_kind(net, m) -> dict:
    kinds: dict[str, dict] = {}
    for layer, n in zip(net.layers, m.layer_instructions, strict=True):
        k = kinds.setdefault(layer.kind, dict(instructions=0, macs=0))
        k["instructions"] += n
        k["macs"] += layer.macs
    for k in kinds.values():
        k["per_mac"] = round(k["instructions"] / k["macs"], 3) if k["macs"] else None
    return kinds


def bench_model(name: str, spec: ArchSpec, cores: list[str], pcm: np.ndarray) -> dict:
    t0 = time.time()
    rng = np.random.default_rng(0)
    calibration = rng.normal(scale=4.0, size=(32, *spec.input_shape)).astype(np.float32)
    fb = convert.to_tflite_int8(_model(spec), calibration)
    arena = _tflm_arena(fb)
    c = cost(spec)
    row = dict(spec=spec.to_dict(), params=c.params_deployed, macs=c.macs, tflm_arena_bytes=arena, cores={})
    scale, zp = _input_quantization(fb)
    python_in = fe.quantize_features(fe.compute_mfcc(pcm / 32768.0), scale, zp).reshape(len(pcm), -1)
    python_top1 = _litert(fb, python_in.astype(np.int8)).argmax(axis=1)
    with tempfile.TemporaryDirectory(prefix="kws_bench_engine_") as tmp:
        net = generate(fb, tmp)
        write_model_settings(fb, tmp)
        row.update(
            engine_arena_bytes=net.plan.arena_bytes,
            engine_scratch_bytes=net.plan.scratch_bytes,
            engine_const_bytes=net.const_bytes,
            engine_ram_vs_tflm_arena=round(net.ram_bytes / arena, 3) if arena else None,
        )
        for core in cores:
            m = measure(tmp, core, pcm)
            ref = _litert(fb, m.features)
            row["cores"][core] = dict(
                instructions_per_inference=m.inference_instructions,
                instructions_per_mac=round(m.inference_instructions / c.macs, 3),
                per_kind=_by_kind(net, m),
                frontend_instructions_per_hop=round(m.frontend_instructions_per_hop),
                stack_bytes=m.stack_bytes,
                engine_ram_with_stack_bytes=net.ram_bytes + m.stack_bytes,
                engine_ram_with_stack_vs_tflm_arena=round((net.ram_bytes + m.stack_bytes) / arena, 3)
                if arena
                else None,
                engine_flash_bytes=m.engine_flash_bytes,
                engine_code_bytes=m.engine_flash_bytes - net.const_bytes,
                app_flash_bytes=m.flash_bytes,
                app_ram_bytes=m.ram_bytes,
                scores_vs_litert_ref_max_lsb=int(np.abs(m.scores.astype(int) - ref.astype(int)).max()),
                top1_equal_litert_on_python_features=int((m.scores.argmax(axis=1) == python_top1).sum()),
                clips=len(pcm),
                period_instructions=round(m.period_instructions(PERIOD_HOPS)),
            )
    row["realtime"] = {
        t.name: _verdict(t, row["cores"][t.name]["period_instructions"]) for t in TARGETS.values() if t.name in cores
    }
    row["seconds"] = round(time.time() - t0, 1)
    return row


def _verdict(target, instructions: int) -> dict:
    ms = target.ms(instructions)
    return dict(board=target.board, clock_mhz=target.clock_mhz, period_ms=round(ms, 1), keeps_up=ms <= 200.0)


def _input_quantization(fb: bytes) -> tuple[float, int]:
    from kws.engine.graph import read_tflite

    g = read_tflite(fb)
    x = g.tensors[g.input]
    return float(x.scale), int(x.zero_point)


def markdown(result: dict) -> str:
    """The bench/README.md tables: per model and core, then the real-time verdicts per board."""
    cores = result["cores"]
    lines = [
        "| model | params | MACs | " + " | ".join(f"{c} instr/MAC" for c in cores) + " | engine RAM / TFLM arena "
        "| engine code B | QEMU = LiteRT |",
        "|---|---:|---:|" + "---:|" * len(cores) + "---:|---:|---|",
    ]
    for name, r in result["models"].items():
        per = " | ".join(f"{r['cores'][c]['instructions_per_mac']:.2f}" for c in cores)
        code = r["cores"]["cortex-m4"]["engine_code_bytes"] if "cortex-m4" in cores else ""
        ratio = f"{r['engine_ram_vs_tflm_arena']:.2f}" if r["engine_ram_vs_tflm_arena"] else "n/a"
        same = all(
            v["scores_vs_litert_ref_max_lsb"] == 0 and v["top1_equal_litert_on_python_features"] == v["clips"]
            for v in r["cores"].values()
        )
        lines.append(
            f"| {name} | {r['params']:,} | {r['macs']:,} | {per} | {ratio} | {code:,} | {'yes' if same else 'NO'} |"
        )
    lines += [
        "",
        "| model | "
        + " | ".join(
            f"{t} ({result['models'][next(iter(result['models']))]['realtime'][t]['clock_mhz']:g} MHz)"
            for t in result["targets"]
        )
        + " |",
    ]
    lines.append("|---|" + "---:|" * len(result["targets"]))
    for name, r in result["models"].items():
        cells = [f"{v['period_ms']:,.0f} ms {'ok' if v['keeps_up'] else 'NO'}" for v in r["realtime"].values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--cores", nargs="+", default=list(CORES), choices=list(CORES))
    p.add_argument("--clips", type=int, default=4, help="real test clips of the mini set run on every core")
    p.add_argument("--out", default=str(REPO / "bench" / "out" / "engine.json"))
    p.add_argument("--markdown", action="store_true", help="print the README tables of --out instead of running")
    args = p.parse_args(argv)
    if args.markdown:
        print(markdown(json.loads(Path(args.out).read_text())))
        return 0
    pcm = _clips(args.clips)
    result = dict(
        note="grown-shape-* are non-uniform specs of the grown models' sizes, not grown runs (none exists here); "
        "weights untrained, quantized on random calibration; top-1 on real test clips of the mini set",
        instructions_basis=INSTRUCTIONS_BASIS,
        period=f"{PERIOD_HOPS} hops x 20 ms = 200 ms",
        cores={c: dict(machine=CORES[c].machine, flags=list(CORES[c].cflags), note=CORES[c].note) for c in args.cores},
        targets=[t for t in TARGETS if t in args.cores],
        models={},
    )
    for name in args.models:
        result["models"][name] = bench_model(name, MODELS[name], args.cores, pcm)
        print(f"{name}: {result['models'][name]['seconds']} s", file=sys.stderr)
    text = json.dumps(result, indent=1)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
