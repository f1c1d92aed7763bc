"""Fashion-MNIST workload: data, models, metrics, augmentation, and a tiny suite end to end."""

import json

import numpy as np
import pytest
import torch

from lab28.data.idx import write_idx
from lab28.errors import Lab28Error
from lab28.workloads.classify.config import config_from_dict, preset
from lab28.workloads.classify.data import CLASS_NAMES, FashionDataConfig, load_fashion, stratified_split
from lab28.workloads.classify.augment import FashionAugmentConfig
from lab28.workloads.classify.task import PIXEL_MEAN, PIXEL_STD, FashionTask, FashionTaskConfig
from lab28.models import available_models, create_model
from lab28.workloads.classify.models import FASHION_MODELS, GatedConvBlock, SpatialAttention
from lab28.models.registry import count_parameters


def write_fashion(folder, n_train=200, n_test=60, seed=0):
    """Tiny IDX set: class k is a bright bar at rows 2k+4..2k+6 on noise (learnable, 28x28, balanced).
    Train images are gzipped, the rest raw: both forms must load."""
    rng = np.random.default_rng(seed)
    for split, n, suffix in (("train", n_train, ".gz"), ("t10k", n_test, "")):
        if not n:
            continue
        labels = np.tile(np.arange(10), n // 10).astype(np.uint8)
        rng.shuffle(labels)
        images = (rng.random((n, 28, 28)) * 60).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 4: 2 * c + 7, 4:24] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte{suffix}", images)
        write_idx(folder / f"{split}-labels-idx1-ubyte", labels)
    return folder


@pytest.fixture(scope="module")
def fashion_dir(tmp_path_factory):
    return write_fashion(tmp_path_factory.mktemp("fashion"))


@pytest.fixture(scope="module")
def no_test_dir(tmp_path_factory):
    return write_fashion(tmp_path_factory.mktemp("fashion-no-test"), n_test=0)


# -- models -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", available_models())
def test_every_registered_model_trains_one_step(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.randn(4, 1, 28, 28)
    out = model(x)
    outs = out if isinstance(out, tuple) else (out,)
    if name in available_models("gsn"):
        assert [tuple(o.shape) for o in outs] == [(4, 135), (4, 6)]
    else:
        assert [tuple(o.shape) for o in outs] == [(4, 10)]
    assert all(torch.isfinite(o).all() for o in outs)
    sum(o.float().pow(2).mean() for o in outs).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_fashion_models_registered_with_comparable_sizes():
    counts = {name: count_parameters(create_model(name)) for name in FASHION_MODELS}
    print(counts)
    assert set(FASHION_MODELS) <= set(available_models())
    assert max(counts.values()) <= 1.2 * min(counts.values()), counts


def test_spatial_attention_mask_and_gated_block():
    x = torch.randn(2, 8, 14, 14)
    sa = SpatialAttention().eval()
    mask = sa.mask(x)
    assert mask.shape == (2, 1, 14, 14) and (mask > 0).all() and (mask < 1).all()
    assert torch.allclose(sa(x), x * mask)
    gate = GatedConvBlock(8, 4).eval()
    both = gate.bn(gate.conv(x))
    assert torch.allclose(gate(x), both[:, :4] * torch.sigmoid(both[:, 4:]))


# -- metrics ------------------------------------------------------------------------------------------------
def test_per_class_metrics_by_hand():
    # truth: 0 0 0 0 1 1 ; pred: 0 0 0 1 1 1  ->  class 0: P 3/3, R 3/4 ; class 1: P 2/3, R 2/2
    truth, pred = torch.tensor([0, 0, 0, 0, 1, 1]), torch.tensor([0, 0, 0, 1, 1, 1])
    logits = torch.nn.functional.one_hot(pred, 10).float()
    m = FashionTask().metrics(logits, {"labels": truth})
    t, tr = CLASS_NAMES[0], CLASS_NAMES[1]
    assert (m[f"precision/{t}"], m[f"recall/{t}"], m[f"f1/{t}"]) == pytest.approx((1.0, 0.75, 1.5 / 1.75))
    assert (m[f"precision/{tr}"], m[f"recall/{tr}"], m[f"f1/{tr}"]) == pytest.approx((2 / 3, 1.0, 0.8))
    assert m[f"support/{t}"] == 4 and m[f"support/{CLASS_NAMES[5]}"] == 0
    assert m["accuracy"] == pytest.approx(5 / 6)
    assert m["macro_precision"] == pytest.approx((1 + 2 / 3) / 2)  # over the two classes present
    assert m["macro_recall"] == pytest.approx(0.875)
    assert m["macro_f1"] == pytest.approx((1.5 / 1.75 + 0.8) / 2)


def test_task_normalises_and_smooths():
    task = FashionTask(FashionTaskConfig(label_smoothing=0.1))
    x, t = task.prepare_batch(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), torch.tensor([3, 4]), train=False)
    assert torch.allclose(x, torch.full_like(x, -PIXEL_MEAN / PIXEL_STD)) and t["labels"].tolist() == [3, 4]
    logits = torch.tensor([[5.0] + [0.0] * 9])
    loss, parts = task.loss(logits, {"labels": torch.tensor([0])})
    assert loss > parts["nll"] > 0  # smoothing penalises a confident right answer
    assert "nll" not in FashionTask().loss(logits, {"labels": torch.tensor([0])})[1]


