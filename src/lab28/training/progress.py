"""What a run prints while it trains: one line per epoch, and once before the first, a legend for its mark.

    * = best val_accuracy so far (highest), saved to best.pt; early stopping after 11 epochs in a row without ...
    epoch  1/100 * train_loss=0.9120 val_loss=0.6011 val_accuracy=0.7812  took 1.6s, elapsed 1.6s, at most 2m38s left

One format for a single run and for the workers of a parallel suite, whose lines start with the run's label
(`[joint] epoch  1/100 ...`) so that the interleaved lines of several runs can be told apart. Plain lines only:
they read the same in a terminal, a pipe and a log file.
"""

from __future__ import annotations

from lab28.training.early_stopping import EarlyStopping, EarlyStoppingConfig

BEST_MARK = "*"
# Shown when a row has them (the monitored metric is always shown too, so that the mark can be checked).
SHOWN_METRICS = ("train_loss", "val_loss", "val_accuracy", "val_macro_f1", "val_rmse")


def format_duration(seconds: float) -> str:
    """A duration as people read it: 1.6s, 42s, 1m15s, 2h05m."""
    if seconds < 9.95:
        return f"{max(0.0, seconds):.1f}s"
    total = round(seconds)
    if total < 60:
        return f"{total}s"
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    minutes = round(seconds / 60)
    return f"{minutes // 60}h{minutes % 60:02d}m"


def legend(stopping: EarlyStoppingConfig, label: str | None = None) -> str:
    """The meaning of the best mark and when early stopping ends the run, from the run's own settings."""
    direction = "highest" if stopping.mode == "max" else "lowest"
    delta = f" by more than {stopping.min_delta:g}" if stopping.min_delta else ""
    # EarlyStopping stops at the (patience + 1)-th epoch in a row that brings no improvement.
    text = (f"{BEST_MARK} = best {stopping.monitor} so far ({direction}), saved to best.pt; early stopping after "
            f"{stopping.patience + 1} epochs in a row without improvement{delta} (patience {stopping.patience})")
    return _prefixed(text, label)


def early_stop_possible(stopper: EarlyStopping, epoch: int, max_epochs: int) -> bool:
    """Whether early stopping can still end the run before `max_epochs`, as things stand after `epoch`."""
    misses_to_stop = stopper.config.patience + 1 - stopper.bad_epochs
    return misses_to_stop < max_epochs - epoch


def time_left(elapsed_s: float, epoch: int, max_epochs: int) -> float:
    """Seconds the epochs after `epoch` up to `max_epochs` take at the mean pace of the epochs so far."""
    return elapsed_s / epoch * (max_epochs - epoch)


def epoch_line(row: dict, max_epochs: int, elapsed_s: float, *, best: bool, monitor: str,
               may_stop_sooner: bool, stopping: bool = False, label: str | None = None) -> str:
    """One epoch's line: `epoch k/N`, the best mark, key metrics, the epoch's time, the run's elapsed time and
    the time left. `row` is the epoch's metrics.csv row; `elapsed_s` counts every epoch of the run so far (also
    those before a resume). The time left is an upper bound ("at most") while early stopping may end sooner."""
    epoch = int(row["epoch"])
    counter = f"epoch {epoch:>{len(str(max_epochs))}}/{max_epochs}"
    mark = BEST_MARK if best else " "
    keys = [k for k in SHOWN_METRICS if k in row] + ([monitor] if monitor not in SHOWN_METRICS else [])
    metrics = " ".join(f"{k}={row[k]:.4f}" for k in keys if k in row)
    times = [f"took {format_duration(row['epoch_time_s'])}", f"elapsed {format_duration(elapsed_s)}"]
    if stopping:
        times.append("stopping early")
    elif epoch < max_epochs:
        bound = "at most" if may_stop_sooner else "about"
        times.append(f"{bound} {format_duration(time_left(elapsed_s, epoch, max_epochs))} left")
    return _prefixed(f"{counter} {mark} {metrics}  {', '.join(times)}", label)


def _prefixed(text: str, label: str | None) -> str:
    return f"[{label}] {text}" if label else text
