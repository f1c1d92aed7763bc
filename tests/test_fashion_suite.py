"""The Fashion-MNIST suite end to end on tiny IDX files: run folders, report.md, figures, TensorBoard, CLI."""

import json
import sys

import pytest

from lab28.cli import main
from lab28.workloads.classify.config import preset
from lab28.workloads.classify.data import CLASS_NAMES
from lab28.workloads.classify.suite import run_fashion_suite
from lab28.workloads.classify.models import FASHION_MODELS
from test_fashion import write_fashion


def tiny_config(data_dir):
    cfg = preset("quick")
    cfg.data.path, cfg.data.val_size = str(data_dir), 50
    cfg.train.threads, cfg.train.progress = 1, False
    return cfg


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    data = write_fashion(tmp_path_factory.mktemp("fashion-data"))
    return run_fashion_suite(tiny_config(data), tmp_path_factory.mktemp("runs"))


def test_suite_writes_complete_run_folders(suite):
    for model in FASHION_MODELS:
        run = suite / model
        for name in ("config.json", "env.json", "data.json", "metrics.csv", "best.pt", "final_metrics.json",
                     "confusion.csv", "confusion_test.csv", "val_predictions.csv", "figures/curves.png",
                     "figures/confusion.png", "figures/predictions.png", "figures/confusion_test.png"):
            assert (run / name).is_file(), f"{model}/{name}"
        final = json.loads((run / "final_metrics.json").read_text())
        assert final["model"] == model and final["epochs_run"] == 2 and final["params"] > 100_000
        assert 0 <= final["val"]["accuracy"] <= 1 and f"f1/{CLASS_NAMES[6]}" in final["val"]
        assert final["test"] is not None and final["test"]["support/Bag"] == 6 and "t10k" in final["test_note"]
        assert json.loads((run / "status.json").read_text())["status"] == "finished"


def test_report_has_overall_and_per_class_tables(suite):
    report = (suite / "report.md").read_text()
    assert "| model | parameters | val accuracy | val macro F1 | test accuracy |" in report
    assert "| class | simple-cnn P | simple-cnn R | simple-cnn F1 | spatial-attention-cnn P |" in report
    assert "gated-cnn F1 | support |" in report
    for cls in CLASS_NAMES:
        assert f"| {cls} |" in report
    assert "Per-class precision (P), recall (R) and F1 — test set" in report
    assert "No test-set results" not in report
    assert (suite / "figures" / "curves_overlaid.png").is_file()
    assert "data:image/png;base64" in (suite / "report.html").read_text()
    for model in FASHION_MODELS:
        assert f"({model}/figures/predictions.png)" in report and f"({model}/figures/confusion.png)" in report


