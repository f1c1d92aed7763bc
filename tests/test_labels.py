"""Class encoding (GUIDE.md §1) and the count permutations of geometric transforms."""

import itertools

import pytest
import torch

from lab28.workloads.gsn import labels as L


def test_encoding_follows_the_guide_formula_for_every_class():
    # pair_index * 9 + (count_i - 1), pairs in lexicographic order of the column index.
    expected = {}
    for p, (i, j) in enumerate(itertools.combinations(range(6), 2)):
        for ci in range(1, 10):
            row = [0] * 6
            row[i], row[j] = ci, 10 - ci
            expected[p * 9 + ci - 1] = row
    assert len(expected) == 135
    counts = torch.tensor([expected[k] for k in range(135)])
    assert L.encode_counts(counts).tolist() == list(range(135))
    assert L.decode_classes(torch.arange(135)).tolist() == [expected[k] for k in range(135)]


def test_known_examples():
    # squares 1 + circles 9 is class 0; up 4 + down 6 is pair (2, 4) = index 10 -> 10 * 9 + 3 = 93.
    assert L.encode_counts(torch.tensor([[1, 9, 0, 0, 0, 0]])).item() == 0
    assert L.encode_counts(torch.tensor([[0, 0, 4, 0, 6, 0]])).item() == 93
    assert L.encode_counts(torch.tensor([[0, 0, 0, 0, 9, 1]])).item() == 134
    assert L.class_name(93) == "up 4 + down 6"
    assert L.pair_name(10) == "up+down"


def test_decode_rejects_out_of_range():
    with pytest.raises(ValueError):
        L.decode_classes(torch.tensor([135]))


@pytest.mark.parametrize("row,ok", [
    ([4, 6, 0, 0, 0, 0], True), ([0, 0, 0, 0, 0, 10], False), ([3, 3, 4, 0, 0, 0], False),
    ([5, 6, 0, 0, 0, 0], False), ([-1, 11, 0, 0, 0, 0], False), ([4, 6, 0, 0, 0], False),
])
def test_validate_counts_row(row, ok):
    assert (L.validate_counts_row(row) is None) == ok


def _apply(perm, counts):
    return [counts[k] for k in perm]


def test_permutation_algebra():
    c = [1, 2, 3, 4, 5, 6]
    assert _apply(L.HFLIP_PERM, _apply(L.HFLIP_PERM, c)) == c
    assert _apply(L.VFLIP_PERM, _apply(L.VFLIP_PERM, c)) == c
    x = c
    for _ in range(4):
        x = _apply(L.ROT90_CCW_PERM, x)
    assert x == c
    # The guide's statement, literally: new = old[[0, 1, 3, 4, 5, 2]].
    assert L.ROT90_CCW_PERM == (0, 1, 3, 4, 5, 2)
    # hflip then vflip equals a half turn.
    half = _apply(L.ROT90_CCW_PERM, _apply(L.ROT90_CCW_PERM, c))
    assert _apply(L.VFLIP_PERM, _apply(L.HFLIP_PERM, c)) == half
