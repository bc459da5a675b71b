"""Deploying a trained DS-CNN: int8/float TFLite, ONNX, the TFLM arena, C arrays, targets and the footprint report.

Modules (imports point down this list):
    files         atomic writes
    targets       Cortex-M targets, default boards, reserves, cycles/MAC basis
    keras_model   the NHWC Keras rebuild with BatchNorm folded (why this route: its docstring)
    convert       int8 / float TFLite and ONNX
    tflite_model  TFLiteModel: run an exported .tflite with its labels and frontend (kws eval)
    tflm          the TFLite Micro arena, measured by the real interpreter in a child process
    carrays       model_data.h/.c
    footprint     TFLM runtime and frontend flash/RAM
    parity        torch vs float TFLite vs int8 vs ONNX vs TFLM
    device        the engine's device figures (kws: measured on the target's core; tflm: estimated), real time
    report        report.json / report.md / summary table, the budget check
    pipeline      export_model / export_run (what `kws export` calls)
"""

from kws.export.pipeline import ExportData, export_model, export_run, load_export_data
from kws.export.targets import TARGETS, Target, resolve_target
from kws.export.tflite_model import TFLiteModel

__all__ = [
    "ExportData",
    "TARGETS",
    "TFLiteModel",
    "Target",
    "export_model",
    "export_run",
    "load_export_data",
    "resolve_target",
]
