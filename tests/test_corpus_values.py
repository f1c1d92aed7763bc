"""Hostile values: settings that are well-formed but impossible, devices this machine lacks, and edited run folders.

Each gives one clear line, exit code 2, no traceback and no output: every value is checked before a run folder
exists, and `report` reads and checks all its inputs before it writes anything. Like tests/test_corpus.py, each
case builds its input in a fresh folder and names the command that must refuse it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from conftest import assert_one_line_error
from lab28.cli import main
from test_fashion import write_fashion

QUICK = ["--preset", "quick", "--synth-n", "80", "--val-size", "20", "--epochs", "1", "--threads", "1",
         "--progress", "false"]


def fashion_quick(data: Path) -> list[str]:
    return ["--preset", "quick", "--data", str(data), "--val-size", "20", "--test-size", "20", "--epochs", "1",
            "--threads", "1", "--progress", "false", "--tensorboard", "false"]


@pytest.fixture(scope="module")
def gsn_base(tmp_path_factory):
    """A tiny GSN data folder and a finished one-epoch run trained on synthetic data."""
    root = tmp_path_factory.mktemp("values-gsn")
    assert main(["data", "synth", "gsn", "--n", "24", "--seed", "1", "--out", str(root / "gsn")]) == 0
    assert main(["train", "--synth", *QUICK, "--out", str(root / "runs"), "--name", "run"]) == 0
    return root


@pytest.fixture(scope="module")
def gsn_suite(tmp_path_factory):
    """A finished GSN suite (all three settings, one epoch each)."""
    root = tmp_path_factory.mktemp("values-gsn-suite")
    assert main(["suite", "gsn", "--synth", *QUICK, "--out", str(root), "--name", "suite"]) == 0
    return root / "suite"


@pytest.fixture(scope="module")
def fashion_data(tmp_path_factory):
    return write_fashion(tmp_path_factory.mktemp("values-fashion"), n_train=120, n_test=20)


@pytest.fixture(scope="module")
def fashion_suite(tmp_path_factory, fashion_data):
    """A finished Fashion-MNIST suite of one model (one epoch)."""
    root = tmp_path_factory.mktemp("values-fashion-suite")
    assert main(["suite", "fashion", "--models", "simple-cnn", *fashion_quick(fashion_data), "--out", str(root),
                 "--name", "suite"]) == 0
    return root / "suite"


# -- case builders: (tmp, need) -> argv; need(name) gives a module fixture ------------------------------------
def gsn_train(*flags):
    return lambda tmp, need: ["train", "--synth", *QUICK, *flags, "--out", str(tmp / "out")]


def gsn_suite_cmd(*flags):
    return lambda tmp, need: ["suite", "gsn", "--synth", *QUICK, *flags, "--out", str(tmp / "out")]


def fashion_train(*flags):
    return lambda tmp, need: ["fashion", "train", *fashion_quick(need("fashion_data")), *flags,
                              "--out", str(tmp / "out")]


def fashion_suite_cmd(*flags):
    return lambda tmp, need: ["suite", "fashion", "--models", "simple-cnn", *fashion_quick(need("fashion_data")),
                              *flags, "--out", str(tmp / "out")]


def gsn_config(text: str):
    """`lab28 train --config` with a raw JSON text (it may carry NaN/Infinity literals, which Python's json reads)."""
    def build(tmp, need):
        (tmp / "config.json").write_text(text)
        return ["train", "--config", str(tmp / "config.json"), "--out", str(tmp / "out")]
    return build


def fashion_config(text: str):
    def build(tmp, need):
        (tmp / "config.json").write_text(text)
        return ["fashion", "train", "--config", str(tmp / "config.json"), "--data", str(need("fashion_data")),
                "--out", str(tmp / "out")]
    return build


def _run_copy(tmp: Path, base: Path) -> Path:
    run = tmp / "run"
    shutil.copytree(base / "runs" / "run", run)
    return run


def _edit_json(path: Path, edit) -> None:
    data = json.loads(path.read_text())
    path.write_text(json.dumps(edit(data)))


def on_run(command: str, edit=None, device: str | None = None):
    """eval/predict/resume of a copy of the finished GSN run, after `edit(run_dir)`."""
    def build(tmp, need):
        run = _run_copy(tmp, need("gsn_base"))
        if edit is not None:
            edit(run)
        flags = ["--device", device] if device else []
        if command == "eval":
            return ["eval", str(run), "--data", str(need("gsn_base") / "gsn"), "--out", str(tmp / "out" / "m.json"),
                    *flags]
        if command == "predict":
            image = next((need("gsn_base") / "gsn" / "data").glob("*.png"))
            return ["predict", str(run), str(image), "--out", str(tmp / "out" / "p.csv"), *flags]
        return ["train", "--resume", str(run)]
    return build


def cuda_config(run: Path) -> None:
    _edit_json(run / "config.json", lambda c: {**c, "train": {**c["train"], "device": "cuda"}})


def unfinished_on_cuda(run: Path) -> None:
    """A run stopped mid-way on a GPU machine. The device is checked before last.pt is read, so the finished run's
    missing last.pt does not matter."""
    cuda_config(run)
    (run / "status.json").write_text(json.dumps({"status": "running"}))


def unfinished_with_nan_lr(run: Path) -> None:
    (run / "status.json").write_text(json.dumps({"status": "running"}))
    _edit_json(run / "config.json", lambda c: {**c, "train": {**c["train"], "lr": float("nan")}})  # written as NaN


def string_format(run: Path) -> None:
    state = torch.load(run / "best.pt", weights_only=True)
    state["format"] = "1"
    torch.save(state, run / "best.pt")


def on_suite(workload: str, edit, command: str = "report"):
    """`lab28 report` (or `lab28 fashion report`) of a copy of a finished suite with its report removed, after
    `edit(suite_dir)`."""
    def build(tmp, need):
        suite = tmp / "suite"
        shutil.copytree(need("gsn_suite" if workload == "gsn" else "fashion_suite"), suite)
        for name in ("report.md", "report.html"):
            (suite / name).unlink()
        shutil.rmtree(suite / "figures")
        edit(suite)
        return ["fashion", "report", str(suite)] if command == "fashion report" else ["report", str(suite)]
    return build


def as_list(name: str, run: str | None = None):
    def edit(suite: Path) -> None:
        path = suite / run / name if run else suite / name
        path.write_text(json.dumps([json.loads(path.read_text())]))
    return edit


def edit_csv(run: str, edit):
    def apply(suite: Path) -> None:
        path = suite / run / "metrics.csv"
        path.write_text(edit(path.read_text()))
    return apply


def garbage_cell(text: str) -> str:
    header, first, *rest = text.splitlines()
    cells = first.split(",")
    cells[header.split(",").index("val_accuracy")] = "abc"
    return "\n".join([header, ",".join(cells), *rest]) + "\n"


def drop_column(column: str):
    def edit(text: str) -> str:
        rows = [line.split(",") for line in text.splitlines()]
        k = rows[0].index(column)
        return "\n".join(",".join(r[:k] + r[k + 1:]) for r in rows) + "\n"
    return edit


def edit_final(run: str, edit):
    def apply(suite: Path) -> None:
        path = suite / run / "final_metrics.json"
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return apply


CASES = {
    # non-finite floats, GSN flags (train and suite)
    "gsn lr inf": (gsn_train("--lr", "inf"), "train.lr must be a finite number, got inf"),
    "gsn weight decay nan": (gsn_train("--weight-decay", "nan"), "train.weight_decay must be a finite number"),
    "gsn lambda nan": (gsn_train("--lam", "nan"), "task.lam must be a finite number"),
    "gsn warmup inf": (gsn_train("--warmup-epochs", "inf"), "train.warmup_epochs must be a finite number"),
    "gsn dropout nan": (gsn_train("--dropout", "nan"), "model.dropout must be a finite number"),
    "gsn weight average nan": (gsn_train("--weight-average", "nan"), "train.weight_average must be a finite number"),
    "gsn class readout weight nan": (gsn_train("--class-readout-weight", "nan"),
                                     "task.class_readout_weight must be a finite number"),
    "gsn min delta inf": (gsn_train("--min-delta", "inf"), "train.early_stopping.min_delta must be a finite number"),
    "gsn noise variance nan": (gsn_train("--noise-variance", "nan"), "augment.noise_variance must be a finite"),
    "gsn suite lr nan": (gsn_suite_cmd("--lr", "nan"), "train.lr must be a finite number"),
    # non-finite floats, GSN config files
    "gsn config lr NaN": (gsn_config('{"train": {"lr": NaN}}'),
                          "config.json: bad config file: train.lr must be a finite"),
    "gsn config erase area Infinity": (gsn_config('{"augment": {"erase_area": [0.01, Infinity]}}'),
                                       "augment.erase_area must be a finite number"),
    "gsn config lambda -Infinity": (gsn_config('{"task": {"lam": -Infinity}}'), "task.lam must be a finite number"),
    "gsn config 1e400": (gsn_config('{"train": {"weight_decay": 1e400}}'), "train.weight_decay must be a finite"),
    "gsn config is a list": (gsn_config('[{"train": {}}]'), "config.json: bad config file: expected a JSON object"),
    "gsn config erase area of 3": (gsn_config('{"augment": {"erase_area": [0.1, 0.2, 0.3]}}'),
                                   "config key 'erase_area' must be a list of 2 numbers"),
    # integers out of range
    "gsn config eval batch 0": (gsn_config('{"train": {"eval_batch_size": 0}}'), "eval_batch_size must be >= 1, got 0"),
    "gsn config eval batch negative": (gsn_config('{"train": {"eval_batch_size": -5}}'),
                                       "eval_batch_size must be >= 1, got -5"),
    "gsn config log every 0": (gsn_config('{"train": {"log_every": 0}}'), "log_every must be >= 1, got 0"),
    "gsn batch size 0": (gsn_train("--batch-size", "0"), "batch_size must be >= 1, got 0"),
    "gsn epochs 0": (gsn_train("--epochs", "0"), "epochs must be >= 1, got 0"),
    "gsn train size negative": (gsn_train("--train-size", "-1"), "train_size must be >= 0"),
    "gsn val size 0": (gsn_train("--val-size", "0"), "val_size must be >= 1, got 0"),
    "gsn synth seed negative": (gsn_train("--synth-seed", "-1"), "synth_seed must be between 0 and 2**64 - 1"),
    "gsn seed too big": (gsn_train("--seed", str(2**64)), "seed must be between 0 and 2**64 - 1"),
    "gsn threads negative": (gsn_train("--threads", "-1"), "threads must be >= 0, got -1"),
    "gsn class readout weight negative": (gsn_train("--class-readout-weight", "-0.5"),
                                          "class_readout_weight must be a finite number >= 0, got -0.5"),
    "gsn noise variance negative": (gsn_train("--noise", "1", "--noise-variance", "-1"), "noise_variance must be >= 0"),
    "gsn suite val size 0": (gsn_suite_cmd("--val-size", "0"), "val_size must be >= 1"),
    # early-stopping monitors the run does not report
    "gsn monitor bogus": (gsn_train("--monitor", "val_bogus"),
                          "early-stopping monitor 'val_bogus' is not a metric of this run; choose one of: val_loss"),
    "gsn monitor of another setting": (gsn_train("--setting", "cls", "--monitor", "val_reg_loss"),
                                       "monitor 'val_reg_loss' is not a metric of this run"),
    "gsn monitor raw without averaging": (gsn_train("--weight-average", "0", "--monitor", "val_raw_accuracy"),
                                          "monitor 'val_raw_accuracy' is not a metric"),
    "gsn suite monitor of one setting": (gsn_suite_cmd("--monitor", "val_cls_loss", "--mode", "min"),
                                         "monitor 'val_cls_loss' is not a metric of this run"),
    # devices this machine lacks (CUDA and MPS are made unavailable for these cases)
    "gsn device gpu": (gsn_train("--device", "gpu"), "unknown device 'gpu'; use one of auto, cpu, cuda, cuda:N, mps"),
    "gsn device mps": (gsn_train("--device", "mps"), "device 'mps' requested but MPS (Apple GPU) is not available"),
    "gsn device cuda": (gsn_train("--device", "cuda"), "device 'cuda' requested but CUDA is not available"),
    "gsn suite device cuda:1": (gsn_suite_cmd("--device", "cuda:1"), "device 'cuda:1' requested but CUDA is not"),
    "eval device cuda": (on_run("eval", device="cuda"), "device 'cuda' requested but CUDA is not available"),
    "eval device gpu": (on_run("eval", device="gpu"), "unknown device 'gpu'"),
    "predict device cuda": (on_run("predict", device="cuda"), "device 'cuda' requested but CUDA is not available"),
    "predict device mps": (on_run("predict", device="mps"), "MPS (Apple GPU) is not available"),
    "eval saved cuda, asked cuda": (on_run("eval", cuda_config, device="cuda"), "CUDA is not available"),
    "resume saved cuda": (on_run("resume", unfinished_on_cuda),
                          "config.json: device 'cuda' requested but CUDA is not available"),
    # edited run folders read by eval/predict
    "eval config is a list": (on_run("eval", as_list("config.json")), "run/config.json: expected a JSON object"),
    "predict config is a list": (on_run("predict", as_list("config.json")),
                                 "run/config.json: expected a JSON object, found a list"),
    "eval checkpoint format string": (on_run("eval", string_format),
                                      "best.pt: not a lab28 checkpoint (format '1' is not a version number)"),
    "resume config with NaN": (on_run("resume", unfinished_with_nan_lr),
                               "config.json: bad config: train.lr must be a finite number"),
    # Fashion-MNIST
    "fashion lr inf": (fashion_train("--lr", "inf"), "train.lr must be a finite number, got inf"),
    "fashion label smoothing nan": (fashion_train("--label-smoothing", "nan"), "task.label_smoothing must be a finite"),
    "fashion rotate degrees inf": (fashion_train("--rotate-degrees", "inf"), "augment.rotate_degrees must be a finite"),
    "fashion dropout nan": (fashion_train("--dropout", "nan"), "model.dropout must be a finite number"),
    "fashion cutmix above 1": (fashion_train("--cutmix", "1.5"), "augmentation probability cutmix must be in [0, 1]"),
    "fashion cutmix nan": (fashion_train("--cutmix", "nan"), "augment.cutmix must be a finite number"),
    "fashion min delta nan": (fashion_train("--min-delta", "nan"), "train.early_stopping.min_delta must be a finite"),
    "fashion dropout 1": (fashion_train("--dropout", "1"), "dropout must be in [0, 1), got 1.0"),
    "fashion config log every 0": (fashion_config('{"train": {"log_every": 0}}'), "log_every must be >= 1, got 0"),
    "fashion split seed negative": (fashion_train("--split-seed", "-1"), "split_seed must be between 0 and 2**64 - 1"),
    "fashion monitor bogus": (fashion_train("--monitor", "val_bogus"),
                              "monitor 'val_bogus' is not a metric of this run; choose one of: val_loss"),
    "fashion monitor nll without smoothing": (fashion_train("--label-smoothing", "0", "--monitor", "val_nll"),
                                              "monitor 'val_nll' is not a metric"),
    "fashion device cuda": (fashion_train("--device", "cuda"), "device 'cuda' requested but CUDA is not available"),
    "fashion device gpu": (fashion_train("--device", "gpu"), "unknown device 'gpu'"),
    "fashion suite weight decay nan": (fashion_suite_cmd("--weight-decay", "nan"),
                                       "train.weight_decay must be a finite"),
    "fashion suite device mps": (fashion_suite_cmd("--device", "mps"), "MPS (Apple GPU) is not available"),
    "fashion suite monitor bogus": (fashion_suite_cmd("--monitor", "val_bogus"), "monitor 'val_bogus' is not a metric"),
    "fashion config label smoothing NaN": (fashion_config('{"task": {"label_smoothing": NaN}}'),
                                           "config.json: bad config file: task.label_smoothing must be a finite"),
    "fashion config eval batch 0": (fashion_config('{"train": {"eval_batch_size": 0}}'),
                                    "eval_batch_size must be >= 1, got 0"),
    "fashion config is a list": (fashion_config("[]"), "config.json: bad config file: expected a JSON object"),
    # edited suite folders read by `lab28 report`
    "report no such folder": (lambda tmp, need: ["report", str(tmp / "nowhere")], "nowhere: no such folder"),
    "report gsn suite.json list": (on_suite("gsn", as_list("suite.json")),
                                   "suite.json: expected a JSON object, found a list"),
    "report gsn settings not names": (on_suite("gsn", lambda s: (s / "suite.json").write_text(
                                          '{"settings": ["../x"]}')),
                                      "suite.json: 'settings' must be a list of run folder names"),
    "report gsn config list": (on_suite("gsn", as_list("config.json", "reg")),
                               "reg/config.json: expected a JSON object, found a list"),
    "report gsn final list": (on_suite("gsn", as_list("final_metrics.json", "joint")),
                              "joint/final_metrics.json: expected a JSON object, found a list"),
    "report gsn metrics garbage": (on_suite("gsn", edit_csv("cls", garbage_cell)),
                                   "cls/metrics.csv, row 2: val_accuracy is not a number: 'abc'"),
    "report gsn metrics missing column": (on_suite("gsn", edit_csv("reg", drop_column("val_rmse"))),
                                          "reg/metrics.csv: missing column 'val_rmse'"),
    "report gsn joint missing loss part": (on_suite("gsn", edit_csv("joint", drop_column("train_reg_loss"))),
                                           "joint/metrics.csv: missing column 'train_reg_loss'"),
    "report gsn metrics empty": (on_suite("gsn", edit_csv("joint", lambda t: "")), "joint/metrics.csv: no epochs"),
    "report gsn final missing metric": (on_suite("gsn", edit_final("reg", lambda f: f["val"].pop("accuracy"))),
                                        "reg/final_metrics.json: missing key 'val.accuracy'"),
    "report gsn final text metric": (on_suite("gsn", edit_final("cls", lambda f: f["val"].update(rmse="low"))),
                                     "cls/final_metrics.json: val.rmse must be a number, found a string"),
    "report gsn final missing runtime": (on_suite("gsn", edit_final("joint", lambda f: f.pop("runtime_s"))),
                                         "joint/final_metrics.json: missing key 'runtime_s'"),
    "report gsn best epoch beyond": (on_suite("gsn", edit_final("joint", lambda f: f.update(best_epoch=9))),
                                     "best_epoch 9 is not one of the 1 epochs in metrics.csv"),
    "report fashion final list": (on_suite("fashion", as_list("final_metrics.json", "simple-cnn")),
                                  "simple-cnn/final_metrics.json: expected a JSON object, found a list"),
    "report fashion metrics garbage": (on_suite("fashion", edit_csv("simple-cnn", garbage_cell)),
                                       "simple-cnn/metrics.csv, row 2: val_accuracy is not a number"),
    "report fashion test missing metric": (on_suite("fashion", edit_final("simple-cnn",
                                                                          lambda f: f["test"].pop("macro_f1")),
                                                    "fashion report"),
                                           "simple-cnn/final_metrics.json: missing key 'test.macro_f1'"),
    "report fashion per-class text": (on_suite("fashion", edit_final("simple-cnn",
                                                                     lambda f: f["val"].update({"f1/Bag": "x"}))),
                                      "val.f1/Bag must be a number"),
    "report fashion suite.json list": (on_suite("fashion", as_list("suite.json"), "fashion report"),
                                       "suite.json: expected a JSON object, found a list"),
}


@pytest.fixture
def no_accelerators(monkeypatch):
    """This machine, for the test: no CUDA and no MPS, whatever the real one has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    if getattr(torch.backends, "mps", None) is not None:
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


@pytest.mark.parametrize("case", sorted(CASES))
def test_cli_refuses_hostile_values(case, request, tmp_path, capsys, no_accelerators):
    build, fragment = CASES[case]
    args = build(tmp_path, request.getfixturevalue)
    before = _snapshot(tmp_path)
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, fragment)
    assert not (tmp_path / "out").exists()  # nothing half-written
    assert _snapshot(tmp_path) == before  # nor anything added to the input folders (no report, no figures)


def _snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


# -- what the cases above cannot show: the successful side ----------------------------------------------------
@pytest.mark.parametrize("workload", ["gsn", "fashion"])
def test_report_of_an_unedited_suite_is_written(workload, request, tmp_path):
    """The suites the report cases edit are complete: unedited, their report is rebuilt."""
    build = on_suite(workload, lambda suite: None)
    args = build(tmp_path, request.getfixturevalue)
    assert main(args) == 0
    assert (tmp_path / "suite" / "report.md").is_file() and (tmp_path / "suite" / "report.html").is_file()
    assert (tmp_path / "suite" / "figures" / "curves_overlaid.png").is_file()


def test_eval_and_predict_fall_back_from_a_saved_cuda_run(gsn_base, tmp_path, no_accelerators):
    """A run trained on a GPU (device cuda, fp16) is evaluated with --device auto on a machine without one."""
    run = _run_copy(tmp_path, gsn_base)
    _edit_json(run / "config.json", lambda c: {**c, "train": {**c["train"], "device": "cuda", "precision": "fp16"}})
    assert main(["eval", str(run), "--data", str(gsn_base / "gsn"), "--out", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["images"] == 24
    image = next((gsn_base / "gsn" / "data").glob("*.png"))
    assert main(["predict", str(run), str(image), "--out", str(tmp_path / "p.csv")]) == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 2


def test_threads_beyond_the_cores_are_capped_with_one_warning(tmp_path, capsys):
    before = torch.get_num_threads()
    try:
        assert main(["train", "--synth", *QUICK, "--threads", "999", "--out", str(tmp_path), "--name", "r"]) == 0
    finally:
        torch.set_num_threads(before)
    cores = os.cpu_count()
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"lab28: warning: threads 999 is more than the {cores} CPU cores here; using {cores}"]
    assert json.loads((tmp_path / "r" / "env.json").read_text())["torch_threads"] == cores
    assert json.loads((tmp_path / "r" / "config.json").read_text())["train"]["threads"] == cores


@pytest.mark.parametrize("workload", ["gsn", "fashion"])
@pytest.mark.parametrize("batch,kept", [(8, []), (128, ["best.pt", "last.pt"])])
def test_diverged_run_names_only_checkpoints_it_has(workload, batch, kept, request, tmp_path, capsys):
    """lr 1e30 makes the loss non-finite at the first step after an update: within epoch 1 with several batches
    per epoch (nothing saved yet), at the start of epoch 2 with one batch per epoch (epoch 1 saved)."""
    flags = ["--epochs", "2", "--lr", "1e30", "--batch-size", str(batch), "--out", str(tmp_path), "--name", "r"]
    if workload == "gsn":
        args = ["train", "--synth", *QUICK, "--weight-average", "0", *flags]
    else:
        args = ["fashion", "train", *fashion_quick(request.getfixturevalue("fashion_data")), *flags]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "training stopped: loss became non-finite" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "r").glob("*.pt")) == kept
    for name in ("best.pt", "last.pt"):
        assert (name in err) == (name in kept), err
    if not kept:
        assert "no epoch completed, so no checkpoint was written" in err
    assert json.loads((tmp_path / "r" / "status.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("workload,setting", [("gsn", "cls"), ("gsn", "reg"), ("gsn", "joint"),
                                              ("fashion", 0.0), ("fashion", 0.1)])
def test_declared_monitors_are_the_reported_metrics(workload, setting):
    """The names a monitor is checked against (declared by the task) are exactly the scalar metrics it reports."""
    from lab28.training.config import TrainConfig
    from lab28.training.trainer import metrics_from_outputs, monitor_choices

    torch.manual_seed(0)
    if workload == "gsn":
        from lab28.workloads.gsn.labels import encode_counts
        from lab28.workloads.gsn.task import GSNTask, GSNTaskConfig

        task = GSNTask(GSNTaskConfig(setting=setting))
        outputs = (torch.randn(12, 135).log_softmax(1), torch.rand(12, 6) * 5)
        counts = torch.tensor([[4, 6, 0, 0, 0, 0], [0, 0, 2, 8, 0, 0]] * 6)
        targets = {"counts": counts, "classes": encode_counts(counts)}
    else:
        from lab28.workloads.classify.task import FashionTask, FashionTaskConfig

        task = FashionTask(FashionTaskConfig(label_smoothing=setting))
        outputs, targets = torch.randn(12, 10), {"labels": torch.arange(12) % 10}
    reported = {k for k in metrics_from_outputs(task, outputs, targets) if "/" not in k}
    choices = monitor_choices(task, TrainConfig())
    assert {c[len("val_"):] for c in choices if c.startswith("val_")} == reported
    assert {c[len("train_"):] for c in choices if c.startswith("train_")} == set(task.loss_names())
    assert "val_raw_accuracy" in monitor_choices(task, TrainConfig(weight_average=0.9))
