"""The TensorFlow Lite Micro tensor arena a model needs, measured by the real TFLM interpreter.

PyPI `tflite-micro` wraps the TFLM C++ interpreter with the RecordingMicroAllocator. It has no getter for arena
use: print_allocations() writes "Arena allocation total/head/tail N bytes" to the C-level stderr, and the
interpreter can SIGABRT the whole process on some int8 softmax scales (docs/device.md). So every probe runs in a
child Python whose stderr is a pipe we parse; a crash there becomes a KwsError here, never a dead exporter.

head = the planned activation tensors (the analytic in+out peak rounded to 16 B for a DS-CNN); tail = persistent
interpreter state (node structs, quantization params, kernel scratch). Figures are for the x86-64 host build;
Cortex-M with CMSIS-NN measured ~+1% (docs/device.md), covered by the RAM reserve of each target.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kws.errors import KwsError

# Run in the child: build the interpreter with a generous arena, run the given int8 inputs, print allocations.
_PROBE = r"""
import json, sys
import numpy as np
from tflite_micro import runtime
model = open(sys.argv[1], "rb").read()
inputs = np.load(sys.argv[2])
interpreter = runtime.Interpreter.from_bytes(model, arena_size=int(sys.argv[3]))
outputs = []
for x in inputs:
    interpreter.set_input(x, 0)
    interpreter.invoke()
    outputs.append(interpreter.get_output(0).reshape(-1).tolist())
sys.stderr.flush()
interpreter.print_allocations()
print(json.dumps(outputs))
"""

_ALLOC = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


@dataclass(frozen=True, kw_only=True)
class ArenaUsage:
    """What TFLM allocated in its tensor arena, in bytes."""

    total_bytes: int
    head_bytes: int
    tail_bytes: int

    def to_dict(self) -> dict:
        return dict(total_bytes=self.total_bytes, head_bytes=self.head_bytes, tail_bytes=self.tail_bytes)


def run_tflm(
    flatbuffer: bytes, inputs: np.ndarray, arena_bytes: int | None = None, timeout_s: float = 120.0
) -> tuple[ArenaUsage, np.ndarray]:
    """Run int8 inputs (N, 1, frames, coeffs, 1) through TFLM in a child process: (arena usage, int8 outputs).

    arena_bytes defaults to 4x the model plus 256 KiB, far above any DS-CNN's need; the usage reported is what
    the allocator actually took, independent of the arena offered.
    """
    arena = arena_bytes or 4 * len(flatbuffer) + 256 * 1024
    with tempfile.TemporaryDirectory(prefix="kws_tflm_") as tmp:
        model_path, input_path = Path(tmp) / "model.tflite", Path(tmp) / "inputs.npy"
        model_path.write_bytes(flatbuffer)
        np.save(input_path, np.asarray(inputs))
        try:
            proc = subprocess.run(
                [sys.executable, "-c", _PROBE, str(model_path), str(input_path), str(arena)],
                capture_output=True,
                text=True,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise KwsError(
                f"export: the TFLite Micro probe took over {timeout_s:.0f} s; is the machine busy?"
            ) from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise KwsError(
            f"export: TFLite Micro failed on the model (exit {proc.returncode}: {last}); "
            "its int8 scales may be degenerate -- calibrate with more clips (--calib-clips)"
        )
    found = {k: int(v) for k, v in _ALLOC.findall(proc.stderr)}
    if set(found) != {"total", "head", "tail"}:
        raise KwsError("export: TFLite Micro printed no arena allocation; is tflite-micro installed correctly?")
    usage = ArenaUsage(total_bytes=found["total"], head_bytes=found["head"], tail_bytes=found["tail"])
    return usage, np.asarray(json.loads(proc.stdout.strip().splitlines()[-1]), dtype=np.int32)


def measure_arena(flatbuffer: bytes) -> ArenaUsage:
    """The arena TFLM allocates for the model (one invoke on a zero input)."""
    from ai_edge_litert.interpreter import Interpreter

    details = Interpreter(model_content=flatbuffer).get_input_details()[0]
    zeros = np.zeros((1, *details["shape"]), dtype=details["dtype"])
    return run_tflm(flatbuffer, zeros)[0]
