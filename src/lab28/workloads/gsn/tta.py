"""Test-time augmentation over the eight symmetries of the square (flips and quarter turns).

Each view of an image is a valid GSN image with permuted counts, so the model's answer for a view can be mapped
back exactly: class c of the original is class encode(counts_c[perm]) of the view, and the view's counts are
the original's permuted. Averaging the eight mapped answers is a cheap ensemble. Reported next to the plain
numbers, never instead of them.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from lab28.training.device import to_channels_last
from lab28.workloads.gsn.augment import _compose
from lab28.workloads.gsn.labels import HFLIP_PERM, NUM_CLASSES, ROT90_CCW_PERM, all_class_counts, encode_counts

IDENTITY = tuple(range(6))


def dihedral_views() -> list[tuple[int, bool, tuple[int, ...]]]:
    """(quarter turns k, horizontal flip first?, count permutation) for the 8 symmetries."""
    views = []
    for flip in (False, True):
        perm = HFLIP_PERM if flip else IDENTITY
        for k in range(4):
            views.append((k, flip, perm))
            perm = _compose(perm, ROT90_CCW_PERM)
    return views


def label_maps(views: list[tuple[int, bool, tuple[int, ...]]]) -> tuple[torch.Tensor, torch.Tensor]:
    """For answers read in each of `views`, what maps them back to the original orientation: class_maps[v][c] is
    the class, in view v, of an image whose class is c, and counts_in_view[:, inverse_perms[v]] are the original's
    counts."""
    table = all_class_counts()
    class_maps = torch.stack([encode_counts(table[:, list(perm)]) for _, _, perm in views])
    inverse_perms = torch.stack([torch.argsort(torch.tensor(perm)) for _, _, perm in views])
    return class_maps, inverse_perms


def apply_view(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, k, dims=(-2, -1)) if k else x


class DihedralTTA(nn.Module):
    """Wraps a GSN model: forward returns the (log_probs, counts) averaged over the eight views."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.views = dihedral_views()
        class_maps, inverse_perms = label_maps(self.views)
        self.register_buffer("class_maps", class_maps, persistent=False)
        self.register_buffer("inverse_perms", inverse_perms, persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        probs = torch.zeros(x.shape[0], NUM_CLASSES, device=x.device)
        counts = torch.zeros(x.shape[0], 6, device=x.device)
        for v, (k, flip, _) in enumerate(self.views):
            log_probs, c = self.model(to_channels_last(apply_view(x, k, flip)))
            probs += log_probs.float().exp()[:, self.class_maps[v]]
            counts += c.float()[:, self.inverse_perms[v]]
        n = len(self.views)
        return (probs / n).clamp_min(1e-12).log(), counts / n
