"""Does counting-resnet learn more per image with more depth, more work at full resolution, width or symmetry?

    python experiments/counting_resnet_variants.py VARIANT --data DEV_DIR [--epochs 3] [--per-epoch 40000]
        [--lr 2e-3] [--threads 1] [--out runs/variants] [--name NAME] [--set KEY=VALUE ...]

VARIANT is one of:
- `deep7`: a second residual block at 7x7 (784k weights, ~51M multiply-adds per image);
- `fullres`: one more 3x3 convolution, 32->32, at 28x28 before the first stride (498k weights, ~44M);
- `p4-wide`: counting-resnet-p4 with 12/24/48 filters per orientation instead of 8/16/32 (about 2.25x its
  weights and multiply-adds);
- `p4-exact`: counting-resnet-p4 halving its maps by a 2x2 average before a stride-1 convolution, exactly
  equivariant on 28x28; `-wide` 12/24/48 filters; `-fullres` and `-fullres2` one and two residual blocks at 28x28;
  `p4-exact-wide-fullres` is the package's counting-resnet-p4-fullres; `p4-exact-wider-fullres` 16/24/48 filters;
- `d4`, `d4-exact`: the same with mirrors as well as quarter turns (4/8/16 filters per orientation, eight
  orientations: counting-resnet-p4's feature maps and multiply-adds);
- `p4-exact-wide-fullres-turn-heads`: counting-resnet-p4-fullres with its heads read in all four orientations (the
  package's counting-resnet-p4-symmetric); `p4-exact-wide-fullres-wide7-turn-heads` the same with 64 filters per
  orientation at 7x7 instead of 48 (530k weights with a hidden layer of 256, 0.87x its training speed);
  `-local48-` and `-local96-` add a pointwise (1x1) group convolution of 48 or 96 filters per orientation and a
  ReLU at 7x7 before the mean over positions (GroupCountingBackbone's `pointwise`; local48 is the package's
  counting-resnet-p4-local); `-local48-lift9-` is local48 with 9x9 filters in its first layer instead of 3x3, as
  large as a GSN shape (GroupCountingBackbone's `lift_kernel`); `-local48-context-` lets that pointwise layer read
  the image's mean features beside each position's (ContextPointwise), and `-local48-gate-` scales the 7x7 maps
  before it by gates computed from the mean features (GroupCountingBackbone's `context_gate`,
  squeeze-and-excitation): every image holds exactly two kinds, so what a fragment adds to a count may depend on
  which kinds the whole image shows.
`--set` passes any other config value to the run (`--set model.hidden=256`, `--set task.lam=1`).
The base design (`--preset free --model counting-resnet`) has one residual block per resolution (488k, 36M).

Why: a GSN image's class needs the exact count of each of its two shape types, and the free model's errors are
almost all splits that are off by one (pair accuracy 0.997, top-1 0.84 on the dev split): overlapping shapes
XOR into each other, so the question is whether the network lacks context (depth at 7x7) or fine detail (work at
28x28). Each variant trains with the free preset's recipe (fresh synthetic images with a tenth real, cosine to
0, weight average), so its real-validation top-1 and loss compare directly with a run of the preset under the
same budget: `lab28 train gsn --preset free --data DEV --synth-per-epoch 40000 --epochs 3 --threads 1 --model M`,
M being counting-resnet (for deep7 and fullres) or counting-resnet-p4 (for the p4 and d4 variants).
Findings: docs/gsn.md, "Recipe probes" and "A larger free model".
"""

from __future__ import annotations

import argparse
import json

import torch
import torch.nn as nn
import torch.nn.functional as F

import lab28
from lab28.models.registry import register_model
from lab28.workloads.gsn.counting_resnet import (GroupConv, GroupCountingBackbone, ResidualBlock,
                                                  TurnSymmetricClassifier, _conv_bn)
from lab28.workloads.gsn.models import classifier_on


class PooledBackbone(nn.Module):
    """Convolutions, then the mean over positions, as in counting-resnet."""

    def __init__(self, layers: list[nn.Module], features: int):
        super().__init__()
        self.layers, self.features = nn.Sequential(*layers), features

    def forward(self, x):
        return self.layers(x).mean(dim=(2, 3))


def _conv_relu(channels_in: int, channels_out: int, stride: int = 1) -> list[nn.Module]:
    return [_conv_bn(channels_in, channels_out, stride), nn.ReLU()]


