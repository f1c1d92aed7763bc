"""The GSN lab model: the protocol's fixed backbone and two free heads.

Backbone (the lab protocol's; it must not change): four 3x3 convolutions (1->8->16->32->64, stride 1, padding 1, ReLU)
at full 28x28 resolution, flatten, Linear(64*28*28 -> 256), ReLU. The model returns (log_probs, counts).

Heads:
- `flat`: Linear(256 -> 135) + log_softmax, the textbook head.
- `factored` (default): the head scores each shape type's count separately (6 x 10 logits for counts 0..9)
  and a class's score is the sum of its six count scores, normalised over the 135 valid configurations.
  Why: a flat 135-way softmax sees about 60 training images per class; the factored head shares what it learns
  about "how many circles" across every class containing circles, and its output is still a proper
  log-probability over exactly the 135 classes. A small free 135-way term keeps pair-specific corrections.
- The count head is Linear(256 -> 6) on the same features (SmoothL1 target: the raw counts).
- `hidden` (option, 0 = none): a hidden layer of that many units (Linear, ReLU, dropout) between the features and
  both heads, so the heads can combine the few live features non-linearly.
- `batchnorm` (option): BatchNorm1d on the 256 features before dropout and both heads. The features come out of
  a ReLU at very different scales (many near zero, a few large); normalising them gives both heads inputs of one
  scale. It is part of the heads, so the backbone stays the protocol's.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab28.workloads.gsn.labels import NUM_CLASSES, NUM_SHAPES, TOTAL_SHAPES, all_class_counts
from lab28.models.registry import register_model

FEATURES = 256
# Start weights of the backbone's big Linear (the architecture is the same for all): nn.Linear's default, a
# global sum-pool (`pooled`), centred on the training data (`centered`, needs init_from_data before training), or
# both: the sum-pool, then centred (`pooled-centered`).
FC_INITS = ("default", "pooled", "centered", "pooled-centered")
HEADS = ("factored", "flat")


class GSNBackbone(nn.Module):
    """The fixed lab backbone, layer for layer. `fc_init` only changes the starting weights (see below)."""

    BIG_LINEAR = "fc.1"  # the Linear(50,176 -> 256), by its name in the state dict

    def __init__(self, fc_init: str = "default"):
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(1, 8, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=1, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=1, padding=1), nn.ReLU(),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(64 * 28 * 28, FEATURES), nn.ReLU())
        if fc_init not in FC_INITS:
            raise ValueError(f"unknown fc_init {fc_init!r}; choose one of {', '.join(FC_INITS)}")
        self.fc_init = fc_init
        if fc_init in ("pooled", "pooled-centered"):
            pooled_init_(self.fc[1], channels=64, positions=28 * 28)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.convs(x))

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """The data-dependent part of the start (`centered`): `x` is a batch of normalised training images.
        A no-op for the other starts, so callers need not know which one the config chose."""
        if self.fc_init.endswith("centered"):
            centered_init_(self.fc[1], self.convs(x).flatten(1))


@torch.no_grad()
def centered_init_(linear: nn.Linear, inputs: torch.Tensor, spread: float = 1.0) -> None:
    """Start the big Linear so that each unit's pre-activation is centred at 0 and varies from image to image.

    Why: the Linear's 50,176 inputs come out of a ReLU and share a large image-independent part (mostly the
    convolutions' response to the background, ~1,060 summed per image), so with default weights a unit's
    pre-activation is nearly the same for every image (std 0.009). Adam's first steps move all of a unit's
    weights the same way, shifting that value by ~0.64 per step for every image at once: units pushed down never
    fire again, and ~175 of the 256 died in every lab run. Projecting the mean input out of each weight vector
    leaves w.(x - mean), centred at the bias (0), and scaling gives it a standard deviation of `spread` over the
    batch, so a unit fires on about half the images and survives a first step the wrong way. A larger spread
    (4) was worse: the big pre-activations made most units die in the first epoch (docs/gsn.md).
    """
    inputs = inputs.float()
    mean = inputs.mean(0)
    w = linear.weight
    w -= torch.outer(w.float() @ mean / mean.dot(mean).clamp_min(1e-12), mean).to(w.dtype)
    w *= (spread / (inputs @ w.float().T).std(0).clamp_min(1e-12))[:, None].to(w.dtype)
    linear.bias.zero_()


@torch.no_grad()
def pooled_init_(linear: nn.Linear, channels: int, positions: int, noise: float = 0.3) -> None:
    """Start the big Linear as a global sum-pool: every unit weighs each channel the same at every position.

    Counting shapes is a sum over positions; with the default (independent random) weights the layer must learn
    that sharing from 8,000 images. Pooled start weights give it from step one, and training is free to move
    away. The architecture is untouched. Flatten order is (channel, row, col), so a weight vector is a channel
    weight repeated over the 784 positions; a little default-scale noise breaks the exact symmetry.
    """
    bound = 1.0 / math.sqrt(linear.in_features)  # nn.Linear's default scale
    per_channel = torch.randn(linear.out_features, channels, 1) / math.sqrt(channels)
    pooled = per_channel.expand(-1, -1, positions).reshape(linear.out_features, -1) * bound * math.sqrt(channels)
    linear.weight.copy_(pooled + noise * torch.empty_like(pooled).uniform_(-bound, bound))
    linear.bias.zero_()


class FactoredCountHead(nn.Module):
    """Class log-probabilities from per-shape count scores (see module docstring)."""

    def __init__(self, in_features: int = FEATURES, free_term: bool = True):
        super().__init__()
        self.count_scores = nn.Linear(in_features, NUM_SHAPES * (TOTAL_SHAPES))  # counts 0..9 per shape
        self.free = nn.Linear(in_features, NUM_CLASSES) if free_term else None
        if self.free is not None:
            nn.init.zeros_(self.free.weight)
            nn.init.zeros_(self.free.bias)
        # indicator[s * 10 + c, k] = 1 when class k has count c of shape s: class score = scores @ indicator.
        counts = all_class_counts()  # 135 x 6
        indicator = torch.zeros(NUM_SHAPES * TOTAL_SHAPES, NUM_CLASSES)
        for k in range(NUM_CLASSES):
            for s in range(NUM_SHAPES):
                indicator[s * TOTAL_SHAPES + int(counts[k, s]), k] = 1.0
        self.register_buffer("indicator", indicator, persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = self.count_scores(h) @ self.indicator.to(h.dtype)
        if self.free is not None:
            scores = scores + self.free(h)
        return scores


class ShapeClassifier(nn.Module):
    """A backbone + classification head (log-probabilities over 135 classes) + count head (6 values).

    The backbone is the lab's fixed one unless another is given: any module that maps a batch of images to a
    vector of `features` values per image (after a ReLU, so the dead-feature analysis applies), optionally with
    `init_from_data(x)`. The heads are the same for every backbone."""

    def __init__(self, head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                 batchnorm: bool = False, hidden: int = 0, backbone: nn.Module | None = None,
                 features: int = FEATURES):
        super().__init__()
        if hidden < 0:
            raise ValueError(f"hidden must be >= 0 (0: no hidden layer), got {hidden}")
        self.backbone = backbone if backbone is not None else GSNBackbone(fc_init)
        self.norm = nn.BatchNorm1d(features) if batchnorm else nn.Identity()
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        width = hidden or features
        self.hidden: nn.Module = nn.Identity()
        if hidden:
            self.hidden = nn.Sequential(nn.Linear(features, hidden), nn.ReLU(),
                                        nn.Dropout(dropout) if dropout > 0 else nn.Identity())
        if head == "flat":
            self.cls_head: nn.Module = nn.Linear(width, NUM_CLASSES)
        elif head == "factored":
            self.cls_head = FactoredCountHead(width)
        else:
            raise ValueError(f"unknown head {head!r}; choose 'flat' or 'factored'")
        self.count_head = nn.Linear(width, NUM_SHAPES)
        # Submodules trained at a multiple of the learning rate, by name (read by lab28.training.optim).
        self.lr_scales: dict[str, float] = {}

    def set_fc_lr_scale(self, fc_lr_scale: float) -> None:
        """Train the lab backbone's big Linear at `fc_lr_scale` x the learning rate; the rest keeps the rate.

        Why: the Linear's 50,176 inputs come out of a ReLU, so Adam's sign-like step moves a unit's pre-activation
        the same way for every image at once (see centered_init_); units pushed below zero never fire again, and
        most of the 256 die during training at the rate the rest of the model wants. A smaller rate for this
        layer alone keeps more of them alive (docs/gsn.md, "Dead features")."""
        self.lr_scales = {f"backbone.{GSNBackbone.BIG_LINEAR}": fc_lr_scale} if fc_lr_scale != 1.0 else {}

    def init_from_data(self, x: torch.Tensor) -> None:
        """Data-dependent start weights where the config asks for them (see GSNBackbone.init_from_data); a
        backbone without that method needs none (BatchNorm centres its layers)."""
        init = getattr(self.backbone, "init_from_data", None)
        if init is not None:
            init(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone features (after ReLU), used by the dead-neuron analysis."""
        return self.backbone(x)

    def head_outputs(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Class scores (before the softmax) and counts, in float32, for a batch of backbone features."""
        h = self.hidden(self.dropout(self.norm(features)))
        return self.cls_head(h).float(), self.count_head(h).float()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores, counts = self.head_outputs(self.backbone(x))
        return F.log_softmax(scores, dim=1), counts


@register_model("shape-classifier", workload="gsn")
def shape_classifier(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                     batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    return ShapeClassifier(head=head, dropout=dropout, fc_init=fc_init, batchnorm=batchnorm, hidden=hidden)


def classifier_on(backbone: nn.Module, model_name: str, head: str, dropout: float, fc_init: str, batchnorm: bool,
                  hidden: int) -> ShapeClassifier:
    """The lab model's heads on another registered backbone (one with a `features` attribute). fc_init sets the
    start of the lab backbone's big Linear, which another backbone does not have."""
    refuse_fc_init(fc_init, model_name)
    return ShapeClassifier(head=head, dropout=dropout, batchnorm=batchnorm, hidden=hidden, backbone=backbone,
                           features=backbone.features)


def refuse_fc_init(fc_init: str, model_name: str) -> None:
    """fc_init sets the start of the lab backbone's big Linear; a model built on another backbone has none."""
    if fc_init != "default":  # a config error, checked before a run starts (see GSNModelConfig.validate)
        raise ValueError(f"fc_init {fc_init!r} sets the start of the lab backbone's Linear; "
                         f"model {model_name!r} has none (use fc_init 'default')")
