"""The image classification task (MNIST family): batch preparation, loss, decoding and metrics (trainer-agnostic)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab28.workloads.classify.augment import FashionAugment, FashionAugmentConfig, cutmix
from lab28.data.specs import idx_spec
from lab28.workloads.classify.data import CLASS_NAMES, DEFAULT_DATASET, NUM_CLASSES
from lab28.metrics import CLASSIFICATION_METRICS, classification_metrics, confusion_matrix, per_class_scores

# Training-set pixel statistics in [0, 1] of each data set come from its spec: a centred input lets BN layers
# start near identity. These are Fashion-MNIST's, the default data set.
PIXEL_MEAN, PIXEL_STD = idx_spec(DEFAULT_DATASET).mean, idx_spec(DEFAULT_DATASET).std


@dataclass
class FashionTaskConfig:
    label_smoothing: float = 0.0  # CrossEntropy label smoothing (0 = plain CE); softens over-confident logits

    def validate(self) -> None:
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")


def per_class_metrics(cm: torch.Tensor, names: tuple[str, ...] = CLASS_NAMES) -> dict[str, float]:
    """`precision/<class>`, `recall/<class>`, `f1/<class>`, `support/<class>` from one confusion matrix.

    Each comes from its own column/row sum (metrics.per_class_scores), so precision, recall and F1 differ
    whenever a class is over- or under-predicted; the seed report's identical P = R = F1 cells cannot happen.
    """
    scores = per_class_scores(cm)
    out: dict[str, float] = {}
    for key in ("precision", "recall", "f1", "support"):
        for k, name in enumerate(names):
            value = scores[key][k].item()
            out[f"{key}/{name}"] = int(value) if key == "support" else value
    return out


def mixed_cross_entropy(logits: torch.Tensor, targets: dict[str, torch.Tensor], smoothing: float) -> torch.Tensor:
    """Mean cross-entropy against targets["labels"], or, where CutMix left "partner_labels" and "own_weight", each
    image's two cross-entropies weighted by the shares of the image its two labels hold."""
    if "own_weight" not in targets:
        return F.cross_entropy(logits, targets["labels"], label_smoothing=smoothing)
    own = F.cross_entropy(logits, targets["labels"], label_smoothing=smoothing, reduction="none")
    partner = F.cross_entropy(logits, targets["partner_labels"], label_smoothing=smoothing, reduction="none")
    weight = targets["own_weight"]
    return (weight * own + (1.0 - weight) * partner).mean()


class FashionTask:
    """Owns how uint8 images become model input, the loss, and every metric; the trainer knows no clothes.

    `dataset` (a lab28.data.specs name) gives the normalisation and the class names of the per-class metrics."""

    name = "fashion"
    default_monitor = ("val_accuracy", "max")

    def __init__(self, config: FashionTaskConfig | None = None, augment: FashionAugmentConfig | None = None,
                 dataset: str = DEFAULT_DATASET):
        self.config = config or FashionTaskConfig()
        self.config.validate()
        if augment is not None:
            augment.validate()
        self.augment = FashionAugment(augment) if augment is not None and augment.any_enabled() else None
        self.cutmix_probability = augment.cutmix if augment is not None else 0.0
        spec = idx_spec(dataset)
        self.class_names, self.mean, self.std = spec.class_names, spec.mean, spec.std

    def prepare_batch(self, images: torch.Tensor, labels: torch.Tensor, train: bool, generator=None):
        """uint8 N x 1 x 28 x 28 + labels -> normalised float input and {"labels": ...} (augmented if training).

        With CutMix on, a training batch's targets also hold "partner_labels" and "own_weight" (see `loss`)."""
        x = images.float().div_(255.0)
        if train and self.augment is not None:
            x, labels = self.augment(x, labels, generator)
        targets = {"labels": labels.long()}
        if train and self.cutmix_probability > 0:
            x, partner, own_weight = cutmix(x, labels, self.cutmix_probability, generator)
            targets.update(partner_labels=partner.long(), own_weight=own_weight)
        return (x - self.mean) / self.std, targets

    def loss(self, outputs, targets) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Cross-entropy (label-smoothed when configured); a CutMix image's loss is its two labels' losses weighted
        by the areas they hold."""
        logits = (outputs[0] if isinstance(outputs, tuple) else outputs).float()
        smoothing = self.config.label_smoothing
        loss = mixed_cross_entropy(logits, targets, smoothing)
        # With smoothing the objective has a floor above 0; the NLL beside it compares across smoothing values (with
        # CutMix it is the NLL of the mixed labels, so it compares only between runs that mix alike).
        parts = {"nll": mixed_cross_entropy(logits.detach(), targets, 0.0)} if smoothing > 0 else {}
        return loss, parts

    def predict(self, outputs) -> torch.Tensor:
        logits = outputs[0] if isinstance(outputs, tuple) else outputs
        return logits.argmax(dim=1)

    def confusion(self, outputs, targets) -> torch.Tensor:
        """10 x 10, rows = true class, columns = predicted class."""
        return confusion_matrix(self.predict(outputs), targets["labels"], NUM_CLASSES)

    def loss_names(self) -> tuple[str, ...]:
        """Keys of `loss`: the objective, and the unsmoothed NLL beside it when label smoothing is on."""
        return ("loss", "nll") if self.config.label_smoothing > 0 else ("loss",)

    def metric_names(self) -> tuple[str, ...]:
        """The scalar keys of `metrics` (per-class ones, with a '/', are detail for the final JSON)."""
        return CLASSIFICATION_METRICS

    def metrics(self, outputs, targets) -> dict[str, float]:
        """Accuracy, macro P/R/F1 and per-class P/R/F1/support for a whole split."""
        cm = self.confusion(outputs, targets)
        out = classification_metrics(cm)
        out.update(per_class_metrics(cm, self.class_names))
        return out


__all__ = ["FashionTask", "FashionTaskConfig", "PIXEL_MEAN", "PIXEL_STD", "mixed_cross_entropy", "per_class_metrics"]
