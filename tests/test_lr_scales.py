"""Parameter groups at a multiple of the learning rate: the trainer's `lr_scales`, and GSN's `--fc-lr-scale`."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from conftest import train_interrupted_in_epoch_two
from lab28.cli import main
from lab28.training.config import TrainConfig
from lab28.training.optim import current_lr, make_optimizer, make_scheduler, parameter_groups
from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.experiment import build_model

TIME_COLUMNS = ("time", "per_s")  # wall-clock columns differ between identical runs


def test_groups_hold_every_parameter_once_and_a_name_matches_whole_submodules_only():
    model = nn.Sequential(*[nn.Linear(2, 2) for _ in range(11)])
    model.lr_scales = {"1": 0.1}
    groups = parameter_groups(model, 1e-3)
    assert [group["lr"] for group in groups] == [1e-3, pytest.approx(1e-4)]
    scaled = {id(p) for p in groups[1]["params"]}
    assert scaled == {id(p) for p in model[1].parameters()}  # not model[10], whose name also starts with "1"
    assert sorted(id(p) for group in groups for p in group["params"]) == sorted(id(p) for p in model.parameters())


def test_where_names_nest_the_longest_decides():
    model = nn.Sequential(nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)), nn.Linear(2, 2))
    model.lr_scales = {"0.1": 0.5, "0": 0.1}
    groups = {group["lr"]: {id(p) for p in group["params"]} for group in parameter_groups(model, 1.0)}
    assert groups == {1.0: {id(p) for p in model[1].parameters()}, 0.1: {id(p) for p in model[0][0].parameters()},
                      0.5: {id(p) for p in model[0][1].parameters()}}


def test_a_model_without_scales_is_one_group_and_an_unknown_name_is_refused():
    model = nn.Sequential(nn.Linear(2, 2))
    assert [group["lr"] for group in parameter_groups(model, 0.5)] == [0.5]
    model.lr_scales = {"backbone.fc.1": 0.1}
    with pytest.raises(ValueError, match="'backbone.fc.1', which holds no parameters"):
        parameter_groups(model, 0.5)


def _lab_model(fc_lr_scale: float):
    cfg = preset("synthetic")
    cfg.model.fc_lr_scale = fc_lr_scale
    torch.manual_seed(0)
    return build_model(cfg)


def test_adams_first_step_moves_the_big_linear_by_its_share_of_the_rate():
    """Adam's first step moves every weight with a gradient by the rate times the sign of its gradient, so the
    largest move in each layer is that layer's rate: a tenth of it for the backbone's Linear, and the schedule
    keeps the ratio."""
    model = _lab_model(0.1)
    config = TrainConfig(lr=2e-3, scheduler="cosine", epochs=2, warmup_epochs=0.5)
    optimizer = make_optimizer(model, config, torch.device("cpu"))
    scheduler = make_scheduler(optimizer, config, steps_per_epoch=10)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    log_probs, counts = model(torch.rand(8, 1, 28, 28))
    (-log_probs[:, 0].mean() + counts.square().mean()).backward()
    optimizer.step()
    moved = {name: (p.detach() - before[name]).abs().max().item() for name, p in model.named_parameters()}
    assert moved["backbone.fc.1.weight"] == pytest.approx(0.1 * 0.1 * 2e-3, rel=1e-3)  # warm-up starts at 0.1
    assert moved["backbone.convs.6.weight"] == pytest.approx(0.1 * 2e-3, rel=1e-3)
    assert moved["count_head.weight"] == pytest.approx(0.1 * 2e-3, rel=1e-3)
    for _ in range(7):
        scheduler.step()
    rates = [group["lr"] for group in optimizer.param_groups]
    assert rates[0] > 0.1 * 2e-3 and rates[1] == pytest.approx(0.1 * rates[0])
    assert current_lr(optimizer) == rates[0]  # the rate metrics.csv logs is the model's own


def test_a_scale_of_one_is_the_plain_optimizer():
    model = _lab_model(1.0)
    assert model.lr_scales == {} and len(make_optimizer(model, TrainConfig(), torch.device("cpu")).param_groups) == 1


def _args(data: Path, *extra: str) -> list[str]:
    return ["train", "gsn", "--data", str(data), "--preset", "lab", "--val-size", "20", "--batch-size", "16",
            "--epochs", "3", "--scheduler", "cosine", "--warmup-epochs", "0.5", "--threads", "1", "--device", "cpu",
            "--fc-lr-scale", "0.1", *extra]


def test_a_resumed_run_with_a_scaled_linear_ends_as_an_uninterrupted_one(small_gsn, tmp_path, monkeypatch, capsys):
    """An interrupted run with the Linear at a tenth of the rate resumes to the uninterrupted run's metrics. A copy
    whose config.json was edited to another scale is refused in one line: last.pt's optimizer state does not fit."""
    from lab28.workloads.gsn.workload import GSNWorkload

    monkeypatch.setattr(GSNWorkload, "draw_figures", lambda self, run_dir: None)  # nothing here looks at them
    assert main([*_args(small_gsn, "--out", str(tmp_path), "--name", "whole")]) == 0
    train_interrupted_in_epoch_two(monkeypatch, _args(small_gsn, "--out", str(tmp_path), "--name", "cut"))
    edited = shutil.copytree(tmp_path / "cut", tmp_path / "edited")
    config = json.loads((edited / "config.json").read_text())
    config["model"]["fc_lr_scale"] = 1.0  # the optimizer state in last.pt has the Linear in a group of its own
    (edited / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["train", "--resume", str(edited)]) == 2
    err = capsys.readouterr().err.strip()
    assert "last.pt: damaged checkpoint: its optimizer holds parameter groups of" in err and "\n" not in err
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["model"]["fc_lr_scale"] == 0.1
    rows = [list(csv.DictReader(open(tmp_path / run / "metrics.csv"))) for run in ("whole", "cut")]
    untimed = [[{k: v for k, v in row.items() if not any(t in k for t in TIME_COLUMNS)} for row in run] for run in rows]
    assert len(untimed[0]) == 3 and untimed[0] == untimed[1]


@pytest.mark.parametrize("flags, fragment", [
    (["--fc-lr-scale", "0"], "fc_lr_scale must be a positive multiple of the learning rate, got 0.0"),
    (["--fc-lr-scale", "-1"], "fc_lr_scale must be a positive multiple"),
    (["--fc-lr-scale", "nan"], "model.fc_lr_scale must be a finite number, got nan"),
    (["--fc-lr-scale", "inf"], "model.fc_lr_scale must be a finite number"),
    (["--fc-lr-scale", "0.1", "--model", "counting-resnet-p4"], "model 'counting-resnet-p4' has none"),
])
@pytest.mark.parametrize("command", ["train", "suite"])
def test_a_bad_scale_is_one_line_before_any_folder(tmp_path, capsys, flags, fragment, command):
    code = main([command, "gsn", "--synth", "--synth-n", "200", "--out", str(tmp_path / "runs"), *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and fragment in err and "\n" not in err
    assert not (tmp_path / "runs").exists()
