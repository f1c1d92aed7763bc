"""Tests for the synthetic GSN generator (lab28.workloads.gsn.synth)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from lab28.errors import Lab28Error
from lab28.workloads.gsn.labels import SHAPES, validate_counts_row
from lab28.workloads.gsn.synth import (
    CIRCLE,
    DOWN,
    LEFT,
    RIGHT,
    SHAPE_SIZES,
    SQUARE,
    UP,
    _xor_compose,
    draw_scenes,
    draw_shape,
    generate,
    sample_counts,
    sample_scenes,
    synth_gsn,
    write_gsn_dataset,
)


def nonzero_profile(values: np.ndarray) -> list[int]:
    return [int(v) for v in values if v > 0]


# ---------------------------------------------------------------- shapes


def test_up_triangle_is_the_real_stamp_with_apex_at_the_top():
    mask = draw_shape(UP, 14, 14, 11)
    rows = np.flatnonzero(mask.any(axis=1))
    assert nonzero_profile(mask.sum(axis=1)) == [1, 3, 5, 7, 9, 11]
    assert mask[rows[0], 14] and mask[rows[0]].sum() == 1  # the single apex pixel is on the lowest row index
    assert (mask[:, 9:14] == mask[:, 15:20][:, ::-1]).all() and not mask[:, :9].any() and not mask[:, 20:].any()


@pytest.mark.parametrize(
    ("kind", "axis", "growing"),
    [(UP, 1, True), (DOWN, 1, False), (RIGHT, 0, False), (LEFT, 0, True)],
)
def test_triangle_apex_points_where_its_name_says(kind, axis, growing):
    # axis=1: width of each row, listed by row index; axis=0: height of each column, listed by column index.
    # "up" widens downwards (apex towards row 0), "right" narrows towards the last column (apex on the right).
    profile = nonzero_profile(draw_shape(kind, 14, 14, 11).sum(axis=axis))
    expected = [1, 3, 5, 7, 9, 11]
    assert profile == (expected if growing else expected[::-1])


def test_triangle_kinds_are_flips_and_transposes_of_each_other():
    up = draw_shape(UP, 13.5, 14, 11)  # rows 11..16: mirror images about 13.5 stay on the grid
    assert (up[::-1] == draw_shape(DOWN, 13.5, 14, 11)).all()
    left = draw_shape(LEFT, 14, 13.5, 11)
    assert (up.T == left).all()
    assert (left[:, ::-1] == draw_shape(RIGHT, 14, 13.5, 11)).all()


@pytest.mark.parametrize("kind", [SQUARE, CIRCLE])
@pytest.mark.parametrize("size", [5, 8, 9])
def test_square_and_circle_are_symmetric(kind, size):
    mask = draw_shape(kind, 13.5, 13.5, size)
    assert mask.any()
    for image in (mask.T, mask[::-1], mask[:, ::-1]):
        assert (image == mask).all()


def test_square_and_circle_match_the_real_stamps():
    square = draw_shape(SQUARE, 10, 12, SHAPE_SIZES[SQUARE])
    assert square.sum() == 49 and square[7:14, 9:16].all()
    circle = draw_shape(CIRCLE, 10, 12, SHAPE_SIZES[CIRCLE])
    assert nonzero_profile(circle.sum(axis=1)) == [1, 5, 7, 7, 9, 7, 7, 5, 1]  # radius-4 disc of 49 px


def test_shapes_are_clipped_at_the_border():
    assert draw_shape(SQUARE, 0, 0, 7).sum() == 16  # a quarter-ish: rows 0..3 x cols 0..3
    assert not draw_shape(CIRCLE, -20, 5, 9).any()


def test_draw_shape_rejects_unknown_kind():
    with pytest.raises(ValueError):
        draw_shape(6, 14, 14, 7)


# ---------------------------------------------------------------- composition


def test_xor_of_two_identical_shapes_is_empty():
    shape = draw_shape(CIRCLE, 12, 15, 9)
    assert not _xor_compose(np.stack([shape, shape])).any()


def test_xor_punches_the_overlap_out():
    a, b = draw_shape(SQUARE, 10, 10, 7), draw_shape(SQUARE, 12, 12, 7)
    composed = _xor_compose(np.stack([a, b]))
    assert (composed == np.logical_xor(a, b)).all()
    assert composed.sum() == a.sum() + b.sum() - 2 * (a & b).sum()
    assert not composed[12, 12]  # inside both squares: a hole, not foreground


# ---------------------------------------------------------------- labels and images


def test_generate_dtypes_shapes_and_values():
    images, counts = generate(64, seed=0)
    assert images.dtype == np.uint8 and images.shape == (64, 28, 28)
    assert counts.dtype == np.int64 and counts.shape == (64, 6)
    assert set(np.unique(images).tolist()) == {0, 255}


def test_generate_is_deterministic_per_seed():
    a_img, a_cnt = generate(100, seed=5)
    b_img, b_cnt = generate(100, seed=5)
    c_img, c_cnt = generate(100, seed=6)
    assert (a_img == b_img).all() and (a_cnt == b_cnt).all()
    assert not (a_img == c_img).all() and not (a_cnt == c_cnt).all()


def test_scenes_hold_the_counted_kinds_on_grid_pixels_and_generate_draws_them():
    counts, kinds, anchors = sample_scenes(np.random.default_rng(4), 200)
    assert kinds.shape == (200, 10) and anchors.shape == (200, 10, 2)
    for row_counts, row_kinds in zip(counts, kinds):
        assert np.bincount(row_kinds, minlength=6).tolist() == row_counts.tolist()
    assert anchors.min() == 0 and anchors.max() == 27
    images, generated_counts = generate(200, seed=4)
    assert (generated_counts == counts).all() and (draw_scenes(kinds, anchors) == images).all()


def test_two_identical_shapes_on_one_anchor_vanish_and_the_others_are_drawn_off_their_anchors():
    # Four pairs that coincide exactly (XOR erases them), then a square on (14, 14) and a "left" triangle whose
    # apex column is 20: its bounding box centre lies 2.5 px to the right of the anchor (module docstring).
    kinds = np.array([[SQUARE, SQUARE, CIRCLE, CIRCLE, UP, UP, DOWN, DOWN, SQUARE, LEFT]])
    anchors = np.array([[[5, 5], [5, 5], [20, 20], [20, 20], [10, 14], [10, 14], [3, 3], [3, 3], [14, 14], [2, 20]]])
    expected = draw_shape(SQUARE, 14, 14, SHAPE_SIZES[SQUARE]) ^ draw_shape(LEFT, 2, 22.5, SHAPE_SIZES[LEFT])
    assert (draw_scenes(kinds, anchors)[0] == expected.astype(np.uint8) * 255).all()
    assert expected[14, 14] and expected[2, 20] and expected.sum() == 49 + 30  # 30 triangle px on the grid


@pytest.mark.parametrize("count_range", [(2, 8), (3, 7), (5, 5), (1, 9)])
def test_every_label_row_is_valid_and_in_range(count_range):
    _, counts = generate(300, seed=1, count_range=count_range)
    for row in counts.tolist():
        assert validate_counts_row(row) is None
    lo, hi = count_range
    present = counts[counts > 0]
    assert present.min() >= lo and present.max() <= hi


def test_sample_counts_covers_all_pairs_and_splits():
    counts = sample_counts(np.random.default_rng(0), 3000)
    pairs = {tuple(np.flatnonzero(row)) for row in counts}
    assert len(pairs) == 15
    assert set(counts[counts > 0].tolist()) == set(range(2, 9))


@pytest.mark.parametrize("bad", [(1, 3), (6, 9), (0, 5), (5, 10), (7, 3)])
def test_sample_counts_rejects_impossible_ranges(bad):
    with pytest.raises(ValueError):
        sample_counts(np.random.default_rng(0), 10, bad)


def test_fill_ratio_matches_the_real_data():
    # Measured on 9,000 real GSN images: mean 0.300, std 0.052 (see the synth module docstring).
    images, _ = generate(2000, seed=0)
    fill = (images > 0).mean(axis=(1, 2))
    assert 0.29 < fill.mean() < 0.31
    assert 0.045 < fill.std() < 0.06


# ---------------------------------------------------------------- writing


def read_back(data_dir):
    with open(data_dir / "labels.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    pixels = []
    for name, *_ in rows[1:]:
        with Image.open(data_dir / name) as im:
            assert im.mode == "RGBA" and im.size == (28, 28)
            pixels.append(np.array(im))
    return rows, np.stack(pixels) if pixels else np.zeros((0, 28, 28, 4), np.uint8)


def test_write_round_trip(tmp_path):
    images, counts = generate(12, seed=3)
    data = write_gsn_dataset(tmp_path / "gsn", images, counts)
    assert data == tmp_path / "gsn" / "data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gsn"]  # no temporary folder left behind
    assert b"\r" not in (data / "labels.csv").read_bytes()
    rows, rgba = read_back(data)
    assert rows[0] == ["name", *SHAPES] == ["name", "squares", "circles", "up", "right", "down", "left"]
    assert [r[0] for r in rows[1:]] == [f"img_{i:05d}.png" for i in range(12)]
    assert sorted(p.name for p in data.iterdir()) == sorted([r[0] for r in rows[1:]] + ["labels.csv"])
    assert np.array([[int(v) for v in r[1:]] for r in rows[1:]]).tolist() == counts.tolist()
    assert (rgba[..., 3] == 255).all()
    for channel in range(3):
        assert (rgba[..., channel] == images).all()


def test_write_refuses_a_non_empty_folder_and_leaves_nothing(tmp_path):
    out = tmp_path / "gsn"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    images, counts = generate(3, seed=0)
    with pytest.raises(Lab28Error) as info:
        write_gsn_dataset(out, images, counts)
    message = str(info.value)
    assert str(out) in message and "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gsn"]
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"] and (out / "keep.txt").read_text() == "mine"


def test_write_overwrite_replaces_and_empty_folder_is_fine(tmp_path):
    images, counts = generate(4, seed=2)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert (write_gsn_dataset(empty, images, counts) / "labels.csv").is_file()
    out = tmp_path / "gsn"
    out.mkdir()
    (out / "old.txt").write_text("old")
    data = write_gsn_dataset(out, images, counts, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == ["data"]
    assert len(list(data.glob("img_*.png"))) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "gsn"]


def test_synth_gsn_writes_what_generate_makes(tmp_path):
    data = synth_gsn(tmp_path / "out", n=5, seed=9, count_range=(4, 6))
    images, counts = generate(5, seed=9, count_range=(4, 6))
    rows, rgba = read_back(data)
    assert (rgba[..., 0] == images).all()
    assert [[int(v) for v in r[1:]] for r in rows[1:]] == counts.tolist()
