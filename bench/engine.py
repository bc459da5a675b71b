"""Our own int8 engine (kws.engine) on every Cortex-M core QEMU emulates, beside the TFLite Micro arena, as JSON.

For ds-cnn-s, ds-cnn-m, ds-cnn-l (untrained, realistic BatchNorm statistics, int8-calibrated on real training clips
of --data) and every grown run directory given (--runs; kws.checkpoint layout), the model is converted to int8
TFLite once; then for each core the generated engine is linked into the whole firmware app (frontend, rings,
network, recognizer) and run in QEMU on --clips real test clips:
    cortex-m4     mps2-an386  DSP kernels (SMLAD / SXTB16)
    cortex-m7     mps2-an500  DSP kernels
    cortex-m33    mps2-an505  DSP kernels
    cortex-m55    mps3-an547  DSP kernels (no Helium path yet)
    cortex-m0plus mps2-an385  ARMv6-M build, portable kernels, on the AN385's Cortex-M3 (QEMU's microbit M0 has
                              16 KB of RAM; the AN385 is the roomier stand-in)
Per model and core: instructions per inference and per MAC (QEMU -icount shift=0; instructions, not cycles),
per layer, linked app flash and RAM (.data + .bss + stack high-water mark), engine code flash beyond the
constants, and QEMU top-1 against LiteRT int8 (BUILTIN_REF) on the Python frontend's features of the same clips.
Per model: engine arena + scratch against the arena the real TFLite Micro interpreter allocates (host build).
The goals (issue 15) are printed in the JSON beside the figures.

Run: .venv/bin/python bench/engine.py [--models ds-cnn-s ds-cnn-l] [--runs RUN_DIR ...] [--cores ...]
     [--clips 8] [--data ../shared/data/speech_commands_mini] > engine.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # engine_support: the same model builder, clips and reference as the tests
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

GOALS = dict(
    ram_vs_tflm_arena="<= 0.5",
    instructions_per_mac_m4_dsp="<= 1.5 (best published M4: 1.95 cycles/MAC; TFLM reference kernels ~75)",
    engine_code_flash_bytes="<= 10240",
    qemu_top1_vs_litert="identical",
)


def _models(args) -> list[tuple[str, bytes]]:
    import engine_support as es

    from kws.checkpoint import load_run
    from kws.export import convert

    root = Path(args.data)
    out = [(name, es.tflite(root, name, "relu")) for name in args.models]
    for run_dir in args.runs:
        run = load_run(run_dir)
        out.append((f"grown:{Path(run_dir).name}", convert.to_tflite_int8(run.model.eval(), es.calibration(root))))
    return out


def _core_row(name: str, fb: bytes, core: str, pcm: np.ndarray, python_input: np.ndarray) -> dict:
    import engine_support as es

    from kws.engine.measure import measure_engine
    from kws.errors import KwsError
    from kws.export.targets import TARGETS

    t = TARGETS[core]
    try:
        m = measure_engine(fb, core=core, clock_mhz=t.clock_mhz, period_hops=10, hop_ms=20.0, pcm=pcm)
    except KwsError as e:
        return dict(model=name, core=core, error=str(e))
    device = np.array(m.pop("clip_features"), np.int8)
    labels = np.array(m.pop("clip_labels"))
    scores = np.array(m.pop("clip_scores"), np.int8)
    on_device_input, _ = es.reference(fb, device)
    on_python_input, _ = es.reference(fb, python_input)
    m.update(
        model=name,
        board=t.board,
        scores_equal_litert_on_device_input=bool(np.array_equal(scores, on_device_input)),
        top1_equal_litert_on_python_features=int((labels == on_python_input.argmax(axis=1)).sum()),
        clips=len(labels),
    )
    return m


def main(argv: list[str] | None = None) -> int:
    import engine_support as es

    from kws.engine import generate
    from kws.engine.qemu import CORES
    from kws.export.tflm import measure_arena

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="*", default=["ds-cnn-s", "ds-cnn-m", "ds-cnn-l"], help="presets")
    p.add_argument("--runs", nargs="*", default=[], help="grown run directories (kws.checkpoint layout)")
    p.add_argument("--cores", nargs="*", default=list(CORES), help=f"cores to emulate (default: {', '.join(CORES)})")
    p.add_argument("--clips", type=int, default=8, help="real test clips run on each core")
    p.add_argument("--data", default=str(ROOT.parent / "shared/data/speech_commands_mini"), help="mini dataset root")
    args = p.parse_args(argv)
    root = Path(args.data)
    if not (root / "testing_list.txt").is_file():
        print(f"--data: {root} has no testing_list.txt; give the mini dataset root", file=sys.stderr)
        return 2
    files = es.split_files(root)
    pick = np.linspace(0, len(files) - 1, args.clips).astype(int)
    pcm = es.read_clips([files[i] for i in pick])
    features = es.split_features(root)[pick]
    rows, models = [], []
    for name, fb in _models(args):
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            net = generate(fb, tmp)
        tflm = measure_arena(fb).total_bytes
        models.append(
            dict(
                model=name,
                macs=net.macs,
                const_bytes=net.const_bytes,
                engine_arena_bytes=net.plan.arena_bytes,
                engine_scratch_bytes=net.plan.scratch_bytes,
                tflm_arena_bytes=tflm,
                ram_vs_tflm_arena=round(net.ram_bytes / tflm, 3),
            )
        )
        python_input = es.quantized(fb, features)
        for core in args.cores:
            rows.append(_core_row(name, fb, core, pcm, python_input))
            print(f"{name} {core}: {rows[-1].get('instructions_per_mac', rows[-1].get('error'))}", file=sys.stderr)
    print(json.dumps(dict(goals=GOALS, models=models, runs=rows), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
