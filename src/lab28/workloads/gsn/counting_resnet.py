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
Its quarter-turn versions below are lab28's free models (the `free` preset trains the last); the lab protocol
keeps the fixed backbone.

`counting-resnet-p4` is the same design built from quarter-turn convolutions (the group p4 of the four rotations):
each filter is learnt once and applied in four orientations, so turning an image by 90 degrees turns every feature
map and moves it to the next orientation. The four triangle kinds are quarter turns of one another, so what the
network learns about one serves all four. With 8/16/32 filters per orientation it has the same 32/64/128 feature
maps and multiply-adds as `counting-resnet`, and a quarter of its convolution weights.

`counting-resnet-p4-fullres` changes three things to counting-resnet-p4, each of which learnt more per image
in short probes (docs/gsn.md, "A larger free model"): it halves its maps by a 2x2 average before a stride-1
convolution instead of convolving at stride 2, which makes it exactly equivariant on 28x28 images; it adds a
residual block at 28x28, where the fine detail of overlapping shapes is; and it has 12/24/48 filters per
orientation. About 309,000 weights and 114M multiply-adds per image.

`counting-resnet-p4-symmetric` is counting-resnet-p4-fullres whose heads read the pooled features in all four
orientations (TurnSymmetricClassifier), so that the answer, not only the features, turns with the image.