def test_cutmix_loss_mixes_the_two_labels_by_area_and_stays_off_outside_training():
    logits = torch.tensor([[2.0, 0.0] + [0.0] * 8, [0.0, 1.0] + [0.0] * 8])
    log_p = torch.log_softmax(logits, dim=1)
    targets = {"labels": torch.tensor([0, 1]), "partner_labels": torch.tensor([1, 3]),
               "own_weight": torch.tensor([0.75, 0.4])}
    loss, _ = FashionTask().loss(logits, targets)
    by_hand = (-(0.75 * log_p[0, 0] + 0.25 * log_p[0, 1]) - (0.4 * log_p[1, 1] + 0.6 * log_p[1, 3])) / 2
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-6)
    smoothed, parts = FashionTask(FashionTaskConfig(label_smoothing=0.1)).loss(logits, targets)
    assert parts["nll"].item() == pytest.approx(by_hand.item(), rel=1e-6) and smoothed > parts["nll"]

    # Image i is the constant 20 * i, so each input pixel tells which image it came from.
    images, labels = (torch.arange(8) * 20).to(torch.uint8).view(8, 1, 1, 1).expand(8, 1, 28, 28), torch.arange(8)
    task = FashionTask(augment=FashionAugmentConfig(cutmix=1.0))
    x, t = task.prepare_batch(images, labels, train=True, generator=torch.Generator().manual_seed(0))
    assert t["partner_labels"].tolist() == [7, 0, 1, 2, 3, 4, 5, 6] and (t["own_weight"] < 1).any()
    pixels = (x * PIXEL_STD + PIXEL_MEAN).mul(255).round()
    for i in range(8):
        own_share = (pixels[i] == 20 * i).float().mean().item()
        assert own_share == pytest.approx(t["own_weight"][i].item())
        assert bool(((pixels[i] == 20 * i) | (pixels[i] == 20 * ((i - 1) % 8))).all())
    with pytest.raises(ValueError, match="cutmix"):
        FashionTask(augment=FashionAugmentConfig(cutmix=1.5))
    x_eval, t_eval = task.prepare_batch(images, labels, train=False)
    assert set(t_eval) == {"labels"} and torch.equal(x_eval, FashionTask().prepare_batch(images, labels, False)[0])
    assert set(FashionTask().prepare_batch(images, labels, train=True)[1]) == {"labels"}


