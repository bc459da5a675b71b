"""`kws targets`' real-time widths, measured: for each target, the widest uniform ds-cnn-s-geometry network that
the engine's cost model says keeps real time (kws.export.targets.realtime_width), generated, built for the target's
core and run in QEMU (-icount shift=0). Writes kws/engine/realtime_widths.json, tagged with the engine version
(kws.engine.costmodel.engine_version), which `kws targets` reads for its "measured" column; a file measured on
another engine version is ignored there and fails tests/test_targets.py. Re-run after changing the engine.

The model is untrained with realistic BatchNorm statistics (kws.models.untrained) and quantized on random
calibration features: the engine's instruction count does not depend on the weights' values.

Run: .venv/bin/python bench/realtime_widths.py     (about 2 minutes on 2 cores; prints the JSON)
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

from host import cpu_name  # noqa: E402

from kws.engine import generate  # noqa: E402
from kws.engine.build import write_model_settings  # noqa: E402
from kws.engine.costmodel import engine_version  # noqa: E402
from kws.engine.measure import speed_clip  # noqa: E402
from kws.engine.qemu import CORES, build_app_image, run_app_image, write_clips  # noqa: E402
from kws.export import convert  # noqa: E402
from kws.export.targets import REALTIME_MEASURED, TARGETS, realtime_width  # noqa: E402
from kws.files import atomic_write_text  # noqa: E402
from kws.models import PRESETS, untrained  # noqa: E402


def main() -> int:
    t0, out = time.perf_counter(), {}
    for t in TARGETS.values():
        rt = realtime_width(t)
        if rt is None or t.name not in CORES:
            out[t.name] = dict(width=None, reason="no width keeps real time, or QEMU emulates no such core")
            continue
        width, predicted_ms = rt
        spec = PRESETS["ds-cnn-s"].uniform(width)
        calibration = np.random.default_rng(0).normal(scale=4.0, size=(16, *spec.input_shape)).astype(np.float32)
        fb = convert.to_tflite_int8(untrained(spec), calibration)
        with tempfile.TemporaryDirectory(prefix="kws_rt_") as tmp:
            generate(fb, tmp)
            write_model_settings(fb, tmp)
            write_clips(tmp, speed_clip())
            run = run_app_image(build_app_image(tmp, Path(tmp) / "app.elf", t.name), t.name, timeout_s=600)
        instr = float(run.inference_instructions[0])
        ms = instr / (t.clock_mhz * 1e3)
        period = ms + 10 * t.frontend_instructions_per_hop / (t.clock_mhz * 1e3)
        out[t.name] = dict(
            width=width,
            clock_mhz=t.clock_mhz,
            predicted_ms=predicted_ms,
            measured_instructions=int(instr),
            measured_ms=ms,
            error=ms / predicted_ms - 1,
            period_load_ms=period,
            keeps_up=period <= 200.0,
        )
    data = dict(
        engine_version=engine_version(),
        what="kws targets' real-time width per target, run in QEMU on its core (-icount shift=0, 1 instruction "
        "per cycle); period_load_ms = inference + 10 frontend hops against the 200 ms period",
        host=dict(cpu=cpu_name(), machine=platform.machine()),
        seconds=round(time.perf_counter() - t0, 1),
        targets=out,
    )
    text = json.dumps(data, indent=1)
    atomic_write_text(REALTIME_MEASURED, text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
