"""The GSN synthetic track: fresh seeded images every epoch, validation on the real rows only, the sim-to-real gap.

A 60-image synthetic set written in the official layout (conftest's small_gsn) stands in for the real data.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

import lab28.training.trainer as trainer
from conftest import assert_one_line_error, train_interrupted_in_epoch_two
from lab28.cli import main
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.synthetic_track import SyntheticEpochs

TIME_COLUMNS = ("time", "per_s")  # wall-clock columns differ between identical runs


def _track_args(data: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--preset", "quick", "--val-size", "20", "--track", "synthetic",
            "--synth-per-epoch", "128", "--synth-val-size", "64", "--batch-size", "32", "--epochs", "2",
            "--threads", "1", "--device", "cpu", *extra]


def _train(data: Path, out: Path, name: str, *extra: str) -> Path:
    assert main(["train", *_track_args(data, *extra), "--out", str(out), "--name", name]) == 0
    return out / name


def _metrics(run: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return [{k: v for k, v in r.items() if not any(t in k for t in TIME_COLUMNS)} for r in rows]


def _row_set(images: torch.Tensor) -> set[bytes]:
    return {bytes(img.contiguous().numpy()) for img in images.cpu()}


@pytest.fixture
def recorded(monkeypatch):
    """Records each epoch's training images and every set evaluated, as the trainer sees them."""
    seen: dict[str, list] = {"train": [], "evaluated": []}
    run_epoch, evaluate = trainer.run_epoch, trainer.evaluate

    def recording_run_epoch(train_step, scheduler, epoch, steps, **options):
        seen["train"].append(train_step.train_x.clone())
        return run_epoch(train_step, scheduler, epoch, steps, **options)

    def recording_evaluate(model, task, inputs, targets, *args):
        seen["evaluated"].append(inputs.clone())
        return evaluate(model, task, inputs, targets, *args)

    monkeypatch.setattr(trainer, "run_epoch", recording_run_epoch)
    monkeypatch.setattr(trainer, "evaluate", recording_evaluate)
    return seen


def test_each_epoch_trains_on_fresh_images_and_validates_on_real_rows_only(small_gsn, tmp_path, recorded, capsys):
    run = _train(small_gsn, tmp_path, "s")
    first, second = recorded["train"]
    assert first.shape == second.shape == (128, 1, 28, 28)
    assert not _row_set(first) & _row_set(second)  # epoch 2 is new images, not a reshuffle of epoch 1
    real_val = load_gsn(small_gsn).split_last(20)[1].images
    train_rows = _row_set(first) | _row_set(second)
    assert not train_rows & _row_set(real_val)
    # Evaluated are the real validation rows (monitored, also for the raw weights) and one fixed synthetic set
    # per epoch, nothing else.
    evaluated = recorded["evaluated"]
    synthetic = [x for x in evaluated if not torch.equal(x, real_val)]
    assert len(evaluated) - len(synthetic) >= 2 and len(synthetic) == 2
    assert torch.equal(synthetic[0], synthetic[1]) and synthetic[0].shape[0] == 64
    assert not _row_set(synthetic[0]) & train_rows
    # The track is named in config.json, data.json and the start line; early stopping watches the real rows.
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["track"] == "synthetic" and config["train"]["early_stopping"]["monitor"] == "val_accuracy"
    assert json.loads((run / "data.json").read_text())["synth_per_epoch"] == 128
    out = capsys.readouterr().out
    assert "track=synthetic (128 fresh synthetic images per epoch, real fraction 0); validation on real images" in out
    rows = _metrics(run)
    assert {"val_accuracy", "val_synth_accuracy", "val_synth_loss"} <= set(rows[0])
    best = json.loads((run / "final_metrics.json").read_text())["best_epoch"]
    assert float(rows[best - 1]["val_accuracy"]) == max(float(r["val_accuracy"]) for r in rows)


