"""The moving average of the weights: exact values on a hand-made layer, and what a run saves and resumes."""

import csv

import pytest
import torch
import torch.nn as nn

from lab28.training.averaging import WeightAverage


def test_average_follows_the_ramped_decay_exactly():
    layer = nn.Linear(2, 1)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 2.0]]))
        layer.bias.fill_(0.0)
    average = WeightAverage(layer, decay=0.9)
    expected_weight, expected_bias = torch.tensor([[1.0, 2.0]]), torch.tensor([0.0])
    for t, bias in enumerate([1.0, 3.0, -2.0], start=1):
        with torch.no_grad():
            layer.bias.fill_(bias)
        average.update()
        decay = min(0.9, (1 + t) / (10 + t))  # 2/11, 3/12, 4/13: the ramp, below 0.9
        expected_bias = decay * expected_bias + (1 - decay) * bias
        assert average.current_decay() == pytest.approx(decay)
        assert torch.allclose(average.model.bias, expected_bias)
        assert torch.equal(average.model.weight, expected_weight)  # unchanged weights stay put
    assert average.updates == 3
    assert not average.model.weight.requires_grad  # the copy never trains


def test_the_ramp_ends_at_the_asked_decay_and_integer_buffers_are_copied():
    net = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    average = WeightAverage(net, decay=0.5)
    net.train()
    net(torch.randn(8, 3))  # BatchNorm counts the batch and moves its running mean
    average.update()
    assert int(average.model[1].num_batches_tracked) == 1  # copied, not averaged
    # Started at 0 and moved towards the live running mean by 1 - 2/11 (the first step of the ramp).
    assert torch.allclose(average.model[1].running_mean, (1 - 2 / 11) * net[1].running_mean)
    for _ in range(9):
        average.update()
    assert average.current_decay() == 0.5  # the ramp (11/20 after ten updates) is capped at the asked decay


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(nn.Linear(1, 1), decay)


def test_config_refuses_a_decay_of_one():
    from lab28.training.config import TrainConfig

    with pytest.raises(ValueError, match="weight_average"):
        TrainConfig(weight_average=1.0).validate()
    TrainConfig(weight_average=0.0).validate()  # 0 = off


def _tiny_config(epochs: int):
    from lab28.workloads.gsn.config import preset

    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 200, 40
    cfg.train.epochs, cfg.train.progress, cfg.train.batch_size = epochs, False, 32
    cfg.train.weight_average = 0.9
    return cfg


def test_a_run_monitors_and_saves_the_average_and_resumes_it(tmp_path):
    """best.pt holds the averaged weights (what was evaluated); last.pt holds both, and resuming continues both."""
    from lab28.workloads.gsn.experiment import build_model, load_data
    from lab28.workloads.gsn.task import GSNTask
    from lab28.training.checkpoint import load_checkpoint
    from lab28.training.trainer import fit

    cfg = _tiny_config(epochs=1)
    train, val = load_data(cfg)
    torch.manual_seed(1)
    model = build_model(cfg)
    task = GSNTask(cfg.task, cfg.augment)
    fit(model, task, (train.images, train.counts), (val.images, val.counts), cfg.train, tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert rows[0]["val_loss"] != rows[0]["val_raw_loss"]  # two models evaluated
    last, best = load_checkpoint(tmp_path / "last.pt"), load_checkpoint(tmp_path / "best.pt")
    steps = 160 // 32
    assert last["average"]["updates"] == steps
    for key, value in best["model"].items():  # the one epoch is the best: best.pt is its average
        assert torch.equal(value, last["average"]["weights"][key]), key
    assert any(not torch.equal(v, last["model"][k]) for k, v in last["average"]["weights"].items())

    # Resume for one more epoch: the average carries on from its saved state instead of restarting.
    cfg.train.epochs = 2
    fit(build_model(cfg), task, (train.images, train.counts), (val.images, val.counts), cfg.train, tmp_path,
        resume=last)
    assert load_checkpoint(tmp_path / "last.pt")["average"]["updates"] == 2 * steps
    assert len(list(csv.DictReader(open(tmp_path / "metrics.csv")))) == 2
