"""`compact-cnn`: a small all-convolutional counting network with the lab model's heads (not the lab protocol).

Four 3x3 convolutions with BatchNorm (1->16->32->32->64; the second and fourth halve the resolution, 28->14->7),
then the mean over positions: 64 features per image, read by the same heads as the lab model (factored
classification head, count head). About 46,000 weights against the lab model's 12.9 million.

Why it exists: counting shapes is a sum over positions. The lab backbone's Linear(50176->256) has to learn that
from the data, one weight per position, and needs tens of thousands of images to do so; pooling over positions
builds it in, so this network learns to count from a few thousand images in a few CPU-minutes. It is what the
quick preset (the demo) trains; the lab protocol keeps the fixed backbone.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lab28.models.registry import register_model
from lab28.workloads.gsn.models import ShapeClassifier, classifier_on

WIDTHS = (16, 32, 32, 64)
STRIDES = (1, 2, 1, 2)


class CompactBackbone(nn.Module):
    """Conv-BN-ReLU stack and a global mean pool: `WIDTHS[-1]` features per image, all after a ReLU."""

    features = WIDTHS[-1]

    def __init__(self):
        super().__init__()
        layers: list[nn.Module] = []
        channels = 1
        for width, stride in zip(WIDTHS, STRIDES):
            layers += [nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(width),
                       nn.ReLU()]
            channels = width
        self.convs = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.convs(x).mean(dim=(2, 3))


@register_model("compact-cnn", workload="gsn")
def compact_cnn(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    return classifier_on(CompactBackbone(), "compact-cnn", head, dropout, fc_init, batchnorm, hidden)
