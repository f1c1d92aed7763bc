"""GSN label semantics: shape columns, the 135-class encoding and how geometry permutes counts.

Columns of labels.csv (after `name`): squares, circles, up, right, down, left. Every image holds exactly two
shape types and ten shapes. A class is (unordered pair of types, count of the lower-index type):
class = pair_index * 9 + (count_i - 1), pairs (i < j) in lexicographic order -> 15 pairs x 9 splits = 135.
"""

from __future__ import annotations

from itertools import combinations

import torch

SHAPES = ("squares", "circles", "up", "right", "down", "left")
NUM_SHAPES = 6
TOTAL_SHAPES = 10
PAIRS = tuple(combinations(range(NUM_SHAPES), 2))  # 15 pairs, lexicographic
NUM_PAIRS = len(PAIRS)
SPLITS_PER_PAIR = TOTAL_SHAPES - 1  # count_i in 1..9
NUM_CLASSES = NUM_PAIRS * SPLITS_PER_PAIR  # 135
_PAIR_INDEX = {pair: k for k, pair in enumerate(PAIRS)}

# Count permutations for label-aware geometry: new_counts = old_counts[:, PERM].
# Squares and circles are symmetric under all of these; only the triangles move.
# Horizontal flip (mirror columns): right <-> left.
HFLIP_PERM = (0, 1, 2, 5, 4, 3)
# Vertical flip (mirror rows): up <-> down.
VFLIP_PERM = (0, 1, 4, 3, 2, 5)
# torch.rot90(x, k=1, dims=(-2, -1)) turns the image counter-clockwise: an apex pointing up ends up pointing
# left, so the new "left" count is the old "up" count, new up = old right, etc.: new = old[[0, 1, 3, 4, 5, 2]].
ROT90_CCW_PERM = (0, 1, 3, 4, 5, 2)


def pair_index(i: int, j: int) -> int:
    """Index (0..14) of the unordered pair of shape types {i, j}."""
    if i == j:
        raise ValueError(f"a pair needs two different shape types, got {i} twice")
    return _PAIR_INDEX[(min(i, j), max(i, j))]


def encode_counts(counts: torch.Tensor) -> torch.Tensor:
    """Class index (int64, shape N) for each row of an N x 6 count tensor.

    Rows must be valid: exactly two non-zero counts summing to 10 (the loader checks this on input).
    Vectorised: the two non-zero columns are the smallest and largest column index with a non-zero count.
    """
    counts = torch.as_tensor(counts)
    present = counts > 0
    cols = torch.arange(NUM_SHAPES, device=counts.device).expand_as(counts)
    big = NUM_SHAPES
    lo = torch.where(present, cols, torch.full_like(cols, big)).min(dim=1).values
    hi = torch.where(present, cols, torch.full_like(cols, -1)).max(dim=1).values
    lookup = _pair_lookup(counts.device)
    pair = lookup[lo.clamp(max=NUM_SHAPES - 1), hi.clamp(min=0)]
    count_lo = counts.gather(1, lo.clamp(max=NUM_SHAPES - 1).unsqueeze(1)).squeeze(1)
    return (pair * SPLITS_PER_PAIR + (count_lo.long() - 1)).long()


def decode_classes(classes: torch.Tensor) -> torch.Tensor:
    """Inverse of `encode_counts`: N x 6 int64 counts for each class index in 0..134."""
    classes = torch.as_tensor(classes, dtype=torch.long)
    if classes.numel() and (classes.min() < 0 or classes.max() >= NUM_CLASSES):
        raise ValueError(f"class indices must lie in 0..{NUM_CLASSES - 1}")
    pairs = torch.tensor(PAIRS, device=classes.device)[classes // SPLITS_PER_PAIR]  # N x 2
    count_lo = classes % SPLITS_PER_PAIR + 1
    out = torch.zeros(classes.shape[0], NUM_SHAPES, dtype=torch.long, device=classes.device)
    out.scatter_(1, pairs[:, :1], count_lo.unsqueeze(1))
    out.scatter_(1, pairs[:, 1:], (TOTAL_SHAPES - count_lo).unsqueeze(1))
    return out


def class_to_pair(classes: torch.Tensor) -> torch.Tensor:
    """Pair index (0..14) of each class."""
    return torch.as_tensor(classes, dtype=torch.long) // SPLITS_PER_PAIR


def all_class_counts() -> torch.Tensor:
    """135 x 6 table: the counts of every class, in class order (used for decoding regression output)."""
    return decode_classes(torch.arange(NUM_CLASSES))


def pair_name(pair: int) -> str:
    i, j = PAIRS[pair]
    return f"{SHAPES[i]}+{SHAPES[j]}"


def class_name(cls: int) -> str:
    """Human-readable class, e.g. `squares 3 + circles 7`."""
    i, j = PAIRS[cls // SPLITS_PER_PAIR]
    ci = cls % SPLITS_PER_PAIR + 1
    return f"{SHAPES[i]} {ci} + {SHAPES[j]} {TOTAL_SHAPES - ci}"


def validate_counts_row(values: list[int]) -> str | None:
    """Why a row of six counts is not a valid GSN label, or None when it is."""
    if len(values) != NUM_SHAPES:
        return f"expected {NUM_SHAPES} counts, got {len(values)}"
    if any(v < 0 for v in values):
        return "counts must not be negative"
    nonzero = sum(1 for v in values if v > 0)
    if nonzero != 2:
        return f"expected exactly two shape types, found {nonzero}"
    if sum(values) != TOTAL_SHAPES:
        return f"counts must sum to {TOTAL_SHAPES}, they sum to {sum(values)}"
    return None


_LOOKUP_CACHE: dict[torch.device, torch.Tensor] = {}


def _pair_lookup(device: torch.device) -> torch.Tensor:
    """6 x 6 table mapping (i, j), i < j, to the pair index (-1 elsewhere), cached per device."""
    if device not in _LOOKUP_CACHE:
        table = torch.full((NUM_SHAPES, NUM_SHAPES), -1, dtype=torch.long)
        for (i, j), k in _PAIR_INDEX.items():
            table[i, j] = k
        _LOOKUP_CACHE[device] = table.to(device)
    return _LOOKUP_CACHE[device]
