"""Starting a run from an earlier run's weights (train.init_from, --init-from): fine-tuning for every workload.

The source is a short synthetic-track run of the quick preset; conftest's 60-image small_gsn stands in for the real
images it is fine-tuned on.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import lab28.runs.lifecycle as lifecycle
import lab28.training.trainer as trainer
from conftest import assert_one_line_error, train_interrupted_in_epoch_two
from lab28.cli import main
from lab28.training.checkpoint import load_checkpoint

TIME_COLUMNS = ("time", "per_s")  # wall-clock columns differ between identical runs


def _args(data: Path, *extra: str) -> list[str]:
    return ["--data", str(data), "--preset", "quick", "--val-size", "20", "--batch-size", "32", "--threads", "1",
            "--device", "cpu", *extra]


def _no_figures(patch: pytest.MonkeyPatch) -> None:
    """Figures are most of a tiny run's time, and nothing here looks at them."""
    from lab28.workloads.gsn.workload import GSNWorkload

    patch.setattr(GSNWorkload, "draw_figures", lambda self, run_dir: None)


@pytest.fixture(autouse=True)
def no_figures(monkeypatch):
    _no_figures(monkeypatch)


@pytest.fixture(scope="module")
def source(small_gsn, tmp_path_factory) -> Path:
    """A finished synthetic-track run (fresh synthetic images, 2 epochs): the weights to fine-tune."""
    out = tmp_path_factory.mktemp("init-source")
    with pytest.MonkeyPatch.context() as patch:
        _no_figures(patch)
        assert main(["train", *_args(small_gsn, "--track", "synthetic", "--synth-per-epoch", "256",
                                     "--synth-val-size", "32", "--epochs", "2"), "--out", str(out),
                     "--name", "synth"]) == 0
    return out / "synth"


def _metrics(run: Path) -> list[dict[str, str]]:
    rows = list(csv.DictReader(open(run / "metrics.csv")))
    return [{k: v for k, v in r.items() if not any(t in k for t in TIME_COLUMNS)} for r in rows]


def test_a_run_starts_from_the_best_weights_of_the_run_it_names(source, small_gsn, tmp_path, monkeypatch, capsys):
    """Through the Python API: the model handed to training and the moving average both start from best.pt's
    weights exactly, and the data-dependent start never runs over them."""
    import lab28
    from lab28.workloads.gsn.workload import GSNWorkload

    seen: dict[str, dict] = {}
    original_fit, original_average = lifecycle.fit, trainer.WeightAverage

    def recording_fit(model, *args, **kwargs):
        seen["model"] = {k: v.clone() for k, v in model.state_dict().items()}
        return original_fit(model, *args, **kwargs)

    class RecordingAverage(original_average):
        def __init__(self, model, decay):
            super().__init__(model, decay)
            seen["average"] = {k: v.clone() for k, v in self.model.state_dict().items()}

    def no_data_start(self, model, config, data):
        raise AssertionError("the data-dependent start ran over the loaded weights")

    monkeypatch.setattr(lifecycle, "fit", recording_fit)
    monkeypatch.setattr(trainer, "WeightAverage", RecordingAverage)
    monkeypatch.setattr(GSNWorkload, "prepare_model", no_data_start)
    run = lab28.train("gsn", preset="quick", data=small_gsn, out=tmp_path, name="tuned", init_from=source,
                      val_size=20, epochs=1, lr=1e-4, threads=1, device="cpu")
    best = load_checkpoint(source / "best.pt")["model"]
    for name in ("model", "average"):
        assert seen[name].keys() == best.keys()
        for key, value in best.items():
            assert torch.equal(seen[name][key], value), (name, key)
    assert json.loads((run / "config.json").read_text())["train"]["init_from"] == str(source.resolve())
    assert f"init_from={source.resolve()}" in capsys.readouterr().out


def test_fine_tuning_a_synthetic_track_run_on_the_real_rows_starts_lower(source, small_gsn, tmp_path):
    tune = ["--lr", "1e-4", "--epochs", "1", "--out", str(tmp_path)]
    assert main(["train", *_args(small_gsn, *tune), "--name", "fresh"]) == 0
    assert main(["train", *_args(small_gsn, *tune), "--name", "tuned", "--init-from", str(source)]) == 0
    fresh, tuned = _metrics(tmp_path / "fresh")[0], _metrics(tmp_path / "tuned")[0]
    assert float(tuned["train_loss"]) < float(fresh["train_loss"])
    assert float(tuned["val_loss"]) < float(fresh["val_loss"])


