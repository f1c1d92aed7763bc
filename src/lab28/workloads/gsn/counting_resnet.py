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
Its quarter-turn version below is the model of the `free` preset; the lab protocol keeps the fixed backbone.

`counting-resnet-p4` is the same design built from quarter-turn convolutions (the group p4 of the four rotations):
each filter is learnt once and applied in four orientations, so turning an image by 90 degrees turns every feature
map and moves it to the next orientation. The four triangle kinds are quarter turns of one another, so what the
network learns about one serves all four. With 8/16/32 filters per orientation it has the same 32/64/128 feature
maps and multiply-adds as `counting-resnet`, and a quarter of its convolution weights.
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
    """Two 3x3 conv+BN layers with an identity shortcut (the basic block of a ResNet); `conv(channels_in,
    channels_out)` builds each layer (QuarterTurnConv for counting-resnet-p4)."""

    def __init__(self, channels: int, conv=_conv_bn):
        super().__init__()
        self.first, self.second = conv(channels, channels), conv(channels, channels)

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


class QuarterTurnConv(nn.Module):
    """3x3 convolution + BatchNorm that commutes with quarter turns of its input.

    Its output has an orientation axis of 4 beside the channels (channel c, orientation r at index 4c + r): every
    filter is stored once and applied turned by r = 0..3. For an input that already has the orientation axis (not
    `lifting`), turning a filter also rolls its orientation axis by r. BatchNorm shares its statistics over the four
    orientations, so the layer stays equivariant in training mode too. Equivariance is exact at stride 1; a stride
    of 2 on an even-sized map samples a grid that a quarter turn moves by one pixel, so there it is approximate."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1, lifting: bool = False):
        super().__init__()
        self.channels_out, self.stride = channels_out, stride
        self.orientations_in = 1 if lifting else 4
        # stored 4-D, as a convolution weight is (the engine converts models to channels_last)
        self.weight = nn.Parameter(torch.empty(channels_out, channels_in * self.orientations_in, 3, 3))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.norm = nn.BatchNorm3d(channels_out)

    def turned_weight(self) -> torch.Tensor:
        """The (4 * channels_out, channels_in * orientations_in, 3, 3) weight of the four orientations."""
        base = self.weight.view(self.channels_out, -1, self.orientations_in, 3, 3)
        turned = []
        for r in range(4):
            w = torch.rot90(base, r, dims=(3, 4))
            turned.append(torch.roll(w, shifts=r, dims=2) if self.orientations_in == 4 else w)
        return torch.stack(turned, dim=1).reshape(self.channels_out * 4, -1, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(x, self.turned_weight(), stride=self.stride, padding=1)
        n, _, h, w = y.shape
        return self.norm(y.reshape(n, self.channels_out, 4, h, w)).reshape(n, self.channels_out * 4, h, w)


class QuarterTurnCountingBackbone(nn.Module):
    """CountingResNetBackbone's layers as quarter-turn convolutions, `filters` per orientation at 28x28, 14x14 and
    7x7 (8/16/32 give counting-resnet's 32/64/128 feature maps)."""

    def __init__(self, filters: tuple[int, int, int] = (8, 16, 32)):
        super().__init__()
        full, half, quarter = filters
        self.features = quarter * 4
        self.layers = nn.Sequential(
            QuarterTurnConv(1, full, lifting=True), nn.ReLU(),
            QuarterTurnConv(full, half, stride=2), nn.ReLU(), ResidualBlock(half, conv=QuarterTurnConv),
            QuarterTurnConv(half, quarter, stride=2), nn.ReLU(), ResidualBlock(quarter, conv=QuarterTurnConv))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).mean(dim=(2, 3))


@register_model("counting-resnet-p4", workload="gsn")
def counting_resnet_p4(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                       batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    return classifier_on(QuarterTurnCountingBackbone(), "counting-resnet-p4", head, dropout, fc_init, batchnorm,
                         hidden)