def test_a_short_training_with_cutmix_lowers_the_loss():
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(20)
    images = (torch.rand(200, 1, 28, 28) * 60).to(torch.uint8)
    for i, c in enumerate(labels.tolist()):
        images[i, 0, 2 * c + 4: 2 * c + 7, 4:24] = 255
    task = FashionTask(augment=FashionAugmentConfig(cutmix=1.0))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    generator, losses = torch.Generator().manual_seed(1), []
    for _ in range(40):
        x, t = task.prepare_batch(images, labels, train=True, generator=generator)
        loss, _ = task.loss(model(x), t)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    x, t = task.prepare_batch(images, labels, train=False)
    assert (model(x).argmax(1) == labels).float().mean() > 0.9


# -- data ---------------------------------------------------------------------------------------------------
def test_stratified_split_counts_and_determinism():
    labels = np.repeat(np.arange(10), [600, 600, 600, 600, 600, 600, 600, 600, 600, 300])  # 5,700 images
    rest, val = stratified_split(labels, 570, seed=3)
    assert np.bincount(labels[val], minlength=10).tolist() == [60] * 9 + [30]
    assert len(np.intersect1d(rest, val)) == 0 and len(rest) + len(val) == len(labels)
    again = stratified_split(labels, 570, seed=3)[1]
    assert np.array_equal(val, again)
    assert not np.array_equal(val, stratified_split(labels, 570, seed=4)[1])
    _, odd = stratified_split(labels, 13, seed=0)  # quotas sum exactly to the requested size
    assert len(odd) == 13


def test_load_fashion_splits(fashion_dir, no_test_dir):
    s = load_fashion(FashionDataConfig(path=str(fashion_dir), val_size=50))
    assert (len(s.train), len(s.val), len(s.test)) == (150, 50, 60)
    assert s.val.class_counts() == [5] * 10 and s.train.class_counts() == [15] * 10
    assert s.train.images.shape == (150, 1, 28, 28) and s.train.images.dtype == torch.uint8
    small = load_fashion(FashionDataConfig(path=str(fashion_dir), val_size=50, train_size=40, test_size=20))
    assert (len(small.train), len(small.test)) == (40, 20) and small.train.class_counts() == [4] * 10
    none = load_fashion(FashionDataConfig(path=str(no_test_dir), val_size=50))
    assert none.test is None and "no test set" in none.test_note and str(no_test_dir) in none.test_note
    off = load_fashion(FashionDataConfig(path=str(fashion_dir), val_size=50, evaluate_test=False))
    assert off.test is None and "turned off" in off.test_note


def test_bad_idx_input_names_the_file(tmp_path, fashion_dir):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(fashion_dir, bad)
    target = bad / "t10k-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-7])  # truncated: a broken test set must not be silently skipped
    with pytest.raises(Lab28Error, match="t10k-images-idx3-ubyte.*truncated"):
        load_fashion(FashionDataConfig(path=str(bad), val_size=50))
    (bad / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x03junk")
    with pytest.raises(Lab28Error, match="train-labels-idx1-ubyte"):
        load_fashion(FashionDataConfig(path=str(bad), val_size=50))
    with pytest.raises(Lab28Error, match="no Fashion-MNIST training files"):
        load_fashion(FashionDataConfig(path=str(tmp_path)))
    with pytest.raises(Lab28Error, match="no such folder"):
        load_fashion(FashionDataConfig(path=str(tmp_path / "missing")))


# -- config -------------------------------------------------------------------------------------------------
def test_presets_round_trip_and_match_the_recipes():
    for name in ("seed", "best", "quick"):
        cfg = preset(name, model="gated-cnn")
        cfg.validate()
        assert config_from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    seed, best = preset("seed"), preset("best")
    assert (seed.train.optimizer, seed.train.lr, seed.train.batch_size, seed.train.epochs) == ("adamw", 3e-4, 64, 100)
    assert (seed.augment.hflip, seed.augment.vflip, seed.augment.rotate_degrees) == (0.5, 0.5, 90.0)
    assert best.train.scheduler == "cosine" and best.task.label_smoothing == 0.1 and best.augment.vflip == 0
    with pytest.raises(ValueError, match="unknown config key"):
        config_from_dict({"train": {"lrr": 1.0}})