def test_a_run_repeats_under_its_seeds_and_another_seed_draws_other_images(small_gsn, tmp_path):
    a, b = _train(small_gsn, tmp_path, "a"), _train(small_gsn, tmp_path, "b")
    assert _metrics(a) == _metrics(b)
    real = load_gsn(small_gsn).split_last(20)[0]
    one, other = SyntheticEpochs(real, 32, 0.0, 1, 0), SyntheticEpochs(real, 32, 0.0, 2, 0)
    assert torch.equal(one(3)[0], one(3)[0]) and not torch.equal(one(3)[0], other(3)[0])


def test_a_resumed_run_regenerates_the_epochs_it_missed(small_gsn, tmp_path, monkeypatch):
    whole = _train(small_gsn, tmp_path, "whole", "--epochs", "3")
    train_interrupted_in_epoch_two(monkeypatch, ["train", *_track_args(small_gsn, "--epochs", "3"), "--out",
                                                 str(tmp_path), "--name", "cut"])
    assert len(_metrics(tmp_path / "cut")) == 1
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    assert _metrics(tmp_path / "cut") == _metrics(whole)


@pytest.mark.parametrize("fraction, real_rows", [(0.0, 0), (0.5, 64), (1.0, 128)])
def test_real_fraction_draws_that_share_from_the_real_training_rows(small_gsn, fraction, real_rows):
    train, val = load_gsn(small_gsn).split_last(20)
    epochs = SyntheticEpochs(train, 128, fraction, 1, 0)
    images, counts = epochs(1)
    assert images.shape == (128, 1, 28, 28) and images.dtype == torch.uint8 and counts.shape == (128, 6)
    real = _row_set(train.images)
    from_real = sum(bytes(img.numpy()) in real for img in images)
    assert from_real == real_rows
    assert not _row_set(images) & _row_set(val.images)  # the validation rows are never drawn
    assert (counts.sum(dim=1) == 10).all()
    if fraction:  # counts travel with their images
        row = next(i for i, img in enumerate(images) if bytes(img.numpy()) in real)
        match = next(i for i, img in enumerate(train.images) if torch.equal(img, images[row]))
        assert torch.equal(counts[row], train.counts[match])


