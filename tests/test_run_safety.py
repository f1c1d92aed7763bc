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

from conftest import train_interrupted_in_epoch_two
from lab28.cli import main

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


def _interrupted_in_epoch_two(tmp_path: Path, monkeypatch) -> Path:
    """A run of the quick preset interrupted in epoch 2: its folder, with epoch 1 in last.pt."""
    train_interrupted_in_epoch_two(monkeypatch, ["train", *QUICK, "--epochs", "2", "--out", str(tmp_path),
                                                 "--name", "r"])
    return tmp_path / "r"


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
    from lab28.workloads.classify.config import preset

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
    (lambda s: s.update(format="2"), "format '2' is not a version number"),
    (lambda s: s.update(format=True), "is not a version number"),
    (lambda s: s.update(epoch="3"), "entry 'epoch' is missing or not of type int"),
    (lambda s: s.pop("optimizer"), "entry 'optimizer' is missing"),
    (lambda s: s.update(history=s["history"][:0]), "epoch 1 but 0 history rows"),
    (lambda s: s["rng"].pop("generator"), "incomplete random states"),
    (lambda s: s.update(model=[1, 2]), "not a lab28 checkpoint"),
])
def test_resume_checks_the_checkpoint_structure_first(tmp_path, capsys, monkeypatch, damage, fragment):
    """A last.pt of the right kind but edited: one line naming it, before any training starts."""
    run = _interrupted_in_epoch_two(tmp_path, monkeypatch)
    state = torch.load(run / "last.pt", weights_only=True)
    assert state["format"] == 2 and isinstance(state["rng"]["numpy"]["keys"], torch.Tensor)
    damage(state)
    torch.save(state, run / "last.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(err.strip().splitlines()) == 1, err
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # header + epoch 1: nothing trained


# -- run names ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [".", "..", "../../x", "a/b", "", ".hidden", "x\ny", "/abs"])
@pytest.mark.parametrize("command", ["train", "suite"])
def test_a_run_name_is_one_plain_folder_name(tmp_path, capsys, name, command):
    out = tmp_path / "work" / "runs"
    out.mkdir(parents=True)
    (out / "other-run").mkdir()
    (out / "other-run" / "keep.txt").write_text("x")
    (tmp_path / "work" / "sibling.txt").write_text("y")
    args = ["train", *QUICK, "--overwrite"] if command == "train" else ["suite", "gsn", *QUICK]
    assert main([*args, "--out", str(out), "--name", name]) == 2
    err = capsys.readouterr().err
    assert "--name" in err and len(err.strip().splitlines()) == 1, err
    assert (out / "other-run" / "keep.txt").read_text() == "x"
    assert (tmp_path / "work" / "sibling.txt").read_text() == "y"
    assert sorted(p.name for p in out.iterdir()) == ["other-run"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["work"]


def test_fashion_run_name_is_checked_too(tmp_path, capsys):
    (tmp_path / "sibling.txt").write_text("y")
    out = tmp_path / "runs"
    assert main(["fashion", "train", "--data", str(tmp_path / "nowhere"), "--out", str(out), "--name", "..",
                 "--overwrite"]) == 2
    assert "--name '..' must be a single folder name" in capsys.readouterr().err
    assert (tmp_path / "sibling.txt").read_text() == "y" and not out.exists()


# -- --overwrite ----------------------------------------------------------------------------------------------
def _tree(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_overwrite_keeps_the_old_run_when_the_new_one_fails(finished_run, tmp_path, capsys, monkeypatch):
    from lab28.workloads.gsn.task import GSNTask

    out = tmp_path / "runs"
    shutil.copytree(finished_run, out / "run")
    before = _tree(out / "run")
    original = GSNTask.loss

    def nan_in_epoch_two(self, outputs, targets):
        loss, parts = original(self, outputs, targets)
        if outputs[0].requires_grad and nan_in_epoch_two.calls >= 3:  # 3 steps per epoch: epoch 2
            loss = loss * float("nan")
        nan_in_epoch_two.calls += outputs[0].requires_grad
        return loss, parts

    nan_in_epoch_two.calls = 0
    monkeypatch.setattr(GSNTask, "loss", nan_in_epoch_two)
    args = ["train", *QUICK, "--epochs", "3", "--batch-size", "24", "--out", str(out),
            "--name", "run", "--overwrite"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "loss became non-finite" in err and len(err.strip().splitlines()) == 1, err
    assert _tree(out / "run") == before  # the old run, byte for byte
    failed = json.loads((out / "run-2" / "status.json").read_text())
    assert failed["status"] == "failed" and failed["replaces"] == "run" and "is untouched" in failed["reason"]
    assert "best.pt holds the best epoch so far and last.pt holds the last complete epoch" in failed["reason"]
    assert sorted(p.name for p in out.iterdir()) == ["run", "run-2"]


def test_overwrite_replaces_the_old_run_once_the_new_one_finished(finished_run, tmp_path):
    out = tmp_path / "runs"
    shutil.copytree(finished_run, out / "run")
    (out / "run" / "old-marker.txt").write_text("old")
    assert main(["train", *QUICK, "--seed", "5", "--out", str(out), "--name", "run", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["run"]  # no -2 folder, no hidden leftovers
    assert not (out / "run" / "old-marker.txt").exists()
    assert json.loads((out / "run" / "config.json").read_text())["train"]["seed"] == 5
    assert json.loads((out / "run" / "status.json").read_text()) == {
        "status": "finished", "finished": pytest.approx(json.loads((out / "run" / "status.json").read_text())["finished"])}


def test_a_name_held_by_an_active_run_is_refused(finished_run, tmp_path, capsys):
    """flock is what a live lab28 process holds on its run folder; the kernel drops it when the process dies."""
    import fcntl

    out = tmp_path / "runs"
    shutil.copytree(finished_run, out / "run")
    (out / "run" / "status.json").write_text(json.dumps({"status": "running"}))
    fd = os.open(out / "run", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        before = _tree(out / "run")
        assert main(["train", *QUICK, "--out", str(out), "--name", "run", "--overwrite"]) == 2
        assert "another lab28 process is training in this run folder" in capsys.readouterr().err
        assert main(["train", "--resume", str(out / "run")]) == 2
        assert "another lab28 process" in capsys.readouterr().err
        assert _tree(out / "run") == before and sorted(p.name for p in out.iterdir()) == ["run"]
    finally:
        os.close(fd)  # as when that process crashes: the name is free again
    assert main(["train", *QUICK, "--out", str(out), "--name", "run", "--overwrite"]) == 0


# -- full or read-only disks, outputs in the way ----------------------------------------------------------------
def _error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("lab28:")]


def _disk_fails(monkeypatch, code: int, when=lambda path: True):
    """Every atomic write for which when(path) holds fails as the system would (ENOSPC, EROFS, ...)."""
    import lab28.io_utils as io_utils

    original = io_utils._atomic_write

    def failing(path, write):
        if when(Path(path)):
            raise OSError(code, os.strerror(code), str(path))
        return original(path, write)

    monkeypatch.setattr(io_utils, "_atomic_write", failing)


def test_training_onto_a_full_disk_marks_the_run_failed(tmp_path, capsys, monkeypatch):
    import errno

    full = {"now": False}

    def full_from_the_first_checkpoint(path):  # once last.pt does not fit, nothing new fits
        full["now"] = full["now"] or path.name == "last.pt"
        return full["now"]

    _disk_fails(monkeypatch, errno.ENOSPC, full_from_the_first_checkpoint)
    out = tmp_path / "runs"
    assert main(["train", *QUICK, "--epochs", "3", "--out", str(out), "--name", "r"]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "no space left on the device (run " in lines[0], lines
    status = json.loads((out / "r" / "status.json").read_text())
    assert status["status"] == "failed" and "no space left" in status["reason"]
    assert not list((out / "r").glob(".*.tmp"))  # no half-written temporary files


@pytest.mark.parametrize("code, words", [("ENOSPC", "no space left on the device"), ("EROFS", "read-only file system")])
def test_eval_and_predict_outputs_on_a_failing_disk(finished_run, small_gsn, tmp_path, capsys, monkeypatch, code, words):
    import errno

    from PIL import Image

    png = tmp_path / "x.png"
    Image.new("L", (28, 28)).save(png)
    _disk_fails(monkeypatch, getattr(errno, code))
    out = tmp_path / "out"
    for args in (["eval", str(finished_run), "--data", str(small_gsn), "--out", str(out / "m.json")],
                 ["predict", str(finished_run), str(png), "--out", str(out / "p.csv")],
                 ["data", "show", "gsn", "--root", str(small_gsn), "--out", str(out / "fig")]):
        capsys.readouterr()
        assert main(args) == 2, args
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and words in lines[0], (args, lines)
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_outputs_in_the_way_are_one_line_errors(finished_run, small_gsn, tmp_path, capsys):
    folder, file = tmp_path / "a-folder", tmp_path / "a-file"
    folder.mkdir()
    file.write_text("keep")
    cases = [
        (["eval", str(finished_run), "--data", str(small_gsn), "--out", str(folder)], "is a directory"),
        (["train", *QUICK, "--out", str(file)], "exists and is not a folder"),
        (["data", "show", "gsn", "--root", str(small_gsn), "--out", str(file)], "exists and is not a folder"),
        (["eval", str(finished_run), "--data", str(small_gsn), "--out", str(file / "m.json")], "is not a folder, so m.json"),
    ]
    for args, fragment in cases:
        capsys.readouterr()
        assert main(args) == 2, args
        lines = _error_lines(capsys.readouterr().err)
        assert len(lines) == 1 and fragment in lines[0], (args, lines)
    assert file.read_text() == "keep" and list(folder.iterdir()) == []


# -- a real second process: SIGTERM, the lock it holds, resuming from elsewhere --------------------------------------
def test_sigterm_interrupts_cleanly_and_the_run_resumes_from_another_directory(tmp_path, capsys):
    import signal
    import subprocess
    import sys
    import time

    from lab28.workloads.gsn.synth import synth_gsn

    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    synth_gsn(home / "gsn", n=200, seed=3)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    train = subprocess.Popen(
        [sys.executable, "-m", "lab28.cli", "train", "--data", "gsn", "--preset", "quick", "--val-size", "40",
         "--epochs", "500", "--patience", "1000", "--threads", "1", "--out", "runs", "--name", "r"],
        cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run = home / "runs" / "r"
    deadline = time.time() + 120
    while time.time() < deadline and not (
            (run / "last.pt").exists() and len((run / "metrics.csv").read_text().splitlines()) >= 2):
        time.sleep(0.05)
    assert main(["train", *QUICK, "--out", str(home / "runs"), "--name", "r", "--overwrite"]) == 2
    assert "another lab28 process is training" in capsys.readouterr().err
    train.send_signal(signal.SIGTERM)
    _, err = train.communicate(timeout=60)
    assert train.returncode == 2, err
    assert f"continue with: lab28 train --resume {run.resolve()}" in err and "Traceback" not in err
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"
    assert json.loads((run / "config.json").read_text())["data"]["path"] == str((home / "gsn").resolve())
    finish = subprocess.run([sys.executable, "-m", "lab28.cli", "train", "--resume", str(run.resolve()), "--finish"],
                            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=120)
    assert finish.returncode == 0, finish.stderr
    assert json.loads((run / "status.json").read_text())["status"] == "finished"


def test_files_respect_the_umask(tmp_path):
    """A TA or a web server must be able to read a shared run folder: 0644 under umask 022, checkpoints too."""
    from lab28.io_utils import atomic_write_text

    old = os.umask(0o022)
    try:
        assert main(["train", *QUICK, "--epochs", "2", "--out", str(tmp_path / "runs"), "--name", "r"]) == 0
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "runs").rglob("*") if p.is_file()}
    assert "best.pt" in modes and "metrics.csv" in modes and set(modes.values()) == {0o644}, modes
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("args, fragment", [
    (["train", *QUICK, "--model", "simple-cnn"], "model 'simple-cnn' (a classify model) is not a gsn model; choose one of: compact-cnn, counting-resnet, counting-resnet-p4, counting-resnet-p4-fullres, counting-resnet-p4-gated, counting-resnet-p4-local, counting-resnet-p4-symmetric, shape-classifier"),
    (["fashion", "train", "--model", "shape-classifier"], "choose one of: gated-cnn, simple-cnn, small-resnet, spatial-attention-cnn"),
])
def test_a_model_of_another_workload_is_a_one_line_error(tmp_path, capsys, args, fragment):
    assert main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert fragment in err and len(_error_lines(err)) == 1, err
    assert not (tmp_path / "out").exists()


def test_resume_refuses_to_replace_a_folder_it_was_not_started_to_replace(finished_run, tmp_path, capsys):
    """An edited status.json naming a sibling must never make a resume delete it."""
    out = tmp_path / "runs"
    (out / "precious").mkdir(parents=True)
    (out / "precious" / "notes.txt").write_text("keep")
    run = _unfinished_copy(finished_run, out / "shared")
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "replaces": "precious"}))
    assert main(["train", "--resume", str(run), "--finish"]) in (0, 2)
    assert (out / "precious" / "notes.txt").read_text() == "keep"


def test_overwrite_replaces_only_run_folders(tmp_path, capsys):
    out = tmp_path / "runs"
    (out / "Documents").mkdir(parents=True)
    (out / "Documents" / "thesis.tex").write_text("keep")
    assert main(["train", *QUICK, "--out", str(out), "--name", "Documents", "--overwrite"]) == 2
    assert "is not a lab28 run folder" in capsys.readouterr().err
    assert (out / "Documents" / "thesis.tex").read_text() == "keep" and sorted(p.name for p in out.iterdir()) == [
        "Documents"]


@pytest.mark.parametrize("damage, fragment", [
    (lambda s: s["model"].update({next(iter(s["model"])): torch.zeros(3)}), "size mismatch"),
    (lambda s: s["history"][0].update(epoch_time_s="x"), "not a number"),
    (lambda s: s["early_stopping"].update(best="x"), "is not a number"),
    (lambda s: s["rng"].update(python=(1, 2)), "damaged checkpoint"),
])
def test_a_damaged_but_loadable_last_pt_is_one_line(tmp_path, capsys, monkeypatch, damage, fragment):
    run = _interrupted_in_epoch_two(tmp_path, monkeypatch)
    state = torch.load(run / "last.pt", weights_only=True)
    damage(state)
    torch.save(state, run / "last.pt")
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "last.pt: damaged checkpoint" in lines[0] and fragment in lines[0], lines
    assert json.loads((run / "status.json").read_text())["status"] == "interrupted"


def test_an_edited_config_of_a_finished_run_is_refused_by_eval_and_predict(finished_run, small_gsn, tmp_path, capsys):
    run = shutil.copytree(finished_run, tmp_path / "run")
    config = json.loads((run / "config.json").read_text())
    config["train"]["eval_batch_size"] = 0
    (run / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(run), "--data", str(small_gsn), "--out", str(tmp_path / "m.json")]) == 2
    lines = _error_lines(capsys.readouterr().err)
    assert len(lines) == 1 and "config.json: bad config: eval_batch_size must be >= 1" in lines[0], lines
    assert not (tmp_path / "m.json").exists()
