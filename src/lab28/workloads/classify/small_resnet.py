"""`small-resnet`: a ResNet-9-style classifier for 28x28 images, under 1M parameters, for the `small-resnet` preset.

Three stages at 28x28, 14x14 and 7x7. Each stage is one 3x3 conv -> BN -> ReLU that sets the stage's width (followed
by 2x2 max-pooling in the second and third stage, so the conv runs at the finer resolution before it is pooled), then
one residual block: x + (conv -> BN -> ReLU -> conv -> BN -> ReLU)(x). A global average pool, dropout and one linear
layer read out the 10 logits. With widths 32/64/192: 888,682 parameters.

Why this shape (the layout of the Myrtle/airbench ResNet-9 that trains CIFAR-10 fast, scaled to 28x28):
- The seed's three trunks end in a 1152 -> 256 MLP (300k of their ~440k parameters) and have no residual paths; the
  best Fashion-MNIST results (DenseNet-BC 768K at 95.4% test; wide ResNets, larger, at 96.3-96.7%) are all deep
  residual or dense convolution stacks with a global pool, where the parameters sit in convolutions.
- A weight at 7x7 costs 49 multiply-adds per image, one at 28x28 costs 784: the width goes where it is cheap (192 maps
  in the last stage hold 87% of the weights), the 28x28 stage stays narrow (32 maps). On the 2-core CPU one training
  step of 128 images runs at ~1/3 of simple-cnn's speed for about twice its depth of convolutions.
- Pooling after the conv rather than strided convs (as in ResNet-9): each downsampling step keeps the strongest
  response of a 2x2 window that the conv computed at the finer resolution, instead of skipping three of four positions.
- Widths 32/64/192 rather than 32/64/128 (482,154 parameters, 1.2-1.4x faster per step on the CPU): level after short CPU runs
  (docs/fashion-mnist.md); the larger one is the bet for the 100-epoch run, where capacity rather than early speed
  decides.

Returns raw logits (N x 10); the task owns the softmax and the loss.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lab28.models.registry import register_model
from lab28.workloads.classify.models import NUM_CLASSES, ConvBlock

WIDTHS = (32, 64, 192)  # maps in the 28x28, 14x14 and 7x7 stages


class ResidualBlock(nn.Module):
    """x + two conv blocks at constant width: the identity path lets the stack train deep without a warm start."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(ConvBlock(channels, channels), ConvBlock(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class SmallResNet(nn.Module):
    """Stages of (conv block, max-pool except in the first stage, residual block), global average pool, linear."""

    def __init__(self, widths: tuple[int, int, int] = WIDTHS, dropout: float = 0.2, num_classes: int = NUM_CLASSES):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        stages: list[nn.Module] = []
        channels = 1
        for index, width in enumerate(widths):
            pool = [nn.MaxPool2d(2)] if index > 0 else []  # 28 -> 28 -> 14 -> 7
            stages.append(nn.Sequential(ConvBlock(channels, width), *pool, ResidualBlock(width)))
            channels = width
        self.features = nn.Sequential(*stages)
        self.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                        nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register_model("small-resnet", workload="classify")
def small_resnet(dropout: float = 0.2, num_classes: int = NUM_CLASSES) -> SmallResNet:
    return SmallResNet(WIDTHS, dropout=dropout, num_classes=num_classes)
