"""Early stopping: tables of metric sequences -> the epoch at which training stops."""

import pytest

from lab28.training.early_stopping import EarlyStopping, EarlyStoppingConfig


def stop_epoch(values, mode, patience, min_delta=0.0):
    es = EarlyStopping(EarlyStoppingConfig("m", mode, patience, min_delta))
    for epoch, v in enumerate(values, start=1):
        if es.step({"m": v}, epoch):
            return epoch, es.best_epoch
    return None, es.best_epoch


@pytest.mark.parametrize("values,mode,patience,min_delta,expected", [
    ([0.1, 0.2, 0.3, 0.4], "max", 2, 0.0, (None, 4)),  # always improving: never stops
    ([0.5, 0.4, 0.4, 0.4], "max", 2, 0.0, (4, 1)),  # three misses > patience 2 -> stop at epoch 4
    ([0.5, 0.4, 0.6, 0.4, 0.4, 0.4], "max", 2, 0.0, (6, 3)),  # the counter resets on improvement
    ([1.0, 0.9, 0.95, 0.96, 0.97], "min", 2, 0.0, (5, 2)),
    ([1.0, 0.99, 0.985, 0.984], "min", 1, 0.02, (3, 1)),  # gains below min_delta do not count
    ([0.3, 0.3], "max", 0, 0.0, (2, 1)),  # patience 0: stop at the first miss; equal is no gain
    ([float("nan"), 0.2, float("nan"), float("nan")], "max", 1, 0.0, (4, 2)),  # NaN never improves
])
def test_stop_epoch_table(values, mode, patience, min_delta, expected):
    assert stop_epoch(values, mode, patience, min_delta) == expected


def test_reason_and_state_round_trip():
    es = EarlyStopping(EarlyStoppingConfig("val_accuracy", "max", 0))
    es.step({"val_accuracy": 0.5}, 1)
    assert es.step({"val_accuracy": 0.4}, 2)
    assert "val_accuracy did not improve on 0.5000 (epoch 1)" in es.reason
    other = EarlyStopping(EarlyStoppingConfig("val_accuracy", "max", 0))
    other.load_state_dict(es.state_dict())
    assert other.best == 0.5 and other.best_epoch == 1


def test_bad_config_and_missing_metric():
    with pytest.raises(ValueError):
        EarlyStopping(EarlyStoppingConfig("m", "up", 1))
    with pytest.raises(ValueError):
        EarlyStopping(EarlyStoppingConfig("m", "max", -1))
    with pytest.raises(KeyError, match="not among the metrics"):
        EarlyStopping(EarlyStoppingConfig("m", "max", 1)).step({"other": 1.0}, 1)


def test_cosine_schedule_with_warmup():
    import torch

    from lab28.training.config import TrainConfig
    from lab28.training.optim import make_scheduler

    opt = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    sched = make_scheduler(opt, TrainConfig(epochs=10, scheduler="cosine", warmup_epochs=1), steps_per_epoch=10)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[10] == pytest.approx(1.0)
    assert lrs[55] == pytest.approx(0.5, abs=0.02) and lrs[-1] < 0.01
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # monotone after warm-up
    assert make_scheduler(opt, TrainConfig(), 10) is None  # constant lr: no scheduler at all
