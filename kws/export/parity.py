"""Parity checks run on every export: does each artifact compute what the trained torch model computes?

- float TFLite vs torch: max |logit difference| (the classifier output before SOFTMAX) on test clips; a layout
  or BN-folding error shows up here as O(1), a correct rebuild as float rounding (~1e-5).
- ONNX (onnxruntime) vs torch: max |logit difference|.
- int8 vs float TFLite: top-1 agreement, and accuracy of each on the run's test split (quantization loss).
- TFLite Micro vs ai_edge_litert on the int8 model: max |output difference| in LSB (TFLM's kernels are not
  bit-exact with the optimized TFLite ones; docs/device.md measured <= 1).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from kws.export.convert import onnx_logits
from kws.export.tflite_model import TFLiteModel
from kws.export.tflm import run_tflm
from kws.frontend import quantize_features
from kws.models import DSCNN

LOGIT_CLIPS = 64  # clips for the float logit comparisons (they are deterministic; more adds time, not signal)
TFLM_CLIPS = 16


def torch_logits(model: DSCNN, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Logits (N, classes) of the eval-mode torch model."""
    model = model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(features), batch_size):
            out.append(model(torch.from_numpy(np.asarray(features[i : i + batch_size], np.float32))).numpy())
    return np.concatenate(out)


def parity_report(
    model: DSCNN, float_path: Path, int8_path: Path, onnx_path: Path | None, features: np.ndarray, labels: np.ndarray
) -> dict:
    """Every parity figure for one export, from test features (N, frames, coeffs) and their integer labels."""
    float_model, int8_model = TFLiteModel(float_path), TFLiteModel(int8_path)
    sub = features[:LOGIT_CLIPS]
    reference = torch_logits(model, features)
    float_probs, int8_probs = float_model.predict(features), int8_model.predict(features)
    report = dict(
        clips=int(len(features)),
        float_tflite_vs_torch_max_abs_logit=float(np.abs(float_model.logits(sub) - reference[: len(sub)]).max()),
        torch_accuracy=float(np.mean(reference.argmax(1) == labels)),
        float_tflite_accuracy=float(np.mean(float_probs.argmax(1) == labels)),
        int8_accuracy=float(np.mean(int8_probs.argmax(1) == labels)),
        int8_vs_float_top1_agreement=float(np.mean(int8_probs.argmax(1) == float_probs.argmax(1))),
    )
    report["int8_accuracy_drop_points"] = 100.0 * (report["float_tflite_accuracy"] - report["int8_accuracy"])
    if onnx_path is not None:
        report["onnx_vs_torch_max_abs_logit"] = float(np.abs(onnx_logits(onnx_path, sub) - reference[: len(sub)]).max())
    tflm_in = quantize_features(features[:TFLM_CLIPS], int8_model.input_scale, int8_model.input_zero_point)
    _, tflm_out = run_tflm(int8_path.read_bytes(), tflm_in[:, None, :, :, None])
    litert_q = np.round(int8_probs[:TFLM_CLIPS] / int8_model.output_scale) + int8_model.output_zero_point
    report["tflm_vs_tflite_max_lsb"] = int(np.abs(tflm_out - litert_q).max())
    return report
