"""Interrupted runs resume exactly, same seed means same run, and a NaN loss fails cleanly."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from lab28.errors import Lab28Error
from lab28.workloads.gsn.config import preset
from lab28.workloads.gsn.experiment import run_gsn

TINY = ["--synth", "--preset", "quick", "--synth-n", "240", "--val-size", "48", "--epochs", "5", "--patience", "10",
        "--batch-size", "32", "--threads", "1"]


def val_columns(run_dir):
    rows = list(csv.DictReader(open(run_dir / "metrics.csv")))
    return [{k: v for k, v in r.items() if k.startswith(("val_", "train_loss", "epoch")) and "time" not in k} for r in rows]


def same_weights(a, b):
    sa = torch.load(a / "best.pt", weights_only=True)
    sb = torch.load(b / "best.pt", weights_only=True)
    return sa["epoch"] == sb["epoch"] and all(torch.equal(sa["model"][k], sb["model"][k]) for k in sa["model"])


def cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "lab28.cli", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path):
    reference = cli("train", *TINY, "--out", str(tmp_path), "--name", "reference")
    victim = cli("train", *TINY, "--out", str(tmp_path), "--name", "victim")
    metrics = tmp_path / "victim" / "metrics.csv"
    deadline = time.time() + 120
    while time.time() < deadline:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:  # header + 2 epochs
            break
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait()
    assert reference.wait() == 0, reference.stderr.read()
    assert (tmp_path / "victim" / "last.pt").exists()
    assert json.loads((tmp_path / "victim" / "status.json").read_text())["status"] == "running"
    resumed = cli("train", "--resume", str(tmp_path / "victim"))
    out, err = resumed.communicate()
    assert resumed.returncode == 0, err
    assert "resuming after epoch" in out
    ref, vic = tmp_path / "reference", tmp_path / "victim"
    assert val_columns(ref) == val_columns(vic)
    assert same_weights(ref, vic)
    a = json.loads((ref / "final_metrics.json").read_text())["val"]
    b = json.loads((vic / "final_metrics.json").read_text())["val"]
    assert a == b
    # A finished run is not resumed again.
    again = cli("train", "--resume", str(vic))
    assert again.wait() == 2 and "already finished" in again.stderr.read()


def _tiny_config():
    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size = 160, 32
    cfg.train.epochs, cfg.train.batch_size, cfg.train.progress, cfg.train.threads = 2, 32, False, 1
    return cfg


def test_env_records_the_threads_the_run_used(tmp_path):
    # A suite worker sets its share of the cores from config.threads; env.json (and the report) must say that
    # share, not the count the process started with.
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        run = run_gsn(_tiny_config(), tmp_path, "t", draw_figures=False)  # threads = 1
    finally:
        torch.set_num_threads(before)
    assert json.loads((run / "env.json").read_text())["torch_threads"] == 1


def test_same_seed_same_run(tmp_path):
    first = run_gsn(_tiny_config(), tmp_path, "a", draw_figures=False)
    second = run_gsn(_tiny_config(), tmp_path, "b", draw_figures=False)
    assert val_columns(first) == val_columns(second)
    assert same_weights(first, second)
    other = _tiny_config()
    other.train.seed = 2
    third = run_gsn(other, tmp_path, "c", draw_figures=False)
    assert val_columns(third) != val_columns(first)
    env = json.loads((first / "env.json").read_text())
    assert {"torch_version", "device", "precision", "lab28_version", "git_hash"} <= set(env)


def test_nan_loss_stops_with_a_clear_message(tmp_path, monkeypatch):
    from lab28.workloads.gsn.task import GSNTask

    original = GSNTask.loss
    calls = {"n": 0}

    def poisoned(self, outputs, targets):
        training = outputs[0].requires_grad  # count training steps only, however many validation passes run
        calls["n"] += training
        loss, parts = original(self, outputs, targets)
        if training and calls["n"] == 6:  # 4 training steps per epoch: epoch 2, step 2
            loss = loss * float("nan")
        return loss, parts

    monkeypatch.setattr(GSNTask, "loss", poisoned)
    cfg = _tiny_config()
    cfg.train.log_every = 1
    with pytest.raises(Lab28Error, match=r"loss became non-finite at epoch 2, step 2"):
        run_gsn(cfg, tmp_path, "nan", draw_figures=False)
    run_dir = tmp_path / "nan"
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and "epoch 2" in status["reason"]
    assert torch.load(run_dir / "best.pt", weights_only=True)["epoch"] == 1  # last good weights kept
    assert not (run_dir / "final_metrics.json").exists()


def test_finish_ends_an_interrupted_run_where_it_stands(tmp_path, monkeypatch):
    from lab28.workloads.gsn.experiment import resume_gsn
    from lab28.workloads.gsn.task import GSNTask

    original, calls = GSNTask.prepare_batch, {"n": 0}

    def interrupt(self, images, counts, train, generator=None):
        if train:
            calls["n"] += 1
            if calls["n"] == 10:  # 4 steps per epoch: epoch 3, step 2
                raise KeyboardInterrupt
        return original(self, images, counts, train, generator)

    monkeypatch.setattr(GSNTask, "prepare_batch", interrupt)
    cfg = _tiny_config()
    cfg.train.epochs = 5
    with pytest.raises(Lab28Error, match="interrupted during epoch 3"):
        run_gsn(cfg, tmp_path, "r", draw_figures=False)
    monkeypatch.setattr(GSNTask, "prepare_batch", original)
    run_dir = resume_gsn(tmp_path / "r", draw_figures=False, finish=True)
    final = json.loads((run_dir / "final_metrics.json").read_text())
    assert final["epochs_run"] == 2 and "ended by the user after epoch 2" in final["stop_reason"]
    rows = val_columns(run_dir)
    best = rows[final["best_epoch"] - 1]
    assert float(best["val_accuracy"]) == pytest.approx(final["val"]["accuracy"])
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


def test_interrupt_is_reported_even_when_a_checkpoint_write_failed(tmp_path, monkeypatch, capsys):
    """A failed background write must not replace the training error: the run still says 'interrupted'."""
    import lab28.training.checkpoint as checkpoint
    from lab28.workloads.gsn.task import GSNTask

    original, calls = GSNTask.prepare_batch, {"n": 0}

    def interrupt(self, images, counts, train, generator=None):
        if train:
            calls["n"] += 1
            if calls["n"] == 6:  # 4 steps per epoch: epoch 2, step 2, while epoch 1's files are being written
                raise KeyboardInterrupt
        return original(self, images, counts, train, generator)

    def disk_full(obj, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(GSNTask, "prepare_batch", interrupt)
    monkeypatch.setattr(checkpoint, "atomic_torch_save", disk_full)
    with pytest.raises(Lab28Error, match="interrupted during epoch 2"):
        run_gsn(_tiny_config(), tmp_path, "r", draw_figures=False)
    assert json.loads((tmp_path / "r" / "status.json").read_text())["status"] == "interrupted"
    assert "a checkpoint write failed: [Errno 28] No space left on device" in capsys.readouterr().err
