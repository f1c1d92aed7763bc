"""Batched, on-device augmentation for image classification: transforms take (images, labels) and return both.

Images are float N x 1 x 28 x 28 in [0, 1] (before normalisation, so zero is the black background and every
fill below is "background"). Each transform draws its own per-image mask with its own probability, so a
batch is augmented with a handful of tensor ops wherever it lives. None of the per-image transforms change the
class; `cutmix`, which pastes a part of another image, does, so it returns the pasted image's label and each image's
weight of its own label beside the images, and the task's loss mixes the two.

The seed recipe used flips (both axes) and rotations up to 90 degrees; clothes are never upside down, so the
`best` preset keeps only what is natural: horizontal flips, small shifts, random erasing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from lab28.augment_ops import Augmentation, pick, random_erase, rectangle_mask


@dataclass
class FashionAugmentConfig:
    """Per-image probabilities (0 = off) and strengths."""

    hflip: float = 0.0  # probability of a left-right mirror
    vflip: float = 0.0  # probability of a top-bottom mirror
    rotate: float = 0.0  # probability of a rotation by an angle uniform in [-rotate_degrees, rotate_degrees]
    rotate_degrees: float = 90.0  # max rotation angle (degrees)
    translate: float = 0.0  # probability of an integer shift (zero fill), like pad + random crop
    translate_pixels: int = 2  # max shift per axis (pixels)
    erase: float = 0.0  # probability of erasing one rectangle (random erasing, arXiv 1708.04896)
    erase_area: tuple[float, float] = (0.02, 0.2)  # fraction of the image area erased
    cutmix: float = 0.0  # probability of pasting a rectangle of another image, labels mixed by area (arXiv 1905.04899)

    def any_enabled(self) -> bool:
        """Whether any per-image transform is on (CutMix, which mixes labels, is applied by the task)."""
        return any(p > 0 for p in (self.hflip, self.vflip, self.rotate, self.translate, self.erase))

    def validate(self) -> None:
        for name in ("hflip", "vflip", "rotate", "translate", "erase", "cutmix"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"augmentation probability {name} must be in [0, 1], got {p}")
        if not 0.0 <= self.rotate_degrees <= 180.0:
            raise ValueError(f"rotate_degrees must be in [0, 180], got {self.rotate_degrees}")
        if not 0 <= self.translate_pixels < 14:
            raise ValueError(f"translate_pixels must be in [0, 13], got {self.translate_pixels}")
        lo, hi = self.erase_area
        if not 0.0 < lo <= hi < 1.0:
            raise ValueError(f"erase_area must satisfy 0 < lo <= hi < 1, got {self.erase_area}")


# -- deterministic kernels (tested directly) ---------------------------------------------------------------
def rotate_images(images: torch.Tensor, degrees: torch.Tensor | float) -> torch.Tensor:
    """Rotate each image counter-clockwise by its angle (degrees) about the centre; corners fill with 0.

    align_corners=False maps pixel centres onto pixel centres, so 0 degrees is the identity and multiples of
    90 degrees reproduce torch.rot90 up to rounding.
    """
    n = images.shape[0]
    angle = torch.as_tensor(degrees, dtype=images.dtype, device=images.device).expand(n) * (math.pi / 180.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    # affine_grid maps output coordinates (x right, y down) to input ones: sampling at R(-a) turns content by +a
    # on screen, i.e. counter-clockwise as seen with y pointing down.
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shift_images(images: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, max_shift: int | None = None) -> torch.Tensor:
    """out[i, j] = in[i - dy, j - dx] per image (content moves down by dy, right by dx); zero fill.

    Pad-and-gather instead of torch.roll: roll would wrap a sleeve round to the other side of the image.
    `max_shift` bounds |dy| and |dx|; give it when known, so the padding needs no look at the shifts (a host sync).
    """
    n, c, h, w = images.shape
    if max_shift is not None:
        k = max_shift
    else:
        k = int(max(dy.abs().max().item(), dx.abs().max().item())) if n else 0
    if k == 0:
        return images.clone()
    padded = F.pad(images, (k, k, k, k))
    rows = (torch.arange(h, device=images.device).view(1, h) + k - dy.view(n, 1).long())  # n x h
    cols = (torch.arange(w, device=images.device).view(1, w) + k - dx.view(n, 1).long())  # n x w
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * k))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


# -- random transforms: (images, labels, p, ..., generator) -> (images, labels) ----------------------------
def hflip(images, labels, p: float = 1.0, generator=None):
    mask = pick(images.shape[0], p, images.device, generator).view(-1, 1, 1, 1)
    return torch.where(mask, images.flip(-1), images), labels


def vflip(images, labels, p: float = 1.0, generator=None):
    mask = pick(images.shape[0], p, images.device, generator).view(-1, 1, 1, 1)
    return torch.where(mask, images.flip(-2), images), labels


def rotate(images, labels, p: float = 1.0, max_degrees: float = 90.0, generator=None):
    n = images.shape[0]
    mask = pick(n, p, images.device, generator)
    angles = (torch.rand(n, device=images.device, generator=generator) * 2 - 1) * max_degrees
    angles = torch.where(mask, angles, torch.zeros_like(angles))
    # Unpicked images keep their exact pixels (bilinear resampling at angle 0 is exact only up to rounding).
    return torch.where(mask.view(-1, 1, 1, 1), rotate_images(images, angles), images), labels


def translate(images, labels, p: float = 1.0, max_pixels: int = 2, generator=None):
    n, dev = images.shape[0], images.device
    mask = pick(n, p, dev, generator)
    dy = torch.randint(-max_pixels, max_pixels + 1, (n,), device=dev, generator=generator) * mask
    dx = torch.randint(-max_pixels, max_pixels + 1, (n,), device=dev, generator=generator) * mask
    return shift_images(images, dy, dx, max_shift=max_pixels), labels


def cutmix_boxes(n: int, h: int, w: int, p: float, generator=None, device=None):
    """CutMix rectangles: (inside, own_weight). inside is n x 1 x h x w, True where an image takes its partner's
    pixels; own_weight is the share of the image left its own (1 for an image not chosen).

    As in the paper: the kept share is drawn uniform in [0, 1] (Beta(1, 1), the paper's choice for CIFAR; uniform
    draws take a generator, so a run stays seeded), the box has sides sqrt(1 - kept) of the image's around a uniform
    centre and is clipped at the border, and the weight is recomputed from the clipped box's area.
    """
    mask = pick(n, p, device, generator)
    cut = (1.0 - torch.rand(n, device=device, generator=generator)).sqrt()
    cy = torch.rand(n, device=device, generator=generator) * h
    cx = torch.rand(n, device=device, generator=generator) * w
    half_h, half_w = (cut * h / 2).round(), (cut * w / 2).round()
    top, bottom = (cy - half_h).round().clamp(0, h), (cy + half_h).round().clamp(0, h)
    left, right = (cx - half_w).round().clamp(0, w), (cx + half_w).round().clamp(0, w)
    inside = rectangle_mask(top, bottom, left, right, h, w) & mask.view(-1, 1, 1)
    own_weight = 1.0 - inside.flatten(1).float().mean(dim=1)
    return inside.unsqueeze(1), own_weight


def cutmix(images: torch.Tensor, labels: torch.Tensor, p: float = 1.0, generator=None):
    """Paste a rectangle of its batch neighbour into each chosen image: (images, partner_labels, own_weight).

    The neighbour is the previous image in the batch (the first takes the last's); training batches are drawn
    shuffled, so that pairs random images without a permutation to draw.
    """
    n, _, h, w = images.shape
    inside, own_weight = cutmix_boxes(n, h, w, p, generator, images.device)
    mixed = torch.where(inside, images.roll(1, dims=0), images)
    return mixed, labels.roll(1, dims=0), own_weight


class FashionAugment(Augmentation):
    """All enabled transforms in a fixed order: geometry first, erasing last (so an erased patch stays a
    clean rectangle rather than a rotated or shifted one)."""

    def steps(self):
        c = self.config
        return [
            (c.hflip, lambda x, y, g: hflip(x, y, c.hflip, g)),
            (c.vflip, lambda x, y, g: vflip(x, y, c.vflip, g)),
            (c.rotate, lambda x, y, g: rotate(x, y, c.rotate, c.rotate_degrees, g)),
            (c.translate if c.translate_pixels > 0 else 0.0,
             lambda x, y, g: translate(x, y, c.translate, c.translate_pixels, g)),
            (c.erase, lambda x, y, g: random_erase(x, y, c.erase, c.erase_area, g)),
        ]
