"""`counting-resnet`: lab28's free GSN architecture, a small residual network that counts by pooling over positions.

    conv 3x3 1->32 (28x28) | conv 3x3 32->64 stride 2 (14x14) | residual block 64 |
    conv 3x3 64->128 stride 2 (7x7) | residual block 128 | mean over the 49 positions: 128 features

with BatchNorm and ReLU after every convolution, read by the lab model's own heads (factored classification head,
count head): about 490,000 weights against the lab model's 12.9 million, and about 36M multiply-adds per image.

Why this shape: a count is a sum over positions, so the network ends in a global pool rather than the lab
backbone's Linear over 50,176 positions (which must learn the sum from data, one weight per position). A shape is
at most 11 pixels across and overlapping shapes XOR into each other, so a shape's identity needs a receptive field
of about twice that: the two strided convolutions and the two residual blocks give 33 pixels at the 7x7 grid, while
the residual connections keep the fine detail of the early layers trainable. Trained on fresh synthetic images
(`--track synthetic`, lab28.workloads.gsn.synthetic_track) it never sees an image twice, so it needs no dropout.
It is the model of the `free` preset; the lab protocol keeps the fixed backbone.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab28.models.registry import register_model
from lab28.workloads.gsn.models import ShapeClassifier, classifier_on


def _conv_bn(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(channels_out))


class ResidualBlock(nn.Module):
    """Two 3x3 conv+BN layers with an identity shortcut (the basic block of a ResNet)."""

    def __init__(self, channels: int):
        super().__init__()
        self.first, self.second = _conv_bn(channels, channels), _conv_bn(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.second(F.relu(self.first(x))))


class CountingResNetBackbone(nn.Module):
    """Images -> `features` values per image, all after a ReLU (so the dead-feature analysis applies)."""

    features = 128

    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(
            _conv_bn(1, 32), nn.ReLU(),
            _conv_bn(32, 64, stride=2), nn.ReLU(), ResidualBlock(64),
            _conv_bn(64, self.features, stride=2), nn.ReLU(), ResidualBlock(self.features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).mean(dim=(2, 3))


@register_model("counting-resnet", workload="gsn")
def counting_resnet(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                    batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    return classifier_on(CountingResNetBackbone(), "counting-resnet", head, dropout, fc_init, batchnorm, hidden)
