"""Does telling counting-resnet where each shape is help it count? A probe of a position loss on synthetic images.

    python experiments/position_loss_probe.py --data DEV_DIR --position-weight W [--epochs 3] [--per-epoch 40000]
        [--lr 6e-3] [--threads 1] --out RESULT.json

The generator knows every shape's reference pixel, which real labels do not give. Here a 1x1 convolution reads the
network's last 7x7 feature map and predicts, per shape kind, how many reference pixels fall in each 4x4 cell; its
squared error per image (divided by the ten shapes) is added to the task's loss (NLL + 3 SmoothL1) with weight W,
on the synthetic rows only: the real rows (a tenth of each epoch) have no positions. The count head reads the
mean of the same map, so the extra loss asks the features to be a count density. W = 0 is the baseline, same loop.

This is its own small training loop, not the engine: Adam with half an epoch of warm-up and cosine to 0, batch
128, no augmentation and no weight average, so compare its figures with each other, not with a preset's. Images
of epoch e come from seed 1000 + e, the real rows from the first 8,000 of DEV_DIR; validation is its last 1,000.
Findings: docs/gsn.md, "How far the free track can go".
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lab28.workloads.gsn.counting_resnet import counting_resnet
from lab28.workloads.gsn.labels import NUM_SHAPES, TOTAL_SHAPES, encode_counts
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.synth import draw_scenes, sample_scenes
from lab28.workloads.gsn.task import PIXEL_MEAN, PIXEL_STD

CELL = 4  # pixels per side of a cell of the 7x7 map
GRID = 28 // CELL
TRAIN_ROWS, LAMBDA = 8000, 3.0


def synthetic_epoch(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images N x 1 x 28 x 28, counts N x 6 and position maps N x 6 x 7 x 7 (reference pixels per kind and cell)."""
    counts, kinds, anchors = sample_scenes(np.random.default_rng(seed), n)
    maps = np.zeros((n, NUM_SHAPES, GRID, GRID), np.float32)
    cells = anchors // CELL
    np.add.at(maps, (np.repeat(np.arange(n), TOTAL_SHAPES), kinds.ravel(), cells[..., 0].ravel(),
                     cells[..., 1].ravel()), 1)
    images = torch.from_numpy(draw_scenes(kinds, anchors)).unsqueeze(1)
    return images, torch.from_numpy(counts), torch.from_numpy(maps)


def normalised(images: torch.Tensor) -> torch.Tensor:
    return (images.float() / 255 - PIXEL_MEAN) / PIXEL_STD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="a GSN folder of at least 9,000 rows")
    parser.add_argument("--position-weight", type=float, required=True, help="0 = the baseline")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-epoch", type=int, default=40_000)
    parser.add_argument("--lr", type=float, default=6e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", required=True, help="JSON file for the per-epoch results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    real = load_gsn(args.data)
    train_images, train_counts = real.images[:TRAIN_ROWS], real.counts[:TRAIN_ROWS]
    val_images, val_counts = real.images[TRAIN_ROWS:TRAIN_ROWS + 1000], real.counts[TRAIN_ROWS:TRAIN_ROWS + 1000]

    model = counting_resnet()
    position_head = nn.Conv2d(model.backbone.features, NUM_SHAPES, 1)
    optimizer = torch.optim.Adam([*model.parameters(), *position_head.parameters()], lr=args.lr)
    steps_per_epoch = args.per_epoch // args.batch_size
    total, warmup = steps_per_epoch * args.epochs, steps_per_epoch // 2

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        return args.lr * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))

    def forward(x: torch.Tensor):
        feature_map = model.backbone.layers(x)
        h = feature_map.mean(dim=(2, 3))
        return F.log_softmax(model.cls_head(h), dim=1), model.count_head(h), feature_map

    @torch.no_grad()
    def validate() -> tuple[float, float]:
        model.eval()
        log_probs, counts, _ = forward(normalised(val_images))
        model.train()
        accuracy = (log_probs.argmax(1) == encode_counts(val_counts)).float().mean().item()
        return accuracy, (counts - val_counts.float()).pow(2).mean().sqrt().item()

    log, step, start = [], 0, time.time()
    for epoch in range(args.epochs):
        n_real = args.per_epoch // 10
        images, counts, maps = synthetic_epoch(args.per_epoch - n_real, seed=1000 + epoch)
        rows = torch.from_numpy(np.random.default_rng(epoch).choice(TRAIN_ROWS, n_real, replace=False))
        images, counts = torch.cat([images, train_images[rows]]), torch.cat([counts, train_counts[rows]])
        maps = torch.cat([maps, torch.zeros(n_real, NUM_SHAPES, GRID, GRID)])
        has_map = torch.cat([torch.ones(len(images) - n_real), torch.zeros(n_real)])
        order = torch.randperm(len(images))
        for b in range(steps_per_epoch):
            idx = order[b * args.batch_size:(b + 1) * args.batch_size]
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            log_probs, counts_pred, feature_map = forward(normalised(images[idx]))
            target = counts[idx]
            loss = F.nll_loss(log_probs, encode_counts(target)) + LAMBDA * F.smooth_l1_loss(counts_pred, target.float())
            if args.position_weight:
                error = (position_head(feature_map) - maps[idx]).pow(2).sum(dim=(1, 2, 3)) / TOTAL_SHAPES
                mask = has_map[idx]
                loss = loss + args.position_weight * (error * mask).sum() / mask.sum().clamp_min(1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
        accuracy, rmse = validate()
        log.append({"epoch": epoch + 1, "val_accuracy": accuracy, "val_rmse": rmse, "seconds": time.time() - start})
        print(json.dumps(log[-1]), flush=True)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump({"args": vars(args), "epochs": log}, f, indent=1)


if __name__ == "__main__":
    main()
