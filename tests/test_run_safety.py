"""The security and data-loss guarantees of a run folder: nothing read from disk runs code, a run name never
escapes --out, --overwrite replaces a run only once the new one has finished, and an active run's name is held.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from lab28.cli import main
from lab28.errors import Lab28Error

QUICK = ["--synth", "--preset", "quick", "--synth-n", "80", "--val-size", "20", "--epochs", "1", "--threads", "1"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("safety-base")
    assert main(["train", *QUICK, "--out", str(out), "--name", "run"]) == 0
    return out / "run"


class _RunsCommand:
    """Unpickling this calls os.system: what a hostile last.pt would do."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _unfinished_copy(run: Path, dest: Path) -> Path:
    shutil.copytree(run, dest)
    (dest / "status.json").write_text(json.dumps({"status": "interrupted"}))
    return dest


@pytest.mark.parametrize("payload_at", ["top", "inside_rng"])
def test_resume_never_runs_code_from_a_checkpoint(finished_run, tmp_path, capsys, payload_at):
    marker = tmp_path / "pwned"
    run = _unfinished_copy(finished_run, tmp_path / "shared-run")
    state = torch.load(run / "best.pt", weights_only=True)
    if payload_at == "top":
        torch.save(_RunsCommand(marker), run / "last.pt")
    else:  # a plausible checkpoint with the payload deep inside
        state["rng"] = {"numpy": _RunsCommand(marker)}
        torch.save(state, run / "last.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert not marker.exists()
    assert "last.pt: refused checkpoint" in err and len(err.strip().splitlines()) == 1


def test_fashion_resume_never_runs_code_from_a_checkpoint(tmp_path, capsys):
    from lab28.fashion.config import preset

    marker = tmp_path / "pwned"
    run = tmp_path / "fashion-run"
    run.mkdir()
    cfg = preset("quick", "simple-cnn")
    (run / "config.json").write_text(json.dumps(cfg.to_dict()))
    (run / "status.json").write_text(json.dumps({"status": "interrupted"}))
    torch.save({"format": 2, "model": {}, "x": _RunsCommand(marker)}, run / "last.pt")
    assert main(["fashion", "train", "--resume", str(run)]) == 2
    assert not marker.exists()
    assert "refused checkpoint" in capsys.readouterr().err


def test_eval_and_predict_never_run_code_from_best_pt(finished_run, tmp_path, capsys):
    marker = tmp_path / "pwned"
    run = tmp_path / "run"
    shutil.copytree(finished_run, run)
    torch.save({"format": 1, "model": {"w": _RunsCommand(marker)}}, run / "best.pt")
    png = tmp_path / "x.png"
    from PIL import Image

    Image.new("L", (28, 28)).save(png)
    assert main(["predict", str(run), str(png)]) == 2
    assert not marker.exists()
    assert "best.pt: refused checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("damage, fragment", [
    (lambda s: s.update(format="2"), "format '2' is not a format number"),
    (lambda s: s.update(format=True), "is not a format number"),
    (lambda s: s.update(epoch="3"), "entry 'epoch' is missing or not of type int"),
    (lambda s: s.pop("optimizer"), "entry 'optimizer' is missing"),
    (lambda s: s.update(history=s["history"][:0]), "epoch 1 but 0 history rows"),
    (lambda s: s["rng"].pop("generator"), "incomplete random states"),
    (lambda s: s.update(model=[1, 2]), "not a lab28 checkpoint"),
])
def test_resume_checks_the_checkpoint_structure_first(tmp_path, capsys, monkeypatch, damage, fragment):
    """A last.pt of the right kind but edited: one line naming it, before any training starts."""
    import lab28.train.trainer as trainer
    from lab28.gsn.config import preset
    from lab28.gsn.experiment import run_gsn
    from lab28.train.trainer import TrainingInterrupted

    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 80, 20
    cfg.train.epochs, cfg.train.threads, cfg.train.progress = 2, 1, False
    original = trainer.run_epoch

    def stop_in_epoch_two(train_step, scheduler, epoch, steps):
        if epoch == 2:
            raise TrainingInterrupted("interrupted during epoch 2; epochs 1..1 are saved")
        return original(train_step, scheduler, epoch, steps)

    monkeypatch.setattr(trainer, "run_epoch", stop_in_epoch_two)
    with pytest.raises(Lab28Error, match="interrupted"):
        run_gsn(cfg, tmp_path, "r", draw_figures=False)
    monkeypatch.setattr(trainer, "run_epoch", original)
    run = tmp_path / "r"
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["format"] == 2 and isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    damage(state)
    torch.save(state, run / "last.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1: nothing trained
