"""The `kws eval` and `kws predict` jobs: accuracy of a run directory or a .tflite on a dataset, and labels +
probabilities for wav files. The accuracy figures are kws.accuracy's (confusion_summary), as in training.

A model path is a run directory (torch, through the frontend and labels the run remembers) or a .tflite file
(kws.export.TFLiteModel, which reads the labels and frontend saved beside it). Both answer `predict(features)`
with class probabilities, so evaluation and prediction do not care which one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kws.accuracy import as_tensor, confusion_summary
from kws.errors import KwsError
from kws.frontend import FrontendConfig, compute_mfcc


@dataclass
class TorchPredictor:
    """A run directory's model behind the same predict(features) -> probabilities interface as TFLiteModel."""

    model: torch.nn.Module
    labels: list[str]
    frontend: FrontendConfig
    task: Any = None
    data_root: str | None = None

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.model.spec.input_shape)

    def predict(self, features: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return torch.softmax(self.model(as_tensor(features, torch.float32)), dim=-1).numpy()


def load_predictor(path: str | Path) -> Any:
    """A run directory -> TorchPredictor; a .tflite file -> kws.export.TFLiteModel. KwsError otherwise."""
    from kws.checkpoint import load_run

    path = Path(path)
    if path.is_dir():
        run = load_run(path)
        return TorchPredictor(
            model=run.model, labels=run.labels, frontend=run.frontend, task=run.task, data_root=run.data_root
        )
    if path.suffix == ".tflite":
        if not path.is_file():
            raise KwsError(f"--model {path} does not exist; give a .tflite written by `kws export`")
        from kws.export import TFLiteModel

        try:
            return TFLiteModel(path)
        except KwsError:
            raise
        except Exception as e:  # the interpreter's own errors on a corrupt flatbuffer
            raise KwsError(f"--model {path} is not a readable TFLite model ({_first_line(e)})") from None
    what = "is not a run directory" if path.exists() else "does not exist"
    raise KwsError(f"--model {path} {what}; give a run directory (from `kws train`) or a .tflite (from `kws export`)")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else type(e).__name__)[:160]


def predict_features(predictor: Any, features: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class probabilities (N, C); KwsError when the model's input or output shape does not fit."""
    expected = tuple(predictor.frontend.feature_shape)
    if tuple(features.shape[1:]) != expected:
        raise KwsError(
            f"--model expects features {getattr(predictor, 'input_shape', expected)} but its frontend "
            f"gives {tuple(features.shape[1:])}"
        )
    try:
        probs = [
            np.asarray(predictor.predict(features[i : i + batch_size])) for i in range(0, len(features), batch_size)
        ]
    except KwsError:
        raise
    except (RuntimeError, ValueError) as e:
        raise KwsError(f"--model cannot run on {expected} features ({_first_line(e)})") from None
    probs = np.concatenate(probs) if probs else np.zeros((0, len(predictor.labels)), np.float32)
    if probs.shape[1:] != (len(predictor.labels),):
        raise KwsError(f"--model outputs {probs.shape[1:]} scores but names {len(predictor.labels)} labels")
    return probs


def _eval_dataset(predictor: Any, data: str | Path | None, split: str, test_set: str | Path | None):
    """(the Dataset read, its split to evaluate)."""
    from kws.data import TaskConfig, load_dataset, load_test_set

    if (data is None) == (test_set is None):
        raise KwsError("kws eval: give exactly one of --data DIR (with --split) or --test-set DIR")
    if test_set is not None:
        dataset = load_test_set(test_set, frontend=predictor.frontend, labels=predictor.labels)
        return dataset, dataset.splits["test"]
    task = getattr(predictor, "task", None)
    if task is None:
        if predictor.labels[:2] != ["_silence_", "_unknown_"]:
            raise KwsError(f"--model labels {predictor.labels[:3]}... are not a Speech Commands task; use --test-set")
        task = TaskConfig(words=tuple(predictor.labels[2:]))
    elif task.labels != predictor.labels:
        raise KwsError(f"--model: labels.json {predictor.labels} disagree with the task in run.json {task.labels}")
    if split not in ("train", "validation", "test"):
        raise KwsError(f"--split {split!r}: choose train, validation or test")
    dataset = load_dataset(data, task=task, frontend=predictor.frontend, splits=(split,), progress=False)
    return dataset, dataset.splits[split]


def evaluate_model(
    model_path: str | Path, data: str | Path | None = None, split: str = "test", test_set: str | Path | None = None
) -> dict:
    """`kws eval`: accuracy of a run directory or .tflite on a dataset split or the official test-set folder.

    Returns acc, n, per_class_acc (label -> accuracy), confusion[true][predicted], labels and audio_issues (the
    files skipped, converted, padded or cropped; their one-line summary goes to stderr). KwsError when a class of
    the model has no clip in the data (accuracy over a partial task would mislead).
    """
    from kws.features import features

    predictor = load_predictor(model_path)
    dataset, clips = _eval_dataset(predictor, data, split, test_set)
    issues = dataset.issues.report(dataset.root, None, "eval")
    k = len(predictor.labels)
    counts = np.bincount(clips.labels, minlength=k)
    missing = [predictor.labels[c] for c in range(k) if counts[c] == 0]
    if missing:
        source = test_set if test_set is not None else f"{data} (split {split})"
        raise KwsError(
            f"{source} has no clips of class(es) {missing}; evaluate on data that covers all {k} labels of the model"
        )
    probs = predict_features(predictor, features(clips, predictor.frontend))
    pred = torch.from_numpy(probs.argmax(1))
    confusion = torch.bincount(torch.from_numpy(clips.labels) * k + pred, minlength=k * k).reshape(k, k)
    out = confusion_summary(confusion)
    out["per_class_acc"] = dict(zip(predictor.labels, out["per_class_acc"], strict=True))
    out.update(labels=list(predictor.labels), model=str(model_path), audio_issues=issues)
    return out


def predict_files(model_path: str | Path, files: list[str | Path]) -> list[dict]:
    """`kws predict`: for each file in order, {file, label, probs} (the top label and every label's probability,
    through the model's own frontend: rate, clip length, MFCC settings), or {file, error} for a file that is not
    usable audio (the error is the reason), so that one bad file never hides the results of the good ones.

    A good file that was converted, padded or cropped to fit the model says so in `note`."""
    from kws.audio import UnusableAudio, read_clip

    predictor = load_predictor(model_path)
    fe = predictor.frontend
    if not files:
        raise KwsError("kws predict: give at least one wav file")
    results: list[dict] = []
    waves = []
    for f in files:
        try:
            clip = read_clip(f, fe.sample_rate_hz, fe.clip_samples)
        except UnusableAudio as e:
            results.append(dict(file=str(f), error=str(e)))
            continue
        note = "; ".join(f"{k}: {getattr(clip, k)}" for k in ("converted", "padded", "cropped") if getattr(clip, k))
        results.append(dict(file=str(f), **({"note": note} if note else {})))
        waves.append(clip.samples)
    good = [r for r in results if "error" not in r]
    probs = predict_features(predictor, compute_mfcc(np.stack(waves), fe)) if waves else []
    for r, p in zip(good, probs, strict=True):
        r.update(
            label=predictor.labels[int(p.argmax())],
            probs={lab: float(v) for lab, v in zip(predictor.labels, p, strict=True)},
        )
    return results


__all__ = ["TorchPredictor", "evaluate_model", "load_predictor", "predict_features", "predict_files"]
