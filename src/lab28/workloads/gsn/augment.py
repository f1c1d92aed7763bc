"""Label-aware, batched augmentation for GSN: transforms take (images, counts) and return both.

Each transform picks its own random subset of the batch with its own probability (default 0: off), so a whole
batch is augmented with a few tensor ops on whatever device it lives on. Geometry permutes the six counts
exactly (see `lab28.workloads.gsn.labels`); the class is never stored here, it is re-encoded from the returned counts.
Images are float tensors N x 1 x 28 x 28 in [0, 1] (photometric transforms need floats).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lab28.augment_ops import Augmentation, pick, random_erase
from lab28.workloads.gsn.labels import HFLIP_PERM, ROT90_CCW_PERM, VFLIP_PERM


def _compose(first: tuple[int, ...], then: tuple[int, ...]) -> tuple[int, ...]:
    """Permutation equal to applying `first` and then `then` (both as new = old[perm])."""
    return tuple(first[k] for k in then)


ROT90_CW_PERM = _compose(_compose(ROT90_CCW_PERM, ROT90_CCW_PERM), ROT90_CCW_PERM)


@dataclass
class GSNAugmentConfig:
    """Probabilities (per image) and strengths of each augmentation; all off by default."""

    hflip: float = 0.0  # probability of a horizontal flip (right <-> left)
    vflip: float = 0.0  # probability of a vertical flip (up <-> down)
    rot90: float = 0.0  # probability of a 90 degree turn, clockwise or counter-clockwise at random
    brightness_contrast: float = 0.0  # probability of a mild brightness/contrast change
    brightness: float = 0.1  # max additive shift (pixel range is 0..1)
    contrast: float = 0.2  # max relative contrast change
    noise: float = 0.0  # probability of additive Gaussian noise
    noise_variance: float = 0.1  # as a fraction of the max pixel value (the seed report's 10%)
    erase: float = 0.0  # probability of erasing one small rectangle
    erase_area: tuple[float, float] = (0.01, 0.05)  # fraction of the image area erased

    def any_enabled(self) -> bool:
        return any(p > 0 for p in (self.hflip, self.vflip, self.rot90, self.brightness_contrast, self.noise, self.erase))

    def validate(self) -> None:
        for name in ("hflip", "vflip", "rot90", "brightness_contrast", "noise", "erase"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augmentation probability {name} must be in [0, 1], got {p}")
        for name in ("brightness", "contrast"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if not self.noise_variance >= 0.0:
            raise ValueError(f"noise_variance must be >= 0, got {self.noise_variance}")
        lo, hi = self.erase_area
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"erase_area must satisfy 0 < lo <= hi < 1, got {self.erase_area}")


_PERM_CACHE: dict[tuple[tuple[int, ...], torch.device], torch.Tensor] = {}


def _perm_index(perm: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """The permutation as an index tensor on `device`, made once: indexing with a Python list would copy it
    from the host at every step (a sync, and not allowed inside a CUDA graph)."""
    key = (tuple(perm), device)
    if key not in _PERM_CACHE:
        _PERM_CACHE[key] = torch.tensor(perm, dtype=torch.long, device=device)
    return _PERM_CACHE[key]


def _apply_geometry(images, counts, mask, transformed, perm):
    m4 = mask.view(-1, 1, 1, 1)
    images = torch.where(m4, transformed, images)
    counts = torch.where(mask.view(-1, 1), counts.index_select(1, _perm_index(perm, counts.device)), counts)
    return images, counts


def hflip(images, counts, p=1.0, generator=None):
    """Mirror left-right: right and left triangles swap."""
    mask = pick(images.shape[0], p, images.device, generator)
    return _apply_geometry(images, counts, mask, images.flip(-1), HFLIP_PERM)


def vflip(images, counts, p=1.0, generator=None):
    """Mirror top-bottom: up and down triangles swap."""
    mask = pick(images.shape[0], p, images.device, generator)
    return _apply_geometry(images, counts, mask, images.flip(-2), VFLIP_PERM)


def rot90(images, counts, p=1.0, generator=None):
    """Turn by 90 degrees, each chosen image clockwise or counter-clockwise with equal chance."""
    n = images.shape[0]
    mask = pick(n, p, images.device, generator)
    ccw = torch.rand(n, device=images.device, generator=generator) < 0.5
    images, counts = _apply_geometry(
        images, counts, mask & ccw, torch.rot90(images, 1, dims=(-2, -1)), ROT90_CCW_PERM
    )
    return _apply_geometry(images, counts, mask & ~ccw, torch.rot90(images, -1, dims=(-2, -1)), ROT90_CW_PERM)


def brightness_contrast(images, counts, p=1.0, brightness=0.1, contrast=0.2, generator=None):
    """x -> (x - mean) * c + mean + b per image; mild, so shapes stay recognisable. Counts unchanged."""
    n, dev = images.shape[0], images.device
    mask = pick(n, p, dev, generator).view(-1, 1, 1, 1)
    c = 1 + (torch.rand(n, 1, 1, 1, device=dev, generator=generator) * 2 - 1) * contrast
    b = (torch.rand(n, 1, 1, 1, device=dev, generator=generator) * 2 - 1) * brightness
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    changed = ((images - mean) * c + mean + b).clamp(0, 1)
    return torch.where(mask, changed, images), counts


def gaussian_noise(images, counts, p=1.0, variance=0.1, generator=None):
    """Add N(0, variance * max pixel) noise (max pixel is 1 here). Not clamped: clamping would bias the mean."""
    mask = pick(images.shape[0], p, images.device, generator).view(-1, 1, 1, 1)
    noise = torch.randn(images.shape, device=images.device, generator=generator, dtype=images.dtype)
    return torch.where(mask, images + noise * variance**0.5, images), counts


class GSNAugment(Augmentation):
    """All enabled transforms in a fixed order: geometry first (permutes counts), then photometric."""

    def steps(self):
        c = self.config
        return [
            (c.hflip, lambda x, y, g: hflip(x, y, c.hflip, g)),
            (c.vflip, lambda x, y, g: vflip(x, y, c.vflip, g)),
            (c.rot90, lambda x, y, g: rot90(x, y, c.rot90, g)),
            (c.brightness_contrast,
             lambda x, y, g: brightness_contrast(x, y, c.brightness_contrast, c.brightness, c.contrast, g)),
            (c.erase, lambda x, y, g: random_erase(x, y, c.erase, c.erase_area, g)),
            (c.noise, lambda x, y, g: gaussian_noise(x, y, c.noise, c.noise_variance, g)),
        ]
