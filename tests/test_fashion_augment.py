"""Fashion-MNIST augmentation: labels and shapes preserved, exact geometry, per-image randomness."""

import pytest
import torch

from lab28.workloads.classify.augment import (
    FashionAugment, FashionAugmentConfig, cutmix, cutmix_boxes, hflip, rotate, rotate_images, shift_images, translate,
    vflip,
)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(0)
    return torch.rand(16, 1, 28, 28, generator=g), torch.arange(16) % 10


def test_flips_preserve_labels_and_shapes(batch):
    x, y = batch
    fx, fy = hflip(x, y, p=1.0)
    assert fx.shape == x.shape and torch.equal(fy, y) and torch.equal(fx, x.flip(-1))
    vx, vy = vflip(x, y, p=1.0)
    assert torch.equal(vy, y) and torch.equal(vx, x.flip(-2))
    same, _ = hflip(x, y, p=0.0)
    assert torch.equal(same, x)


def test_flip_is_chosen_per_image(batch):
    x, y = batch
    out, _ = hflip(x, y, p=0.5, generator=torch.Generator().manual_seed(1))
    flipped = [torch.equal(out[i], x[i].flip(-1)) for i in range(len(x))]
    kept = [torch.equal(out[i], x[i]) for i in range(len(x))]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_rotation_by_zero_is_identity_and_quarter_turn_matches_rot90(batch):
    x, y = batch
    assert torch.allclose(rotate_images(x, 0.0), x, atol=1e-5)
    assert torch.allclose(rotate_images(x, 90.0), torch.rot90(x, 1, dims=(-2, -1)), atol=1e-5)  # counter-clockwise
    rx, ry = rotate(x, y, p=1.0, max_degrees=0.0)
    assert torch.allclose(rx, x, atol=1e-5) and torch.equal(ry, y)
    rx, ry = rotate(x, y, p=1.0, max_degrees=90.0, generator=torch.Generator().manual_seed(2))
    assert rx.shape == x.shape and torch.equal(ry, y) and not torch.allclose(rx, x)
    assert torch.equal(rotate(x, y, p=0.0)[0], x)  # unpicked images keep their exact pixels


def test_translation_shifts_pixels_with_zero_fill():
    x = torch.zeros(2, 1, 28, 28)
    x[0, 0, 10, 10] = 1.0
    x[1, 0, 0, 27] = 1.0
    out = shift_images(x, torch.tensor([3, 1]), torch.tensor([-2, 1]))
    assert out[0, 0, 13, 8] == 1.0 and out[0].sum() == 1.0  # moved down 3, left 2
    assert out[1].sum() == 0.0  # moved off the right edge: gone, not wrapped round
    # a known bound (no look at the shifts) pads more but moves the same pixels
    assert torch.equal(shift_images(x, torch.tensor([3, 1]), torch.tensor([-2, 1]), max_shift=5), out)
    y = torch.tensor([4, 7])
    tx, ty = translate(x, y, p=1.0, max_pixels=2, generator=torch.Generator().manual_seed(0))
    assert tx.shape == x.shape and torch.equal(ty, y)
    assert torch.equal(translate(x, y, p=0.0)[0], x)


def test_pipeline_is_seeded_and_label_preserving(batch):
    x, y = batch
    cfg = FashionAugmentConfig(hflip=0.5, vflip=0.5, rotate=1.0, translate=1.0, erase=0.5)
    aug = FashionAugment(cfg)
    a, ya = aug(x.clone(), y, torch.Generator().manual_seed(5))
    b, _ = aug(x.clone(), y, torch.Generator().manual_seed(5))
    assert a.shape == x.shape and torch.equal(ya, y) and torch.equal(a, b)
    assert torch.isfinite(a).all() and a.min() >= 0 and a.max() <= 1
    with pytest.raises(ValueError, match="probability"):
        FashionAugment(FashionAugmentConfig(hflip=1.5))


def test_cutmix_pastes_one_rectangle_of_the_neighbour_and_weighs_the_labels_by_area():
    # Image i is the constant i / 10, so every output pixel tells which image it came from.
    x = torch.arange(12, dtype=torch.float32).div(10).view(12, 1, 1, 1).expand(12, 1, 28, 28).clone()
    y = torch.arange(12) % 10
    mixed, partner, own = cutmix(x, y, p=1.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(partner, y.roll(1)) and partner.tolist()[:3] == [1, 0, 1]
    for i in range(12):
        from_self = mixed[i, 0] == x[i, 0]
        from_neighbour = mixed[i, 0] == x[i - 1, 0]
        assert bool((from_self | from_neighbour).all())
        assert own[i].item() == pytest.approx(from_self.float().mean().item())
        rows, cols = (~from_self).nonzero(as_tuple=True)
        if len(rows):  # the pasted part is one full rectangle
            box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
            assert box.item() == len(rows)
    assert (own < 1).any() and (own > 0).all()


def test_cutmix_is_seeded_chooses_images_with_its_probability_and_leaves_the_others():
    x, y = torch.rand(400, 1, 28, 28, generator=torch.Generator().manual_seed(0)), torch.arange(400) % 10
    a = cutmix(x, y, p=0.5, generator=torch.Generator().manual_seed(7))
    b = cutmix(x, y, p=0.5, generator=torch.Generator().manual_seed(7))
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    mixed, _, own = a
    untouched = torch.tensor([torch.equal(mixed[i], x[i]) for i in range(400)])
    assert torch.equal(untouched, own == 1) and 150 < int(untouched.sum()) < 250
    assert bool(torch.equal(cutmix(x, y, p=0.0)[0], x))
    # Beta(1, 1): the kept share is uniform, so its mean over chosen images is near 1/2 (before clipping raises it).
    inside, weight = cutmix_boxes(20000, 28, 28, p=1.0, generator=torch.Generator().manual_seed(1))
    assert 0.5 < weight.mean().item() < 0.75 and weight.min().item() < 0.05
    with pytest.raises(ValueError, match="cutmix"):
        FashionAugment(FashionAugmentConfig(cutmix=1.5))
