"""What a run prints while it trains: the epoch line's exact format, and real runs (new and resumed) printing it
with the legend once and no carriage returns. A parallel suite's labelled lines: tests/test_cli.py."""

import pytest
import torch

from lab28.training.early_stopping import EarlyStopping, EarlyStoppingConfig
from lab28.training.progress import early_stop_possible, epoch_line, format_duration, legend, time_left

@pytest.mark.parametrize("seconds, text", [(0.04, "0.0s"), (1.62, "1.6s"), (9.96, "10s"), (42.3, "42s"),
                                           (59.6, "1m00s"), (75, "1m15s"), (3599.4, "59m59s"), (3600, "1h00m"),
                                           (7530, "2h06m"), (90_000, "25h00m")])
def test_durations_read_as_seconds_minutes_hours(seconds, text):
    assert format_duration(seconds) == text


def _row(epoch: int, epoch_time_s: float, **metrics) -> dict:
    return {"epoch": epoch, "train_loss": 0.5, "val_loss": 0.4, "val_accuracy": 0.87, **metrics, "lr": 1e-3,
            "train_time_s": epoch_time_s - 0.1, "epoch_time_s": epoch_time_s, "train_images_per_s": 1000.0}


def test_epoch_line_counts_to_the_maximum_and_estimates_the_rest_from_the_epochs_so_far():
    times = [10.0, 20.0, 30.0]  # a mean of 20 s: the 7 epochs left to 10 take 140 s
    rows = [_row(k, t) for k, t in enumerate(times, 1)]
    assert time_left(sum(times), 3, 10) == 140
    line = epoch_line(rows[-1], 10, sum(times), best=True, monitor="val_accuracy", may_stop_sooner=True)
    assert line == ("epoch  3/10 * train_loss=0.5000 val_loss=0.4000 val_accuracy=0.8700  "
                    "took 30s, elapsed 1m00s, at most 2m20s left")
    exact = epoch_line(rows[-1], 10, sum(times), best=False, monitor="val_accuracy", may_stop_sooner=False)
    assert exact == ("epoch  3/10   train_loss=0.5000 val_loss=0.4000 val_accuracy=0.8700  "
                     "took 30s, elapsed 1m00s, about 2m20s left")


def test_a_resumed_run_counts_on_and_its_elapsed_time_includes_the_earlier_epochs():
    elapsed = 31 * 2.0  # epochs 1..30 before the resume, 31 after it, 2 s each
    line = epoch_line(_row(31, 2.0), 100, elapsed, best=False, monitor="val_accuracy", may_stop_sooner=True,
                      label="joint")
    assert line == ("[joint] epoch  31/100   train_loss=0.5000 val_loss=0.4000 val_accuracy=0.8700  "
                    "took 2.0s, elapsed 1m02s, at most 2m18s left")


def test_the_last_epoch_and_an_early_stop_have_no_time_left():
    last = epoch_line(_row(2, 1.5), 2, 3.0, best=False, monitor="val_accuracy", may_stop_sooner=False)
    assert last.endswith("took 1.5s, elapsed 3.0s")
    stopped = epoch_line(_row(5, 1.5), 9, 7.5, best=False, monitor="val_accuracy", may_stop_sooner=True,
                         stopping=True)
    assert stopped.endswith("took 1.5s, elapsed 7.5s, stopping early") and "left" not in stopped


def test_the_monitored_metric_is_always_shown():
    line = epoch_line(_row(1, 1.0, val_cls_loss=0.25), 5, 1.0, best=True, monitor="val_cls_loss",
                      may_stop_sooner=True)
    assert "val_accuracy=0.8700 val_cls_loss=0.2500  took" in line


def test_legend_explains_the_mark_from_the_runs_own_early_stopping():
    assert legend(EarlyStoppingConfig("val_accuracy", "max", patience=19)) == (
        "* = best val_accuracy so far (highest), saved to best.pt; "
        "early stopping after 20 epochs in a row without improvement (patience 19)")
    assert legend(EarlyStoppingConfig("val_rmse", "min", patience=3, min_delta=0.01), label="reg") == (
        "[reg] * = best val_rmse so far (lowest), saved to best.pt; "
        "early stopping after 4 epochs in a row without improvement by more than 0.01 (patience 3)")


@pytest.mark.parametrize("patience, losses, max_epochs, sooner", [
    (10, [0.5], 100, True),  # 11 misses in a row stop it long before epoch 100
    (10, [0.5], 12, False),  # epochs 2..12 are 11 epochs: the earliest stop is the maximum itself
    (10, [0.5], 13, True),
    (2, [0.5, 0.6, 0.7], 5, True),  # two misses so far: a third stops it at epoch 4, before the maximum of 5
    (2, [0.5, 0.6, 0.7], 4, False),
])
def test_the_time_left_is_an_upper_bound_only_while_early_stopping_can_end_sooner(patience, losses, max_epochs,
                                                                                   sooner):
    stopper = EarlyStopping(EarlyStoppingConfig("val_loss", "min", patience=patience))
    for epoch, loss in enumerate(losses, 1):
        stopper.step({"val_loss": loss}, epoch)
    assert early_stop_possible(stopper, len(losses), max_epochs) is sooner


def _epoch_lines(out: str, label: str = "") -> list[str]:
    return [line for line in out.splitlines() if line.startswith(f"{label}epoch ")]


def test_a_run_prints_the_legend_once_and_one_line_per_epoch_without_bar_frames(tmp_path, capsys):
    """Output that is not a terminal (here captured, as in a pipe or a log file) gets plain lines only."""
    from lab28.workloads.gsn.config import preset
    from lab28.workloads.gsn.experiment import run_gsn

    cfg = preset("quick", "joint")
    cfg.data.synth_n, cfg.data.val_size, cfg.train.epochs, cfg.train.threads = 80, 20, 2, 1
    run_gsn(cfg, tmp_path, "r", draw_figures=False)
    out, err = capsys.readouterr()
    lines = _epoch_lines(out)
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]
    assert lines[0].split()[2] == "*"  # the first epoch is always the best so far
    assert "left" in lines[0] and "left" not in lines[1]
    legends = [i for i, line in enumerate(out.splitlines()) if line.startswith("* = best val_accuracy so far")]
    assert len(legends) == 1 and out.splitlines()[legends[0] + 1] == lines[0]
    assert "\r" not in out and "\r" not in err


def test_a_resumed_run_counts_on_with_the_earlier_epochs_in_its_elapsed_time(tmp_path, capsys, monkeypatch):
    from lab28.runs.lifecycle import resume_run
    from test_run_safety import _interrupted_in_epoch_two

    run = _interrupted_in_epoch_two(tmp_path, monkeypatch)
    state = torch.load(run / "last.pt", map_location="cpu", weights_only=False)
    state["history"][0]["epoch_time_s"] = 600.0  # epoch 1 took ten minutes, as far as the resumed run knows
    torch.save(state, run / "last.pt")
    capsys.readouterr()
    resume_run(run, draw_figures=False)
    out = capsys.readouterr().out
    lines = _epoch_lines(out)
    assert len(lines) == 1 and lines[0].startswith("epoch 2/2 ")
    assert "elapsed 10m0" in lines[0] and out.count("= best ") == 1