`counting-resnet-p4-local` (the `free` preset's model before the gate below) is counting-resnet-p4-symmetric with a
pointwise group convolution and ReLU before the pool (GroupCountingBackbone's `pointwise`): about 381,000 weights
with a hidden layer of 256.

`counting-resnet-p4-gated` (the `free` preset's model, there with a hidden layer of 256 before the heads) is
counting-resnet-p4-local whose 7x7 maps are scaled, before the pointwise layer, by gates computed from the image's
mean features (GroupCountingBackbone's `context_gate`, squeeze-and-excitation in quarter-turn form): about 385,000
weights with that hidden layer, and the same multiply-adds within 0.1%.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from lab28.models.registry import register_model
from lab28.workloads.gsn.models import ShapeClassifier, classifier_on, refuse_fc_init
from lab28.workloads.gsn.orientation_norm import shared_batch_norm
from lab28.workloads.gsn.tta import apply_view, dihedral_views, label_maps


def _conv_bn(channels_in: int, channels_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, stride=stride, padding=1, bias=False),
                         nn.BatchNorm2d(channels_out))


class ResidualBlock(nn.Module):
    """Two 3x3 conv+BN layers with an identity shortcut (the basic block of a ResNet); `conv(channels_in,
    channels_out)` builds each layer (GroupConv for counting-resnet-p4)."""

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


# A symmetry of the square grid is (mirror m, turns r): mirror the columns if m, then turn by r quarter turns.
# The group p4 holds the four turns; d4 (p4m) adds each turn after a mirror. Index of (m, r): 4m + r.
GROUPS = {"p4": [(0, r) for r in range(4)], "d4": [(m, r) for m in range(2) for r in range(4)]}


def _compose_symmetries(g: tuple[int, int], h: tuple[int, int]) -> tuple[int, int]:
    """g after h: a mirror reverses the direction of the turns that follow it."""
    return g[0] ^ h[0], (g[1] + (-1) ** g[0] * h[1]) % 4


def _inverse(g: tuple[int, int]) -> tuple[int, int]:
    return g if g[0] else (0, -g[1] % 4)  # a mirrored turn is its own inverse


def transform(x: torch.Tensor, g: tuple[int, int]) -> torch.Tensor:
    """Apply the symmetry g = (mirror, quarter turns) to the last two (spatial) axes of x: TTA's convention, a
    left-right mirror first, then the turns, so the two stay one definition."""
    return apply_view(x, g[1], bool(g[0]))


class GroupConv(nn.Module):
    """Convolution (3x3 unless `kernel_size` says otherwise) + BatchNorm that commutes with the symmetries of
    `group` (p4: quarter turns; d4: quarter turns and mirrors).

    Its output has an orientation axis of |group| beside the channels (channel c, orientation g at index
    |group| * c + g): every filter is stored once and applied transformed by each g. For an input that already has
    the orientation axis (not `lifting`), the filter applied as g reads input orientation h where the stored
    filter reads g^-1 h. BatchNorm shares its statistics over the orientations, so the layer stays equivariant in
    training mode too (on the CPU computed by orientation_norm.shared_batch_norm, in the map's own layout).
    Equivariance is exact at stride 1. A stride of 2 on an even-sized map samples a grid that a turn or mirror
    moves by one pixel, so there it is approximate; `pool_first` halves the map with a 2x2 average instead and then
    convolves at stride 1, which is exact (the 2x2 blocks of an even-sized map go to blocks) at the same cost."""

    def __init__(self, channels_in: int, channels_out: int, stride: int = 1, lifting: bool = False,
                 group: str = "p4", pool_first: bool = False, kernel_size: int = 3):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd (a centred filter turns into itself), got {kernel_size}")
        elements = GROUPS[group]
        self.channels_out, self.stride, self.elements, self.pool_first = channels_out, stride, elements, pool_first
        self.kernel_size = kernel_size
        self.orientations_in = 1 if lifting else len(elements)
        # Row g: the input orientation each of the stored filter's orientations reads when applied as g.
        # Python ints, not an index tensor: the weight is then gathered by plain selections, whose backward
        # torch.compile handles; the backward of indexing by a tensor followed by torch.stack corrupts the heap
        # in torch 2.13's CPU inductor code on more than one thread.
        self.input_orientation = tuple((0,) if lifting else tuple(elements.index(_compose_symmetries(_inverse(g), h))
                                                                  for h in elements) for g in elements)
        # stored 4-D, as a convolution weight is (the engine converts models to channels_last)
        self.weight = nn.Parameter(torch.empty(channels_out, channels_in * self.orientations_in, kernel_size,
                                               kernel_size))
        nn.init.kaiming_normal_(self.weight, nonlinearity="relu")
        self.norm = nn.BatchNorm3d(channels_out)

    def transformed_weight(self) -> torch.Tensor:
        """The (|group| * channels_out, channels_in * orientations_in, k, k) weight of all orientations."""
        k = self.kernel_size
        base = self.weight.view(self.channels_out, -1, self.orientations_in, k, k)
        each = [transform(torch.stack([base[:, :, h] for h in self.input_orientation[i]], dim=2), g)
                for i, g in enumerate(self.elements)]
        return torch.stack(each, dim=1).reshape(self.channels_out * len(self.elements), -1, k, k)

    def convolve(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """x convolved with `weight` (all orientations) at this layer's resolution step, before the norm."""
        if self.pool_first and self.stride == 2:
            x, stride = F.avg_pool2d(x, 2), 1
        else:
            stride = self.stride
        return F.conv2d(x, weight, stride=stride, padding=self.kernel_size // 2)

    def normalise(self, y: torch.Tensor) -> torch.Tensor:
        """The convolution's output normalised with statistics shared over each filter's orientations."""
        if y.device.type == "cpu":
            return shared_batch_norm(y, self.norm, len(self.elements))
        return self.normalise_on_view(y)  # the same arithmetic, and on CUDA the way timed

    def normalise_on_view(self, y: torch.Tensor) -> torch.Tensor:
        """normalise as BatchNorm3d on the (n, filters, orientations, h, w) view of the map, which copies a
        channels_last map to NCHW."""
        n, _, h, w = y.shape
        return self.norm(y.reshape(n, self.channels_out, len(self.elements), h, w)).reshape(n, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.normalise(self.convolve(x, self.transformed_weight()))


class ContextGate(nn.Module):
    """Squeeze-and-excitation in quarter-turn form: each (filter, orientation) map is scaled by a gate in (0, 1)
    computed from the image's mean features by two pointwise group convolutions (`reduced` filters per orientation
    between them). The mean of an equivariant map turns with the image, and so do the gates, so a backbone stays
    exactly as equivariant as without it."""

    def __init__(self, channels: int, reduced: int, group: str = "p4"):
        super().__init__()
        self.squeeze = GroupConv(channels, reduced, group=group, kernel_size=1)
        self.excite = GroupConv(reduced, channels, group=group, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return x * torch.sigmoid(self.excite(F.relu(self.squeeze(pooled))))


class GroupCountingBackbone(nn.Module):
    """CountingResNetBackbone's layers as group convolutions: `filters` per orientation at 28x28, 14x14 and 7x7,
    each resolution reached by one convolution and followed by `blocks` residual blocks (p4 with 8/16/32 filters
    and blocks 0/1/1 is counting-resnet's layout, with its 32/64/128 feature maps).

    `pointwise` > 0 adds a 1x1 group convolution of that many filters per orientation and a ReLU at 7x7, before the
    mean over positions: counting is a sum of local evidence, and without it what a position says about "one more
    circle here" must be a linear function of its features, since the heads' non-linearity comes after the sum. A
    1x1 filter turns into itself, so the backbone stays exactly as equivariant as without it.

    `lift_kernel` is the size of the first convolution's filters (odd, so that a centred filter turns into itself).
    GSN shapes are fixed stamps 7-11 pixels across, so a 9x9 first filter could match a whole shape where a 3x3 one
    sees a corner; it learnt less per image than 3x3 in a probe (docs/gsn.md, "A whole shape in the first filter"),
    and every registered model keeps 3.

    `context_gate` > 0 scales the 7x7 maps, before the pointwise layer, by gates computed from the image's mean
    features through that many filters per orientation (ContextGate): every GSN image holds exactly two kinds, so
    what a fragment of overlapping shapes adds to a count may depend on which kinds the whole image shows."""

    def __init__(self, filters: tuple[int, int, int] = (8, 16, 32), blocks: tuple[int, int, int] = (0, 1, 1),
                 group: str = "p4", pool_first: bool = False, pointwise: int = 0, lift_kernel: int = 3,
                 context_gate: int = 0):
        super().__init__()
        self.features = (pointwise or filters[-1]) * len(GROUPS[group])

        def conv(channels_in, channels_out, **options):
            return GroupConv(channels_in, channels_out, group=group, pool_first=pool_first, **options)

        layers, channels_in = [], 1
        for stage, (width, count) in enumerate(zip(filters, blocks)):
            first = stage == 0
            layers += [conv(channels_in, width, lifting=first, stride=1 if first else 2,
                            kernel_size=lift_kernel if first else 3), nn.ReLU()]
            layers += [ResidualBlock(width, conv=conv) for _ in range(count)]
            channels_in = width
        if context_gate:
            layers.append(ContextGate(channels_in, context_gate, group=group))
        if pointwise:
            layers += [conv(channels_in, pointwise, kernel_size=1), nn.ReLU()]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).mean(dim=(2, 3))


@register_model("counting-resnet-p4", workload="gsn")
def counting_resnet_p4(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                       batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    return classifier_on(GroupCountingBackbone(), "counting-resnet-p4", head, dropout, fc_init, batchnorm,
                         hidden)


@register_model("counting-resnet-p4-fullres", workload="gsn")
def counting_resnet_p4_fullres(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                               batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    return classifier_on(_fullres_backbone(), "counting-resnet-p4-fullres", head, dropout, fc_init, batchnorm, hidden)


def _fullres_backbone(pointwise: int = 0, context_gate: int = 0) -> GroupCountingBackbone:
    """counting-resnet-p4-fullres's backbone (also counting-resnet-p4-symmetric's; with `pointwise` filters before
    the pool, counting-resnet-p4-local's, and with a `context_gate` as well, counting-resnet-p4-gated's)."""
    return GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True, pointwise=pointwise,
                                 context_gate=context_gate)


class TurnSymmetricClassifier(ShapeClassifier):
    """The lab model's heads on a p4 backbone, read in all four orientations, so that the whole network, not only
    its backbone, turns with the image.

    An exactly equivariant p4 backbone (pool_first on 28x28 images) gives a quarter-turned image the same pooled
    features with the orientation axis rolled by one. The heads are ordinary linear layers, so an image and its
    turn need not get the same answer. Here each image's features are read by the heads as they are and rolled by
    one, two and three orientations (the features of its three turns), each view's class scores and counts are
    mapped back to the image's own orientation (the count permutation of that turn) and the four are averaged
    before the softmax. The answer for a turned image is then exactly the permuted answer, every image trains the
    heads in four orientations, and the cost is three more passes through the heads, under 1% of the
    model's multiply-adds. Mirrors are not built in (the backbone is p4); augmentation still flips."""

    def __init__(self, backbone: GroupCountingBackbone, **options):
        super().__init__(backbone=backbone, features=backbone.features, **options)
        turns = [view for view in dihedral_views() if not view[1]]  # k = 0..3 quarter turns, no mirror
        class_maps, inverse_perms = label_maps(turns)
        self.register_buffer("class_maps", class_maps, persistent=False)
        self.register_buffer("inverse_perms", inverse_perms, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.backbone(x)
        n, turns = len(features), len(self.class_maps)
        # a turn by k quarter turns (torch.rot90's sense) rolls the orientation axis (index 4c + g) by k
        oriented = features.view(n, -1, turns)
        views = torch.cat([oriented.roll(k, dims=2).reshape(n, -1) for k in range(turns)])
        scores, counts = self.head_outputs(views)
        scores, counts = scores.view(turns, n, -1), counts.view(turns, n, -1)
        scores = torch.stack([scores[k][:, self.class_maps[k]] for k in range(turns)]).mean(0)
        counts = torch.stack([counts[k][:, self.inverse_perms[k]] for k in range(turns)]).mean(0)
        return F.log_softmax(scores, dim=1), counts


@register_model("counting-resnet-p4-symmetric", workload="gsn")
def counting_resnet_p4_symmetric(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                                 batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    """counting-resnet-p4-fullres with its heads read in all four orientations (TurnSymmetricClassifier)."""
    refuse_fc_init(fc_init, "counting-resnet-p4-symmetric")
    return TurnSymmetricClassifier(_fullres_backbone(), head=head, dropout=dropout, batchnorm=batchnorm, hidden=hidden)


@register_model("counting-resnet-p4-local", workload="gsn")
def counting_resnet_p4_local(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                             batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    """counting-resnet-p4-symmetric with a pointwise group convolution of 48 filters per orientation and a ReLU
    before the pool (GroupCountingBackbone's `pointwise`)."""
    refuse_fc_init(fc_init, "counting-resnet-p4-local")
    return TurnSymmetricClassifier(_fullres_backbone(pointwise=48), head=head, dropout=dropout, batchnorm=batchnorm,
                                   hidden=hidden)


@register_model("counting-resnet-p4-gated", workload="gsn")
def counting_resnet_p4_gated(head: str = "factored", dropout: float = 0.0, fc_init: str = "default",
                             batchnorm: bool = False, hidden: int = 0) -> ShapeClassifier:
    """counting-resnet-p4-local with its 7x7 maps gated by the image's mean features before the pointwise layer
    (GroupCountingBackbone's `context_gate`, 12 filters per orientation between the two gate layers)."""
    refuse_fc_init(fc_init, "counting-resnet-p4-gated")
    return TurnSymmetricClassifier(_fullres_backbone(pointwise=48, context_gate=12), head=head, dropout=dropout,
                                   batchnorm=batchnorm, hidden=hidden)