class _RunsCommand:
    """Unpickling this calls os.system: what a hostile checkpoint would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _hostile_top(source: Path, tmp: Path) -> Path:
    torch.save(_RunsCommand(tmp / "pwned"), tmp / "hostile.pt")
    return tmp / "hostile.pt"


def _hostile_inside(source: Path, tmp: Path) -> Path:
    state = torch.load(source / "best.pt", weights_only=True)
    state["metrics"] = _RunsCommand(tmp / "pwned")  # a plausible checkpoint with the payload deep inside
    torch.save(state, tmp / "hostile.pt")
    return tmp / "hostile.pt"


def _truncated(source: Path, tmp: Path) -> Path:
    (tmp / "cut.pt").write_bytes((source / "best.pt").read_bytes()[:2000])
    return tmp / "cut.pt"


def _no_best(source: Path, tmp: Path) -> Path:
    shutil.copytree(source, tmp / "unfinished", ignore=shutil.ignore_patterns("best.pt"))
    return tmp / "unfinished"


@pytest.mark.parametrize("make, flags, fragment", [
    (lambda s, t: s, ["--hidden", "8"], "synth/best.pt: its model is 'compact-cnn' (hidden 0), this run's is "
                                        "'compact-cnn' (hidden 8)"),
    (lambda s, t: s / "best.pt", ["--model", "shape-classifier"],
     "synth/best.pt: its model is 'compact-cnn', this run's is 'shape-classifier'"),
    (lambda s, t: t / "nope.pt", [], "nope.pt: checkpoint not found"),
    (_no_best, [], "unfinished: no best.pt to start from"),
    (lambda s, t: s / "config.json", [], "synth/config.json: not a lab28 checkpoint"),
    (_truncated, [], "cut.pt: unreadable checkpoint"),
    (_hostile_top, [], "hostile.pt: refused checkpoint"),
    (_hostile_inside, [], "hostile.pt: refused checkpoint"),
])
def test_a_source_this_run_cannot_start_from_is_one_line_before_any_folder(source, small_gsn, tmp_path, capsys,
                                                                           make, flags, fragment):
    out = tmp_path / "runs"
    init = make(source, tmp_path)
    assert main(["train", *_args(small_gsn, *flags), "--init-from", str(init), "--out", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert not out.exists() and not (tmp_path / "pwned").exists()


def test_a_pt_file_gives_its_average_where_it_holds_one_and_without_a_config_is_judged_by_its_weights(
        source, tmp_path):
    from lab28.errors import Lab28Error
    from lab28.runs.init_from import start_from_weights
    from lab28.workloads.gsn.config import config_from_dict
    from lab28.workloads.gsn.experiment import build_model

    best = load_checkpoint(source / "best.pt")
    raw = {key: torch.zeros_like(value) for key, value in best["model"].items()}  # what last.pt trained
    torch.save({"format": 2, "model": raw, "average": {"weights": best["model"], "updates": 1, "decay": 0.99}},
               tmp_path / "last.pt")
    config = config_from_dict(best["config"])
    config.train.init_from = str(tmp_path / "last.pt")
    model = build_model(config)
    start_from_weights(config, model)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in best["model"].items())
    config.model.hidden = 8
    with pytest.raises(Lab28Error, match="last.pt: its weights do not fit this run's model 'compact-cnn': "
                                         r"2 tensors missing \(first 'hidden.0.weight'\)"):
        start_from_weights(config, build_model(config))


def test_weights_of_another_workload_are_refused(source, tmp_path, capsys):
    out = tmp_path / "runs"
    assert main(["train", "fashion-mnist", "--preset", "quick", "--init-from", str(source), "--out", str(out)]) == 2
    assert_one_line_error(capsys.readouterr().err, "best.pt: the weights of a gsn run; this run is a classify one")
    assert not out.exists()


def test_a_sweep_from_a_missing_source_is_refused_before_anything_is_made(small_gsn, tmp_path, capsys):
    space = tmp_path / "space.yaml"
    space.write_text("params:\n  model.dropout: {type: float, low: 0.0, high: 0.5}\n")
    assert main(["sweep", "gsn", "--space", str(space), "--trials", "1", "--out", str(tmp_path / "out"),
                 *_args(small_gsn), "--init-from", str(tmp_path / "nope")]) == 2
    assert_one_line_error(capsys.readouterr().err, "nope: checkpoint not found")
    assert not (tmp_path / "out").exists()


def test_a_resumed_fine_tuning_ends_as_an_uninterrupted_one_without_reading_its_source_again(
        source, small_gsn, tmp_path, monkeypatch):
    origin = shutil.copytree(source, tmp_path / "origin")
    args = ["train", *_args(small_gsn, "--epochs", "3", "--lr", "1e-4"), "--init-from", str(origin),
            "--out", str(tmp_path)]
    assert main([*args, "--name", "whole"]) == 0
    train_interrupted_in_epoch_two(monkeypatch, [*args, "--name", "cut"])
    assert len(_metrics(tmp_path / "cut")) == 1
    (origin / "best.pt").unlink()  # the resumed run continues from its own last.pt
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 0
    assert _metrics(tmp_path / "cut") == _metrics(tmp_path / "whole")
    finals = [json.loads((tmp_path / run / "final_metrics.json").read_text()) for run in ("whole", "cut")]
    assert finals[0]["val"] == finals[1]["val"]


def test_a_report_says_which_runs_started_from_which_weights():
    from lab28.runs.report import start_lines

    configs = {"cls": {"train": {"init_from": "/r/synth"}}, "reg": {"train": {"init_from": ""}},
               "joint": {"train": {"init_from": "/r/synth"}}}
    assert start_lines(configs)[0].startswith("Runs cls, joint started from the weights of `/r/synth`")
    assert start_lines({"a": configs["cls"]})[0].startswith("Every run started from the weights of `/r/synth`")
    assert start_lines({"a": {"train": {}}, "b": {}}) == []  # run folders from before the field
