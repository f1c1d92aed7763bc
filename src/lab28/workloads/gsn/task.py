"""The GSN multitask task: loss, settings, decoding and metrics. The trainer knows nothing of shapes.

Settings:
- `cls`: NLL on the 135 classes only;
- `reg`: SmoothL1 on the six counts only; classes are read off the predicted counts by decoding them to the
  nearest valid configuration (two types, ten shapes), so all three settings report comparable accuracy;
- `joint`: NLL + lambda * SmoothL1.
In `cls` the count metrics come from the decoded class (its counts), for the same reason.

Count readout (`count_readout`): `setting` reads the counts as above; `posterior` reads them, wherever a class
head is trained (cls, joint), as the counts expected under its probabilities, sum_k p(k) counts(k). That expectation
is the estimate with the least squared error when the probabilities are calibrated (measured against the count head:
docs/gsn.md, "Reading the counts"); `reg` has no class head and keeps its count head.

Class readout (`class_readout_weight`, w): in `joint` (with lambda > 0), the one setting that trains both heads, w > 0
reads the class from both: argmax over the 135 classes of log p(k) - w * ||count head - counts(k)||^2, so the count
head can overrule a close call of the class head. The two heads share a backbone, so the count head is not
independent evidence and w is measured rather than derived: top-1 is about flat over w = 0.1-1 and far lower with
the count head alone (docs/gsn.md, "The protocol track: schedule, averaging and readout"). `cls` and `reg` train one
head and ignore it, as `reg` ignores the posterior count readout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab28.workloads.gsn.augment import GSNAugment, GSNAugmentConfig
from lab28.workloads.gsn.labels import (
    NUM_CLASSES, NUM_PAIRS, SHAPES, SPLITS_PER_PAIR, all_class_counts, class_to_pair, encode_counts,
)
from lab28.metrics import (
    CLASSIFICATION_METRICS, classification_metrics, confusion_matrix, per_class_scores, regression_metric_names,
    regression_metrics,
)

SETTINGS = ("cls", "reg", "joint")
COUNT_READOUTS = ("setting", "posterior")
# Pixel statistics of GSN images scaled to [0, 1] (fill ratio ~0.30): centring the input speeds up training.
PIXEL_MEAN, PIXEL_STD = 0.30, 0.46


@dataclass
class GSNTaskConfig:
    setting: str = "joint"  # cls | reg | joint
    lam: float = 1.0  # weight of the count loss in the joint setting
    count_readout: str = "setting"  # setting | posterior: where predicted counts come from (module docstring)
    class_readout_weight: float = 0.0  # w > 0: joint reads the class from both heads (module docstring)

    def validate(self) -> None:
        if self.setting not in SETTINGS:
            raise ValueError(f"setting must be one of {SETTINGS}, got {self.setting!r}")
        if self.count_readout not in COUNT_READOUTS:
            raise ValueError(f"count_readout must be one of {COUNT_READOUTS}, got {self.count_readout!r}")
        if self.lam < 0:
            raise ValueError(f"lambda must be >= 0, got {self.lam}")
        if not (math.isfinite(self.class_readout_weight) and self.class_readout_weight >= 0):
            raise ValueError(f"class_readout_weight must be a finite number >= 0, got {self.class_readout_weight}")

    def reads_class_from_both_heads(self) -> bool:
        """Whether the class readout weight applies: joint with both heads trained (lam > 0) and w > 0."""
        return self.setting == "joint" and self.lam > 0 and self.class_readout_weight > 0


def nearest_class(counts: torch.Tensor) -> torch.Tensor:
    """Class of the valid configuration closest (Euclidean) to each row of predicted counts."""
    table = all_class_counts().to(counts.device, torch.float32)  # 135 x 6
    return torch.cdist(counts.float(), table).argmin(dim=1)


def posterior_counts(log_probs: torch.Tensor) -> torch.Tensor:
    """Counts expected under the class probabilities: sum over the 135 classes of p(class) * its six counts."""
    return log_probs.float().exp() @ all_class_counts().to(log_probs.device, torch.float32)


class GSNTask:
    """Owns how a batch becomes model input, the loss, the decoding of outputs and the metrics."""

    name = "gsn"
    default_monitor = ("val_accuracy", "max")

    def __init__(self, config: GSNTaskConfig, augment: GSNAugmentConfig | None = None):
        config.validate()
        self.config = config
        self.augment = GSNAugment(augment) if augment is not None and augment.any_enabled() else None

    # -- data -------------------------------------------------------------------------------------------
    def prepare_batch(self, images: torch.Tensor, counts: torch.Tensor, train: bool, generator=None):
        """uint8 images + counts -> normalised float input and targets (augmented when training)."""
        x = images.float().div_(255.0)
        if train and self.augment is not None:
            x, counts = self.augment(x, counts, generator)
        x = (x - PIXEL_MEAN) / PIXEL_STD
        # The class is always recomputed from the (possibly permuted) counts: never stale.
        return x, {"counts": counts, "classes": encode_counts(counts)}

    # -- loss -------------------------------------------------------------------------------------------
    def loss(self, outputs, targets) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        log_probs, counts_pred = outputs
        setting = self.config.setting
        parts: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=log_probs.device)
        if setting in ("cls", "joint"):
            parts["cls_loss"] = F.nll_loss(log_probs.float(), targets["classes"])
            total = total + parts["cls_loss"]
        if setting in ("reg", "joint"):
            parts["reg_loss"] = F.smooth_l1_loss(counts_pred.float(), targets["counts"].float())
            total = total + (self.config.lam if setting == "joint" else 1.0) * parts["reg_loss"]
        return total, parts

    # -- decoding ---------------------------------------------------------------------------------------
    def counts_source(self) -> str:
        """Where `predict` takes the counts from: "count_head", "class_head" (the predicted class's own counts) or
        "class_posterior" (their expectation under the class probabilities)."""
        setting = self.config.setting
        if setting == "reg":
            return "count_head"
        if self.config.count_readout == "posterior":
            return "class_posterior"
        return "class_head" if setting == "cls" else "count_head"

    def class_scores(self, outputs) -> torch.Tensor:
        """N x 135 scores whose argmax is the predicted class in `cls` and `joint`: log p(k), less the weighted squared
        distance of the count head from each class's counts where both heads are read (module docstring)."""
        log_probs, counts_pred = outputs
        scores = log_probs.float()
        if self.config.reads_class_from_both_heads():
            table = all_class_counts().to(counts_pred.device, torch.float32)
            scores = scores - self.config.class_readout_weight * torch.cdist(counts_pred.float(), table).square()
        return scores

    def predict(self, outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted classes, predicted counts) as the setting and the two readouts define them."""
        log_probs, counts_pred = outputs
        if self.config.setting == "reg":
            return nearest_class(counts_pred), counts_pred.float()
        classes = self.class_scores(outputs).argmax(dim=1)
        source = self.counts_source()
        if source == "class_posterior":
            return classes, posterior_counts(log_probs)
        if source == "class_head":
            return classes, all_class_counts().to(classes.device)[classes].float()
        return classes, counts_pred.float()

    # -- metrics ----------------------------------------------------------------------------------------
    def loss_names(self) -> tuple[str, ...]:
        """Keys of `loss`: the total and its parts in this setting."""
        parts = {"cls": ("cls_loss",), "reg": ("reg_loss",), "joint": ("cls_loss", "reg_loss")}
        return ("loss", *parts[self.config.setting])

    def metric_names(self) -> tuple[str, ...]:
        """The scalar keys of `metrics` (per-pair ones, with a '/', are detail for the final JSON)."""
        return (*CLASSIFICATION_METRICS, "pair_accuracy", *regression_metric_names(SHAPES))

    def metrics(self, outputs, targets) -> dict[str, float]:
        """All validation metrics for the concatenated outputs of a whole split."""
        pred_classes, pred_counts = self.predict(outputs)
        true_classes = targets["classes"]
        cm = confusion_matrix(pred_classes, true_classes, NUM_CLASSES)
        out = classification_metrics(cm)
        out.update(pair_metrics(cm))
        out.update(regression_metrics(pred_counts.cpu(), targets["counts"].cpu(), SHAPES))
        return out

    def confusion(self, outputs, targets) -> torch.Tensor:
        return confusion_matrix(self.predict(outputs)[0], targets["classes"], NUM_CLASSES)


def pair_confusion(cm: torch.Tensor) -> torch.Tensor:
    """15 x 15 confusion of unordered shape pairs, summed from the 135 x 135 class confusion."""
    pair_of = class_to_pair(torch.arange(NUM_CLASSES))
    onehot = F.one_hot(pair_of, NUM_PAIRS).to(cm.dtype)  # 135 x 15
    return onehot.T @ cm @ onehot


def pair_metrics(cm: torch.Tensor) -> dict[str, float]:
    """Pair accuracy (right two shape types, whatever the split) and per-pair accuracies.

    `pair_accuracy`: fraction of images whose unordered pair of types is right.
    `pair_exact_accuracy/<pair>`: top-1 class accuracy within each true pair.
    `pair_type_accuracy/<pair>`: fraction of that pair's images with the right pair.
    """
    from lab28.workloads.gsn.labels import pair_name

    pcm = pair_confusion(cm).double()
    total = pcm.sum().item()
    out = {"pair_accuracy": pcm.diagonal().sum().item() / total if total else 0.0}
    support = pcm.sum(dim=1)
    cmd = cm.double()
    for p in range(NUM_PAIRS):
        if support[p] == 0:
            continue
        block = slice(p * SPLITS_PER_PAIR, (p + 1) * SPLITS_PER_PAIR)
        exact = cmd[block, block].diagonal().sum().item()
        out[f"pair_type_accuracy/{pair_name(p)}"] = pcm[p, p].item() / support[p].item()
        out[f"pair_exact_accuracy/{pair_name(p)}"] = exact / support[p].item()
    return out


__all__ = ["COUNT_READOUTS", "GSNTask", "GSNTaskConfig", "SETTINGS", "nearest_class", "pair_confusion", "pair_metrics",
           "per_class_scores", "posterior_counts"]
