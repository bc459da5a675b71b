"""The one accuracy routine: top-1, mean cross-entropy, per-class accuracy and confusion of a model on features.

Training validation, growing and `kws eval` all count through here, so every number the project reports is
computed the same way: top-1 over the argmax of the logits, per-class accuracy (recall) and
confusion[true][predicted].
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def as_tensor(x: np.ndarray | torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(x))
    return t if dtype is None else t.to(dtype)


def confusion_summary(confusion: torch.Tensor) -> dict:
    """acc, n, per_class_acc (None for a class without examples) and the confusion matrix as lists."""
    n = int(confusion.sum())
    support = confusion.sum(1)
    per_class = [float(confusion[c, c]) / int(support[c]) if support[c] else None for c in range(len(confusion))]
    return dict(
        acc=float(confusion.diag().sum()) / max(n, 1), n=n, per_class_acc=per_class, confusion=confusion.tolist()
    )


def evaluate(
    model: torch.nn.Module,
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    batch_size: int = 512,
    label_smoothing: float = 0.0,
) -> dict:
    """Top-1 accuracy, mean cross-entropy, per-class accuracy and confusion[true][predicted], in eval mode.

    The model's train/eval mode is restored afterwards (growing evaluates between training phases).
    """
    model = getattr(model, "module", model)  # DistributedDataParallel
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    x, y = as_tensor(features, torch.float32), as_tensor(labels, torch.int64)
    k = model.num_classes
    confusion = torch.zeros(k, k, dtype=torch.int64)
    loss_sum = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(x[i : i + batch_size].to(device)).float().cpu()
            yb = y[i : i + batch_size]
            loss_sum += F.cross_entropy(logits, yb, reduction="sum", label_smoothing=label_smoothing).item()
            confusion += torch.bincount(yb * k + logits.argmax(1), minlength=k * k).reshape(k, k)
    model.train(was_training)
    out = confusion_summary(confusion)
    out["loss"] = loss_sum / max(out["n"], 1)
    return out


def mean_loss(
    model: torch.nn.Module,
    features: np.ndarray | torch.Tensor,
    labels: np.ndarray | torch.Tensor,
    batch_size: int = 512,
) -> float:
    """Mean cross-entropy of `model` in eval mode over fixed features: the training loss L whose change growing
    measures across a split (Liu et al. 2019, eq. 2)."""
    return evaluate(model, features, labels, batch_size=batch_size)["loss"]


__all__ = ["as_tensor", "confusion_summary", "evaluate", "mean_loss"]
