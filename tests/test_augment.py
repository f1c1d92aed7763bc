"""Label-aware augmentation: pixels and counts move together, exactly."""

import numpy as np
import pytest
import torch

from lab28.workloads.gsn import augment as A
from lab28.workloads.gsn.labels import encode_counts
from lab28.workloads.gsn.synth import DOWN, LEFT, RIGHT, UP, draw_shape

TRIANGLES = (UP, RIGHT, DOWN, LEFT)


def orientation(mask: np.ndarray) -> int:
    """Which way a lone triangle points, read from pixels: the apex is the narrow end of the bounding box.
    The centroid lies nearer the base, so the apex is on the far side of the box centre."""
    rows, cols = np.nonzero(mask)
    dr = rows.mean() - (rows.min() + rows.max()) / 2
    dc = cols.mean() - (cols.min() + cols.max()) / 2
    if abs(dr) > abs(dc):
        return UP if dr > 0 else DOWN  # mass low -> apex toward row 0
    return LEFT if dc > 0 else RIGHT  # mass right -> apex toward column 0


def one_triangle(kind: int) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.from_numpy(draw_shape(kind, 13.5, 13.5, 11).astype(np.float32)).view(1, 1, 28, 28)
    counts = torch.zeros(1, 6, dtype=torch.long)
    counts[0, kind] = 1
    return img, counts


@pytest.mark.parametrize("kind", TRIANGLES)
def test_drawn_triangles_have_the_orientation_of_their_name(kind):
    img, _ = one_triangle(kind)
    assert orientation(img[0, 0].numpy()) == kind


@pytest.mark.parametrize("op", [A.hflip, A.vflip, A.rot90])
@pytest.mark.parametrize("kind", TRIANGLES)
def test_geometry_moves_pixels_and_labels_together(op, kind):
    gen = torch.Generator().manual_seed(kind)
    img, counts = one_triangle(kind)
    imgs, cnts = img.repeat(16, 1, 1, 1), counts.repeat(16, 1)
    out_img, out_counts = op(imgs, cnts, p=1.0, generator=gen)
    for k in range(16):
        new_kind = int(out_counts[k].argmax())
        assert out_counts[k].sum() == 1
        assert orientation(out_img[k, 0].numpy()) == new_kind


def test_rot90_ccw_matches_torch_rot90_and_guide():
    img, counts = one_triangle(UP)
    gen = torch.Generator().manual_seed(0)
    out_img, out_counts = A.rot90(img.repeat(32, 1, 1, 1), counts.repeat(32, 1), p=1.0, generator=gen)
    ccw = torch.rot90(img, 1, dims=(-2, -1))
    ccw_rows = [k for k in range(32) if torch.equal(out_img[k], ccw[0])]
    assert ccw_rows and len(ccw_rows) < 32  # both directions occur
    for k in ccw_rows:  # counter-clockwise: up -> left
        assert out_counts[k].tolist() == [0, 0, 0, 0, 0, 1]


def test_probability_zero_is_identity_and_subset_size_follows_p():
    gen = torch.Generator().manual_seed(0)
    imgs = torch.rand(2000, 1, 28, 28)
    counts = torch.tensor([[0, 0, 3, 7, 0, 0]]).repeat(2000, 1)
    out, c = A.hflip(imgs, counts, p=0.0, generator=gen)
    assert torch.equal(out, imgs) and torch.equal(c, counts)
    out, c = A.hflip(imgs, counts, p=0.3, generator=gen)
    flipped = (c[:, 5] == 7).float().mean().item()
    assert 0.25 < flipped < 0.35
    changed = ~(out == imgs).flatten(1).all(dim=1)
    assert torch.equal(changed, c[:, 5] == 7)  # exactly the flipped images changed


def test_class_is_recomputed_after_augmentation():
    from lab28.workloads.gsn.task import GSNTask, GSNTaskConfig

    task = GSNTask(GSNTaskConfig("joint"), A.GSNAugmentConfig(hflip=1.0))
    imgs = torch.zeros(4, 1, 28, 28, dtype=torch.uint8)
    counts = torch.tensor([[0, 0, 0, 3, 0, 7]]).repeat(4, 1)
    _, t = task.prepare_batch(imgs, counts, train=True)
    assert t["counts"].tolist() == [[0, 0, 0, 7, 0, 3]] * 4
    assert torch.equal(t["classes"], encode_counts(t["counts"]))
    assert not torch.equal(t["classes"], encode_counts(counts))


def test_photometric_transforms_keep_counts_and_shape():
    gen = torch.Generator().manual_seed(1)
    imgs = torch.rand(64, 1, 28, 28)
    counts = torch.tensor([[2, 8, 0, 0, 0, 0]]).repeat(64, 1)
    cfg = A.GSNAugmentConfig(brightness_contrast=1.0, noise=1.0, erase=1.0)
    out, c = A.GSNAugment(cfg)(imgs, counts, gen)
    assert out.shape == imgs.shape and torch.equal(c, counts) and torch.isfinite(out).all()


def test_noise_variance_is_ten_percent_of_max():
    gen = torch.Generator().manual_seed(2)
    imgs = torch.zeros(200, 1, 28, 28)
    out, _ = A.gaussian_noise(imgs, torch.zeros(200, 6), p=1.0, variance=0.1, generator=gen)
    assert abs(out.var().item() - 0.1) < 0.005


def test_random_erase_zeroes_a_small_rectangle():
    gen = torch.Generator().manual_seed(3)
    imgs = torch.ones(100, 1, 28, 28)
    out, _ = A.random_erase(imgs, torch.zeros(100, 6), p=1.0, area=(0.02, 0.05), generator=gen)
    erased = (out == 0).flatten(1).float().mean(dim=1)
    assert (erased > 0).all() and (erased <= 0.08).all()


def test_invalid_probability_is_refused():
    with pytest.raises(ValueError):
        A.GSNAugment(A.GSNAugmentConfig(hflip=1.5))


def test_tta_maps_every_view_back_exactly():
    """A fake model that reads the true counts off a view must, through TTA, give the original's counts and class."""
    from lab28.workloads.gsn.tta import DihedralTTA, apply_view, dihedral_views

    views = dihedral_views()
    assert len({(k, f) for k, f, _ in views}) == 8 and len({p for _, _, p in views}) == 8
    img = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(5))  # no symmetry: 8 distinct views
    counts = torch.tensor([[0, 0, 3, 7, 0, 0]])

    class Oracle(torch.nn.Module):
        """Knows what each view of `img` is and answers with that view's (permuted) counts and class."""

        def forward(self, x):
            out_counts = []
            for k, flip, perm in views:
                if torch.equal(x[:1], apply_view(img, k, flip)):
                    out_counts.append(counts[:, list(perm)])
            c = torch.cat(out_counts).float()
            lp = torch.full((1, 135), -30.0)
            lp[0, encode_counts(c.long())] = 0.0
            return lp, c

    lp, c = DihedralTTA(Oracle())(img)
    assert torch.allclose(c, counts.float())
    assert lp.argmax(dim=1).item() == encode_counts(counts).item()
