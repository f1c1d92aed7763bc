"""Batched augmentation building blocks shared by the workloads: per-image random subsets, random erasing."""

from __future__ import annotations

import torch


def pick(n: int, p: float, device, generator) -> torch.Tensor:
    """Bool mask choosing each of n images with probability p."""
    return torch.rand(n, device=device, generator=generator) < p


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
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    inside = (
        (rows >= top.view(-1, 1, 1)) & (rows < (top + eh).view(-1, 1, 1))
        & (cols >= left.view(-1, 1, 1)) & (cols < (left + ew).view(-1, 1, 1))
    )
    erase = (inside & mask.view(-1, 1, 1)).unsqueeze(1)
    return images.masked_fill(erase, 0.0), counts
