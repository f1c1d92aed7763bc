"""Classification and regression metrics, computed from one confusion matrix / one pass.

Conventions (tested on hand-made examples):
- confusion matrix rows = true class, columns = predicted class;
- precision of a class never predicted is 0, recall of a class absent from the targets is undefined, so macro
  averages run over the classes that occur in the targets (GSN: only 105 of 135 classes exist in the data);
- F1 = 2PR / (P + R), 0 when P + R = 0.
"""

from __future__ import annotations

import torch

# The keys of classification_metrics, declared so that a run can check an early-stopping monitor before training.
CLASSIFICATION_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "classes_present")


def regression_metric_names(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The keys of regression_metrics for output columns `names`."""
    return ("rmse", "mae", *(f"{kind}_{name}" for name in names for kind in ("rmse", "mae")))


def confusion_matrix(pred: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
    """num_classes x num_classes int64 matrix, cm[t, p] = number of samples of class t predicted as p."""
    pred = pred.reshape(-1).long()
    target = target.reshape(-1).long()
    flat = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes).cpu()


def per_class_scores(cm: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-class precision, recall, F1 and support (float64 tensors of length K)."""
    cm = cm.double()
    tp = cm.diagonal()
    predicted = cm.sum(dim=0)
    support = cm.sum(dim=1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12), torch.zeros_like(tp))
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def classification_metrics(cm: torch.Tensor) -> dict[str, float]:
    """Top-1 accuracy and macro precision/recall/F1 over the classes present in the targets."""
    scores = per_class_scores(cm)
    present = scores["support"] > 0
    total = cm.sum().item()
    out = {"accuracy": cm.diagonal().sum().item() / total if total else 0.0}
    for name in ("precision", "recall", "f1"):
        out[f"macro_{name}"] = scores[name][present].mean().item() if present.any() else 0.0
    out["classes_present"] = int(present.sum().item())
    return out


def regression_metrics(pred: torch.Tensor, target: torch.Tensor, names: list[str] | tuple[str, ...]) -> dict[str, float]:
    """RMSE and MAE per output column (named) and over all columns."""
    err = pred.double() - target.double()
    out = {"rmse": err.pow(2).mean().sqrt().item(), "mae": err.abs().mean().item()}
    rmse_cols = err.pow(2).mean(dim=0).sqrt()
    mae_cols = err.abs().mean(dim=0)
    for k, name in enumerate(names):
        out[f"rmse_{name}"] = rmse_cols[k].item()
        out[f"mae_{name}"] = mae_cols[k].item()
    return out
