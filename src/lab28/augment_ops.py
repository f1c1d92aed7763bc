"""Batched augmentation building blocks shared by the workloads: random subsets, rectangles, random erasing."""

from __future__ import annotations

from typing import Callable

import torch

# flag -> (config path, help text) of the augmentations every workload's augment config has; each workload's flag
# table adds its own beside them.
AUGMENT_FLAGS: dict[str, tuple[str, str]] = {
    "hflip": ("augment.hflip", "horizontal-flip probability per image"),
    "vflip": ("augment.vflip", "vertical-flip probability per image"),
    "erase": ("augment.erase", "random-erasing probability per image"),
}

# transform(images, targets, generator) -> (images, targets)
Transform = Callable[[torch.Tensor, torch.Tensor, "torch.Generator | None"], tuple[torch.Tensor, torch.Tensor]]


class Augmentation:
    """The enabled transforms of an augmentation config, applied in a fixed order to batches of (images, targets).

    A workload lists its steps as (probability, transform) pairs; a step with probability 0 is skipped, so it draws
    no random numbers and a run without it is the run it always was.
    """

    def __init__(self, config):
        config.validate()
        self.config = config

    def steps(self) -> list[tuple[float, Transform]]:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None):
        for probability, transform in self.steps():
            if probability > 0:
                images, targets = transform(images, targets, generator)
        return images, targets


def pick(n: int, p: float, device, generator) -> torch.Tensor:
    """Bool mask choosing each of n images with probability p."""
    return torch.rand(n, device=device, generator=generator) < p


def rectangle_mask(top: torch.Tensor, bottom: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
                   h: int, w: int) -> torch.Tensor:
    """n x h x w bool, True inside each image's rectangle rows [top, bottom) and columns [left, right)."""
    rows = torch.arange(h, device=top.device).view(1, h, 1)
    cols = torch.arange(w, device=top.device).view(1, 1, w)
    return ((rows >= top.view(-1, 1, 1)) & (rows < bottom.view(-1, 1, 1))
            & (cols >= left.view(-1, 1, 1)) & (cols < right.view(-1, 1, 1)))


def random_erase(images, counts, p=1.0, area=(0.01, 0.05), generator=None):
    """Zero one random rectangle per chosen image. Small areas only: a large one could erase a shape
    and make the counts wrong."""
    n, _, h, w = images.shape
    dev = images.device
    mask = pick(n, p, dev, generator)
    frac = area[0] + torch.rand(n, device=dev, generator=generator) * (area[1] - area[0])
    log_ratio = (torch.rand(n, device=dev, generator=generator) * 2 - 1) * 1.2  # aspect in ~[0.3, 3.3]
    ratio = torch.exp(log_ratio)
    eh = (frac * h * w * ratio).sqrt().clamp(1, h).round()
    ew = (frac * h * w / ratio).sqrt().clamp(1, w).round()
    top = (torch.rand(n, device=dev, generator=generator) * (h - eh + 1)).floor()
    left = (torch.rand(n, device=dev, generator=generator) * (w - ew + 1)).floor()
    erase = (rectangle_mask(top, top + eh, left, left + ew, h, w) & mask.view(-1, 1, 1)).unsqueeze(1)
    return images.masked_fill(erase, 0.0), counts
