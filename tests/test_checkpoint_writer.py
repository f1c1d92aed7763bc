"""The background checkpoint writer: it saves the state as it was when asked, in order, and reports failures."""

import pytest
import torch

from lab28.errors import Lab28Error
from lab28.training.checkpoint import CheckpointWriter


def test_saved_state_is_the_state_at_write_time(tmp_path):
    weights = torch.zeros(1000)
    writer = CheckpointWriter()
    writer.write([({"model": {"w": weights}, "epoch": 1, "history": [{"loss": 1.0}]}, tmp_path / "last.pt")])
    weights.add_(5.0)  # training goes on changing the live tensor while the file is written
    writer.wait()
    saved = torch.load(tmp_path / "last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["history"] == [{"loss": 1.0}]
    assert torch.equal(saved["model"]["w"], torch.zeros(1000))


def test_a_state_shared_by_two_files_is_copied_once_and_frozen_for_both(tmp_path):
    from lab28.training.checkpoint import cpu_copy

    weights = {"w": torch.zeros(10)}
    memo = {}
    best, last = cpu_copy({"model": weights}, memo), cpu_copy({"model": weights, "epoch": 2}, memo)
    assert best["model"] is last["model"] and best["model"]["w"] is not weights["w"]
    writer = CheckpointWriter()
    writer.write([({"model": weights}, tmp_path / "best.pt"), ({"model": weights, "epoch": 2}, tmp_path / "last.pt")])
    weights["w"].add_(1.0)
    writer.wait()
    for name in ("best.pt", "last.pt"):
        assert torch.equal(torch.load(tmp_path / name, weights_only=True)["model"]["w"], torch.zeros(10))


def test_writes_land_in_order_and_leave_no_temporary_files(tmp_path):
    writer = CheckpointWriter()
    for epoch in (1, 2, 3):
        writer.write([({"epoch": epoch}, tmp_path / "best.pt"), ({"epoch": epoch, "x": torch.ones(3)},
                                                                 tmp_path / "last.pt")])
    writer.wait()
    assert torch.load(tmp_path / "best.pt", weights_only=True)["epoch"] == 3
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt", "last.pt"]


def test_a_failed_write_is_raised_in_the_training_thread(tmp_path):
    (tmp_path / "not-a-folder").write_text("a file where the run folder should be")
    writer = CheckpointWriter()
    writer.write([({"epoch": 1}, tmp_path / "not-a-folder" / "last.pt")])
    with pytest.raises(Lab28Error, match="not-a-folder: is not a folder, so last.pt cannot be written"):
        writer.wait()
    writer.wait()  # reported once; the writer is usable again
    writer.write([({"epoch": 2}, tmp_path / "last.pt")])
    writer.wait()
    assert torch.load(tmp_path / "last.pt", weights_only=True)["epoch"] == 2


def test_a_ctrl_c_before_the_writer_thread_starts_stays_an_interrupt(tmp_path, monkeypatch):
    """The trainer's error path calls wait() after an interrupt; one that came before the thread started must not
    turn into 'cannot join thread before it is started', which would hide the interrupt."""
    import threading

    def interrupted_start(self):
        raise KeyboardInterrupt

    writer = CheckpointWriter()
    monkeypatch.setattr(threading.Thread, "start", interrupted_start)
    with pytest.raises(KeyboardInterrupt):
        writer.write([({"epoch": 1}, tmp_path / "last.pt")])
    monkeypatch.undo()
    writer.wait(raise_error=False)  # as the trainer does while the interrupt is on its way up
    writer.write([({"epoch": 2}, tmp_path / "last.pt")])  # and the writer still works
    writer.wait()
    assert torch.load(tmp_path / "last.pt", weights_only=True) == {"epoch": 2}
