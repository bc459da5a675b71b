"""Run an exported .tflite model (int8 or float32) on MFCC features, with its labels and frontend.

The metadata JSON written beside each .tflite at export (<stem>.json, or export_meta.json in the folder) carries
the labels, the FrontendConfig and (for a run) the TaskConfig and dataset root, so that `kws eval --model
model_int8.tflite` computes the very features the model was trained on and quantizes them with the model's own
input scale and zero point (read from the flatbuffer, not the JSON: the flatbuffer is what the device runs).
Runs on ai_edge_litert's Interpreter (the successor of tflite-runtime, bit-exact with tf.lite, works under numpy 2).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np

from kws.data import TaskConfig
from kws.errors import KwsError
from kws.frontend import FrontendConfig, quantize_features


def meta_path(tflite_path: Path) -> Path:
    """Where the metadata of a .tflite lives: <stem>.json beside it."""
    return Path(tflite_path).with_suffix(".json")


def write_meta(tflite_path: Path, *, labels: list[str], frontend: FrontendConfig, extra: dict | None = None) -> Path:
    """Write <stem>.json beside tflite_path with labels, frontend and extra (sha256, quantization, arch)."""
    from kws.files import atomic_write_text

    meta = dict(model=Path(tflite_path).name, labels=list(labels), frontend=frontend.to_dict(), **(extra or {}))
    return atomic_write_text(meta_path(tflite_path), json.dumps(meta, indent=2) + "\n")


def _read_meta(path: Path) -> dict:
    for candidate in (meta_path(path), path.parent / "export_meta.json"):
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text())
            except json.JSONDecodeError as e:
                raise KwsError(f"{candidate}: not valid JSON ({e}); re-run `kws export`") from None
    raise KwsError(f"{path}: no {meta_path(path).name} or export_meta.json beside it; re-run `kws export` to write it")


class TFLiteModel:
    """An exported .tflite with its labels and frontend; predict() maps float features to class probabilities."""

    def __init__(self, path: str | Path):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        self.path = Path(path)
        if not self.path.is_file():
            raise KwsError(f"--model: {self.path} does not exist; give a .tflite written by `kws export`")
        meta = _read_meta(self.path)
        try:
            self.labels: list[str] = list(meta["labels"])
            self.frontend = FrontendConfig.from_dict(meta["frontend"])
            self.task = TaskConfig.from_dict(meta["task"]) if meta.get("task") else None
        except (KeyError, TypeError) as e:
            raise KwsError(f"{meta_path(self.path)}: missing or bad field {e}; re-run `kws export`") from None
        try:
            # Without the XNNPACK delegate: it would fuse the graph into one node and drop the logits tensor.
            with warnings.catch_warnings():  # preserve_all_tensors warns about memory; a DS-CNN's is tiny
                warnings.simplefilter("ignore")
                self._interpreter = Interpreter(
                    model_path=str(self.path),
                    experimental_preserve_all_tensors=True,
                    experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
                )
        except (ValueError, RuntimeError) as e:
            raise KwsError(f"--model: {self.path} is not a valid TFLite model ({e})".splitlines()[0]) from None
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        self.input_scale, self.input_zero_point = (float(v) for v in self._input["quantization"])
        self.output_scale, self.output_zero_point = (float(v) for v in self._output["quantization"])
        self.input_zero_point, self.output_zero_point = int(self.input_zero_point), int(self.output_zero_point)
        self._logits_index = self._softmax_input()
        self.data_root: str | None = meta.get("data_root")

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frames, coefficients) the model reads."""
        return int(self._input["shape"][1]), int(self._input["shape"][2])

    @property
    def is_int8(self) -> bool:
        return self._input["dtype"] == np.int8

    def _softmax_input(self) -> int | None:
        ops = self._interpreter._get_ops_details()
        return int(ops[-1]["inputs"][0]) if ops and ops[-1]["op_name"] == "SOFTMAX" else None

    def _run(self, features: np.ndarray, tensor: int | None) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        expected = self.input_shape
        if x.ndim != 3 or x.shape[1:] != expected:
            raise KwsError(f"{self.path.name}: features must be (N, {expected[0]}, {expected[1]}), got {x.shape}")
        if self.is_int8:
            x = quantize_features(x, self.input_scale, self.input_zero_point)
        index = self._output["index"] if tensor is None else tensor
        details = self._interpreter._get_tensor_details(index, 0)
        scale, zero_point = details["quantization"]
        out = []
        for clip in x:
            self._interpreter.set_tensor(self._input["index"], clip[None, :, :, None])
            self._interpreter.invoke()
            y = self._interpreter.get_tensor(index)
            y = y.reshape(-1).astype(np.float32)  # before subtracting: int8 - zero_point overflows int8
            out.append(y if not scale else (y - zero_point) * scale)
        return np.stack(out).astype(np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (N, classes), dequantized, for float MFCC features (N, frames, coeffs)."""
        return self._run(features, None)

    def logits(self, features: np.ndarray) -> np.ndarray:
        """The classifier's outputs before SOFTMAX (N, classes), dequantized: for parity with torch logits."""
        if self._logits_index is None:
            return self.predict(features)
        return self._run(features, self._logits_index)