def test_tensorboard_events_read_back(suite):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(suite / "simple-cnn" / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    tags = acc.Tags()
    for tag in ("loss/train", "loss/val", "accuracy/val", "macro_f1/val", "lr", "hparam/val_accuracy"):
        assert tag in tags["scalars"], tag
    assert [e.step for e in acc.Scalars("accuracy/val")] == [1, 2]
    rows = (suite / "simple-cnn" / "metrics.csv").read_text().splitlines()
    assert len(rows) == 3  # header + two epochs: one TensorBoard step per metrics.csv row
    assert "predictions/val" in tags["images"] and acc.Images("predictions/val")[0].width > 100


def test_tensorboard_missing_is_a_note_not_a_failure(monkeypatch, capsys, tmp_path):
    from lab28.workloads.classify.experiment import TensorBoardLog

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # makes the import raise ImportError
    assert TensorBoardLog.open(tmp_path / "tb") is None
    assert "not installed" in capsys.readouterr().out and not (tmp_path / "tb").exists()


def test_cli_suite_without_test_set_says_so(tmp_path):
    data = write_fashion(tmp_path / "data", n_test=0)
    assert main(["suite", "fashion-mnist", "--preset", "quick", "--data", str(data), "--val-size", "50",
                 "--epochs", "1", "--threads", "1", "--progress", "false", "--tensorboard", "false",
                 "--models", "simple-cnn", "--out", str(tmp_path / "runs")]) == 0
    suite_dir = tmp_path / "runs" / "fashion-mnist-suite-quick"
    final = json.loads((suite_dir / "simple-cnn" / "final_metrics.json").read_text())
    assert final["test"] is None and "no test set" in final["test_note"]
    assert not (suite_dir / "simple-cnn" / "tensorboard").exists()
    report = (suite_dir / "report.md").read_text()
    assert "No test-set results" in report and "| test accuracy |" not in report
    assert "Per-class precision (P), recall (R) and F1 — validation split" in report


def test_cli_train_flags_reach_the_config(tmp_path, capsys):
    data = write_fashion(tmp_path / "data")
    assert main(["train", "fashion-mnist", "--preset", "quick", "--model", "gated-cnn", "--data", str(data),
                 "--val-size", "50", "--train-size", "40", "--epochs", "1", "--lr", "0.01", "--threads", "1",
                 "--progress", "false", "--tensorboard", "false", "--out", str(tmp_path / "runs")]) == 0
    run_dir = tmp_path / "runs" / "gated-cnn"
    cfg = json.loads((run_dir / "config.json").read_text())
    assert run_dir.name == "gated-cnn" and cfg["model"]["name"] == "gated-cnn" and cfg["train"]["lr"] == 0.01
    assert json.loads((run_dir / "data.json").read_text())["train_size"] == 40
    for flags, fragment in ((["--model", "nope"], "unknown model 'nope'"), (["--hflip", "2"], "bad configuration")):
        capsys.readouterr()
        assert main(["train", "fashion-mnist", *flags, "--data", str(data), "--out", str(tmp_path / "bad")]) == 2
        assert fragment in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


@pytest.mark.parametrize("cutmix", [0.0, 0.5])
def test_interrupted_fashion_run_resumes_to_the_same_result(tmp_path, monkeypatch, cutmix):
    """Ctrl-C in epoch 2 leaves an 'interrupted' folder; --resume ends where an uninterrupted run ends (CutMix's
    draws come from the run's generator too, so they resume with it)."""
    from lab28.errors import Lab28Error
    from lab28.workloads.classify.experiment import resume_fashion, run_fashion
    from lab28.workloads.classify.task import FashionTask

    data = write_fashion(tmp_path / "data")
    cfg = tiny_config(data)
    cfg.train.epochs, cfg.tensorboard, cfg.augment.cutmix = 3, False, cutmix
    reference = run_fashion(cfg, tmp_path, "reference", draw_figures=False)
    original, calls = FashionTask.prepare_batch, {"n": 0}

    def interrupt(self, images, labels, train, generator=None):
        if train:
            calls["n"] += 1
            if calls["n"] == 7:  # epoch 2, step 2 (150 training images, batch 32: 5 steps per epoch)
                raise KeyboardInterrupt
        return original(self, images, labels, train, generator)

    monkeypatch.setattr(FashionTask, "prepare_batch", interrupt)
    with pytest.raises(Lab28Error, match="interrupted during epoch 2.*--resume"):
        run_fashion(cfg, tmp_path, "victim", draw_figures=False)
    victim = tmp_path / "victim"
    assert json.loads((victim / "status.json").read_text())["status"] == "interrupted"
    monkeypatch.setattr(FashionTask, "prepare_batch", original)
    resume_fashion(victim, draw_figures=False)
    a = json.loads((reference / "final_metrics.json").read_text())
    b = json.loads((victim / "final_metrics.json").read_text())
    assert a["val"] == b["val"] and a["epochs_run"] == b["epochs_run"] == 3


def test_lab28_suite_fashion_with_jobs_matches_sequential(tmp_path):
    """`lab28 suite fashion --jobs 2` trains the models in worker processes with the same results as one by one."""
    from lab28.cli import main

    data = write_fashion(tmp_path / "data", n_test=0)
    args = ["suite", "fashion", "--preset", "quick", "--data", str(data), "--val-size", "50", "--epochs", "1",
            "--threads", "1", "--tensorboard", "false", "--models", "simple-cnn,gated-cnn"]
    assert main([*args, "--out", str(tmp_path / "seq")]) == 0
    assert main([*args, "--out", str(tmp_path / "par"), "--jobs", "2"]) == 0
    for model in ("simple-cnn", "gated-cnn"):
        seq = json.loads((tmp_path / "seq" / "fashion-mnist-suite-quick" / model / "final_metrics.json").read_text())
        par = json.loads((tmp_path / "par" / "fashion-mnist-suite-quick" / model / "final_metrics.json").read_text())
        assert seq["val"] == par["val"], model
    suite = json.loads((tmp_path / "par" / "fashion-mnist-suite-quick" / "suite.json").read_text())
    assert suite["status"] == "finished" and suite["jobs"] == 2
    assert "| gated-cnn |" in (tmp_path / "par" / "fashion-mnist-suite-quick" / "report.md").read_text()


def test_lab28_report_rewrites_a_fashion_suite_report(suite, capsys):
    """`lab28 report DIR` tells a Fashion-MNIST suite from a GSN one by its suite.json."""
    from lab28.cli import main

    (suite / "report.md").unlink()
    assert main(["report", str(suite)]) == 0
    assert "| class | simple-cnn P |" in (suite / "report.md").read_text()
    assert str(suite / "report.md") in capsys.readouterr().out