@pytest.mark.parametrize("flags, fragment", [
    (["--real-fraction", "1.5"], "real_fraction must be in [0, 1], got 1.5"),
    (["--synth-per-epoch", "0"], "synth_per_epoch must be >= 1"),
    (["--track", "sideways"], "unknown track 'sideways'; choose one of protocol, synthetic"),
    (["--track", "protocol", "--real-fraction", "0.5"], "real_fraction applies to the synthetic track only"),
])
def test_a_bad_track_value_is_one_line_before_any_folder(small_gsn, tmp_path, capsys, flags, fragment):
    out = tmp_path / "runs"
    assert main(["train", *_track_args(small_gsn), *flags, "--out", str(out), "--name", "r"]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert not out.exists()


def test_flags_reach_the_config():
    import argparse

    from lab28.workloads.gsn.cli_flags import add_train_arguments, config_from_args

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    cfg = config_from_args(parser.parse_args(["--synth", "--track", "synthetic", "--synth-per-epoch", "500",
                                              "--real-fraction", "0.25", "--synth-val-size", "300"]))
    assert (cfg.data.track, cfg.data.synth_per_epoch, cfg.data.real_fraction, cfg.data.synth_val_size) == (
        "synthetic", 500, 0.25, 300)
    default = config_from_args(parser.parse_args(["--synth"]))
    assert (default.data.track, default.data.real_fraction) == ("protocol", 0.0)
    help_text = parser.format_help()
    assert "--synth-per-epoch" in help_text and "(images)" in help_text and "fraction 0..1" in help_text


def test_the_report_names_the_track_and_shows_the_gap(small_gsn, tmp_path):
    assert main(["suite", "gsn", *_track_args(small_gsn, "--epochs", "1"), "--out", str(tmp_path)]) == 0
    suite = next(p for p in tmp_path.iterdir() if (p / "report.md").is_file())
    report = (suite / "report.md").read_text()
    assert ("Track: synthetic (128 fresh synthetic images per epoch, real fraction 0); validation on real images."
            in report)
    assert "## Sim-to-real gap (synthetic track)" in report and (suite / "figures" / "sim_to_real_gap.png").is_file()


def test_the_free_preset_trains_counting_resnet_p4_gated_on_the_synthetic_track(small_gsn, tmp_path):
    """`--preset free`: lab28's own architecture on fresh synthetic images with a tenth of real ones; a short
    version of it learns (the training loss drops) and validates on the real rows."""
    out = tmp_path / "runs"
    assert main(["train", "--data", str(small_gsn), "--preset", "free", "--val-size", "20", "--synth-per-epoch",
                 "256", "--synth-val-size", "32", "--epochs", "3", "--threads", "1", "--device", "cpu",
                 "--out", str(out), "--name", "free"]) == 0
    config = json.loads((out / "free" / "config.json").read_text())
    assert config["preset"] == "free" and config["model"]["name"] == "counting-resnet-p4-gated"
    assert config["model"]["hidden"] == 256
    assert config["data"]["track"] == "synthetic" and config["data"]["real_fraction"] == 0.1
    rows = _metrics(out / "free")
    assert len(rows) == 3 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert "val_synth_accuracy" in rows[0]
    # beside a protocol-track run of the lab model in one folder, the report tells the runs apart by track and model
    assert main(["train", "--data", str(small_gsn), "--preset", "quick", "--model", "shape-classifier", "--val-size",
                 "20", "--epochs", "1", "--threads", "1", "--device", "cpu", "--out", str(out),
                 "--name", "protocol"]) == 0
    assert main(["report", str(out)]) == 0
    table = [line for line in (out / "report.md").read_text().splitlines() if line.startswith("| `")]
    assert table[0].startswith("| `free` | synthetic | `counting-resnet-p4-gated` | joint |")
    assert table[1].startswith("| `protocol` | protocol | `shape-classifier` | joint |")


def test_the_synthetic_preset_trains_the_fixed_backbone_on_the_synthetic_track(small_gsn, tmp_path):
    """`--preset synthetic`: the lab's own model, its big Linear started as a sum-pool and trained at a tenth of the
    rate, on fresh synthetic images with a tenth of real ones; a short version of it learns and validates on the
    real rows."""
    out = tmp_path / "runs"
    assert main(["train", "--data", str(small_gsn), "--preset", "synthetic", "--val-size", "20",
                 "--synth-per-epoch", "256", "--synth-val-size", "32", "--epochs", "3", "--threads", "1",
                 "--device", "cpu", "--out", str(out), "--name", "fixed"]) == 0
    config = json.loads((out / "fixed" / "config.json").read_text())
    assert config["preset"] == "synthetic" and config["model"]["name"] == "shape-classifier"
    assert config["model"]["fc_init"] == "pooled" and config["model"]["dropout"] == 0.0
    assert config["model"]["fc_lr_scale"] == 0.1
    assert config["data"]["track"] == "synthetic" and config["data"]["real_fraction"] == 0.1
    assert config["train"]["lr"] == 2e-3 and config["train"]["scheduler"] == "cosine"
    rows = _metrics(out / "fixed")
    assert len(rows) == 3 and float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])
    assert "val_synth_accuracy" in rows[0]


@pytest.mark.parametrize("name", ["synthetic", "free"])
def test_the_synthetic_track_presets_need_a_data_set_or_synth(name, tmp_path, capsys):
    assert main(["train", "gsn", "--preset", name, "--out", str(tmp_path / "runs")]) == 2
    assert_one_line_error(capsys.readouterr().err, f"the {name} preset needs --data DIR")
    assert not (tmp_path / "runs").exists()