VARIANTS = {
    "p4-wide": lambda: GroupCountingBackbone(filters=(12, 24, 48)),
    "p4-exact": lambda: GroupCountingBackbone(pool_first=True),
    "p4-exact-wide": lambda: GroupCountingBackbone(filters=(12, 24, 48), pool_first=True),
    "p4-exact-fullres": lambda: GroupCountingBackbone(filters=(8, 16, 32), blocks=(1, 1, 1), pool_first=True),
    "p4-exact-fullres2": lambda: GroupCountingBackbone(filters=(8, 16, 32), blocks=(2, 1, 1), pool_first=True),
    "p4-exact-wide-fullres": lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True),
    "p4-exact-wide-fullres2": lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(2, 1, 1), pool_first=True),
    "p4-exact-wider-fullres": lambda: GroupCountingBackbone(filters=(16, 24, 48), blocks=(1, 1, 1), pool_first=True),
    "d4": lambda: GroupCountingBackbone(filters=(4, 8, 16), group="d4"),
    "d4-exact": lambda: GroupCountingBackbone(filters=(4, 8, 16), group="d4", pool_first=True),
    "deep7": lambda: PooledBackbone(
        _conv_relu(1, 32) + _conv_relu(32, 64, 2) + [ResidualBlock(64)]
        + _conv_relu(64, 128, 2) + [ResidualBlock(128), ResidualBlock(128)], 128),
    "fullres": lambda: PooledBackbone(
        _conv_relu(1, 32) + _conv_relu(32, 32) + _conv_relu(32, 64, 2) + [ResidualBlock(64)]
        + _conv_relu(64, 128, 2) + [ResidualBlock(128)], 128),
}


class ContextPointwise(nn.Module):
    """The pointwise layer before the pool, reading each position's features beside the image's mean features:
    relu(W_local x + W_context mean(x)), so what a position adds to a count can depend on which kinds the whole
    image shows (every image holds exactly two). The mean of an equivariant map turns with it, so this stays exactly
    equivariant; concatenating two maps laid out as 4c + g keeps that layout."""

    def __init__(self, channels: int, filters: int):
        super().__init__()
        self.conv = GroupConv(2 * channels, filters, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        context = x.mean(dim=(2, 3), keepdim=True).expand_as(x)
        return F.relu(self.conv(torch.cat([x, context], dim=1)))


def _with_context() -> GroupCountingBackbone:
    """counting-resnet-p4-local's backbone whose pointwise layer sees the image's mean features."""
    backbone = GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True)
    backbone.layers.append(ContextPointwise(48, 48))
    return backbone


# The same backbones read by heads that see the pooled features in all four orientations (the network's answer
# turns with the image; lab28.workloads.gsn.counting_resnet.TurnSymmetricClassifier).
TURN_SYMMETRIC = {
    "p4-exact-wide-fullres-turn-heads":
        lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True),
    "p4-exact-wide-fullres-wide7-turn-heads":
        lambda: GroupCountingBackbone(filters=(12, 24, 64), blocks=(1, 1, 1), pool_first=True),
    "p4-exact-wide-fullres-local48-turn-heads":  # the package's counting-resnet-p4-local
        lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True, pointwise=48),
    "p4-exact-wide-fullres-local96-turn-heads":
        lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True, pointwise=96),
    "p4-exact-wide-fullres-local48-lift9-turn-heads":
        lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True, pointwise=48,
                                      lift_kernel=9),
    "p4-exact-wide-fullres-local48-context-turn-heads": _with_context,
    "p4-exact-wide-fullres-local48-gate-turn-heads":  # the package's counting-resnet-p4-gated
        lambda: GroupCountingBackbone(filters=(12, 24, 48), blocks=(1, 1, 1), pool_first=True, pointwise=48,
                                      context_gate=12),
}


def _register(variant: str) -> str:
    name = f"counting-resnet-{variant}"

    def factory(head: str = "factored", dropout: float = 0.0, fc_init: str = "default", batchnorm: bool = False,
                hidden: int = 0):
        if variant in TURN_SYMMETRIC:
            return TurnSymmetricClassifier(TURN_SYMMETRIC[variant](), head=head, dropout=dropout, batchnorm=batchnorm,
                                           hidden=hidden)
        return classifier_on(VARIANTS[variant](), name, head, dropout, fc_init, batchnorm, hidden)

    register_model(name, workload="gsn")(factory)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("variant", choices=sorted({**VARIANTS, **TURN_SYMMETRIC}))
    parser.add_argument("--data", required=True, help="a GSN folder (validation on its last 1,000 rows)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-epoch", type=int, default=40_000, help="fresh images per epoch")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default="runs/variants")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any other config value, e.g. task.lam=1 or model.hidden=256 (repeatable)")
    parser.add_argument("--name", help="run folder name (default: the variant)")
    args = parser.parse_args()
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        try:  # numbers, true/false and lists as JSON; anything else is a string
            extra[key] = json.loads(value)
        except ValueError:
            extra[key] = value
    run = lab28.train("gsn", preset="free", out=args.out, name=args.name or args.variant, data=args.data,
                      **{"model.name": _register(args.variant), "train.epochs": args.epochs,
                         "train.early_stopping.patience": args.epochs, "data.synth_per_epoch": args.per_epoch,
                         "train.lr": args.lr, "train.threads": args.threads,
                         "model.hidden": 0,  # the variants compare backbones under the free preset's plain heads
                         **extra})
    print(f"run folder: {run}")


if __name__ == "__main__":
    main()
