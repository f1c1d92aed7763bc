"""The training loop. Data lives as tensors on the device; batches are index slices of a random permutation.

The task object supplies `prepare_batch` (normalise + augment + targets), `loss`, and `metrics`; the trainer
only moves tensors, steps the optimizer, evaluates, logs one row per epoch and keeps checkpoints.
"""

from __future__ import annotations

import csv
import io
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn

from lab28.io_utils import atomic_write_text
from lab28.runinfo import peak_memory_mb, use_threads
from lab28.training.averaging import WeightAverage
from lab28.training.checkpoint import CHECKPOINT_FORMAT, CheckpointWriter, rng_state, set_rng_state
from lab28.training.config import TrainConfig
from lab28.training.device import autocast, resolve_device, resolve_precision, to_channels_last
from lab28.training.early_stopping import EarlyStopping
from lab28.training.optim import current_lr, make_optimizer, make_scheduler, set_graph_mode
from lab28.training.progress import early_stop_possible, epoch_line, legend
from lab28.training.step import TrainStep, graphs_supported


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@torch.inference_mode()
def predict_outputs(model, task, inputs, targets, config: TrainConfig, device, precision):
    """Concatenated model outputs (float32, on the device) and prepared targets for a whole split."""
    model.eval()
    outs: list[tuple[torch.Tensor, ...]] = []
    tgts: list[dict[str, torch.Tensor]] = []
    for start in range(0, inputs.shape[0], config.eval_batch_size):
        sl = slice(start, start + config.eval_batch_size)
        x, t = task.prepare_batch(inputs[sl].to(device), targets[sl].to(device), train=False)
        if config.channels_last:
            x = to_channels_last(x)
        with autocast(device, precision):
            out = model(x)
        outs.append(tuple(o.float() for o in (out if isinstance(out, tuple) else (out,))))
        tgts.append(t)
    outputs = tuple(torch.cat([o[k] for o in outs]) for k in range(len(outs[0])))
    joined = {key: torch.cat([t[key] for t in tgts]) for key in tgts[0]}
    return (outputs if len(outputs) > 1 else outputs[0]), joined


def evaluate(model, task, inputs, targets, config: TrainConfig, device, precision) -> dict[str, float]:
    """Loss (and its parts) plus all task metrics on one split."""
    outputs, t = predict_outputs(model, task, inputs, targets, config, device, precision)
    return metrics_from_outputs(task, outputs, t)


def metrics_from_outputs(task, outputs, targets) -> dict[str, float]:
    """Loss, its parts and the task metrics from outputs already computed (no second forward pass)."""
    loss, parts = task.loss(outputs, targets)
    result = {"loss": loss.item(), **{k: v.item() for k, v in parts.items()}}
    result.update(task.metrics(outputs, targets))
    return result


class MetricsLog:
    """metrics.csv, one row per epoch; the whole file is rewritten atomically so it is never half a row."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict[str, float]] = []

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        columns: list[str] = []
        for r in self.rows:
            columns += [c for c in r if c not in columns]
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buf.getvalue())


# With weight averaging, each row also has these metrics of the trained weights themselves (see `fit`).
RAW_METRICS = ("loss", "accuracy")


def monitor_choices(task, config: TrainConfig) -> list[str]:
    """The metrics.csv columns early stopping can watch, from what the task declares it reports: validation
    losses and metrics, training losses, and with weight averaging the trained weights' own validation ones."""
    losses, metrics = task.loss_names(), task.metric_names()
    names = [f"val_{k}" for k in (*losses, *metrics)] + [f"train_{k}" for k in losses]
    if config.weight_average:
        names += [f"val_raw_{k}" for k in RAW_METRICS if k in (*losses, *metrics)]
    return names


def check_monitor(task, config: TrainConfig) -> None:
    """Refuse an early-stopping monitor the run will not report, before the run starts rather than after epoch 1."""
    choices = monitor_choices(task, config)
    monitor = config.early_stopping.monitor
    if monitor not in choices:
        raise ValueError(f"early-stopping monitor {monitor!r} is not a metric of this run; choose one of: "
                         f"{', '.join(choices)}")


def _scalar_metrics(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    """Per-epoch rows keep the scalar summary metrics; per-pair/per-class detail goes to the final JSON."""
    return {f"{prefix}{k}": v for k, v in metrics.items() if "/" not in k}


class TrainingInterrupted(RuntimeError):
    """Ctrl-C during training; the last complete epoch is saved in last.pt."""


def fit(
    model: nn.Module,
    task,
    train_data: tuple[torch.Tensor, torch.Tensor],
    val_data: tuple[torch.Tensor, torch.Tensor],
    config: TrainConfig,
    run_dir: Path,
    extra_state: dict | None = None,
    on_epoch: Callable[[dict], str | None] | None = None,
    resume: dict | None = None,
    progress_label: str | None = None,
    epoch_data: Callable[[int], tuple[torch.Tensor, torch.Tensor]] | None = None,
    extra_val: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> dict[str, Any]:
    """Train with early stopping; writes metrics.csv, best.pt and last.pt into run_dir. Returns a summary.

    `resume`: the state from a last.pt (see lab28.training.checkpoint) to continue from.
    `on_epoch(row)`: called with each epoch's metrics row; a non-empty string it returns ends the run after that
    epoch, with that string as the stop reason, like early stopping does (a sweep's pruner stops runs so).
    `progress_label`: the run's name in a parallel suite: it starts each printed line, and no progress bar is drawn
    (the bars of several processes would overwrite each other).
    With `config.weight_average` the validation metrics, early stopping and best.pt are those of the moving average
    of the weights (lab28.training.averaging); last.pt holds the trained weights and the average, to resume both.
    `epoch_data(epoch)`: each epoch's training tensors in place of `train_data` (lab28.workloads.base.RunData), the
    same number of images every epoch (the schedule counts steps); it is asked again for the same epoch on resume.
    `extra_val`: further named sets evaluated each epoch beside `val_data` (columns `val_<name>_<metric>`), never
    watched by early stopping.
    """
    config.validate()
    check_monitor(task, config)
    run_dir = Path(run_dir)
    use_threads(config.threads)
    device = resolve_device(config.device)
    precision = resolve_precision(config.precision, device)
    torch.manual_seed(config.seed)
    model.to(device)
    if config.channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if config.compile else model
    use_graph = graphs_supported(config, device, precision)
    optimizer = make_optimizer(model, config, device, capturable=use_graph)
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    start_epoch = resume["epoch"] + 1 if resume is not None else 1
    if epoch_data is not None and start_epoch <= config.epochs and not (resume or {}).get("stopped"):
        train_data = epoch_data(start_epoch)  # a run that has stopped trains no further: no data to make
    steps = steps_per_epoch(train_data[0].shape[0], config.batch_size)
    scheduler = make_scheduler(optimizer, config, steps)
    stopper = EarlyStopping(config.early_stopping)
    # One generator drives shuffling and augmentation, so a seed fixes the whole run.
    gen = torch.Generator(device=device).manual_seed(config.seed)
    train_x, train_y = (t.to(device) for t in train_data)
    val_x, val_y = val_data
    n = train_x.shape[0]
    log = MetricsLog(run_dir / "metrics.csv")
    history: list[dict[str, float]] = []
    if resume is not None:
        model.load_state_dict(resume["model"])
        optimizer.load_state_dict(resume["optimizer"])
        set_graph_mode(optimizer, use_graph, device)  # the saved state may come from a run with(out) graphs
        if scheduler is not None and resume.get("scheduler") is not None:
            scheduler.load_state_dict(resume["scheduler"])
        if scaler is not None and resume.get("scaler") is not None:
            scaler.load_state_dict(resume["scaler"])
        stopper.load_state_dict(resume["early_stopping"])
        set_rng_state(resume["rng"], gen)
        for row in resume["history"]:
            history.append(row)
            log.rows.append(row)
    average = WeightAverage(model, config.weight_average) if config.weight_average else None
    if average is not None and resume is not None and resume.get("average") is not None:
        average.load_state_dict(resume["average"])
    eval_model = average.model if average is not None else model  # what is evaluated, monitored and in best.pt
    stop_reason = f"reached the maximum of {config.epochs} epochs"
    t_start = time.perf_counter() - sum(r.get("epoch_time_s", 0.0) for r in history)

    train_step = TrainStep(step_model, task, optimizer, scaler, train_x, train_y, gen, config, device, precision,
                           use_graph=use_graph, average=average)
    writer = CheckpointWriter()
    try:
        for epoch in range(start_epoch, config.epochs + 1):
            if resume is not None and epoch == start_epoch and resume.get("stopped"):
                stop_reason = resume["stop_reason"]
                break
            model.train()
            t_epoch = time.perf_counter()
            if epoch_data is not None and epoch != start_epoch:  # the first epoch's tensors are already in place
                _use_epoch_data(train_step, epoch_data, epoch, n, device)
            t_train = time.perf_counter()
            try:
                train_metrics = run_epoch(train_step, scheduler, epoch, steps, show_bar=progress_label is None)
            except KeyboardInterrupt:
                raise TrainingInterrupted(
                    f"interrupted during epoch {epoch}"
                    + (f"; epochs 1..{epoch - 1} are saved" if epoch > start_epoch or epoch > 1 else "")) from None
            train_time = time.perf_counter() - t_train
            val_metrics = evaluate(eval_model, task, val_x, val_y, config, device, precision)
            row = {"epoch": epoch, **_scalar_metrics("train_", train_metrics), **_scalar_metrics("val_", val_metrics)}
            for name, (extra_x, extra_y) in (extra_val or {}).items():
                extra = evaluate(eval_model, task, extra_x, extra_y, config, device, precision)
                row.update(_scalar_metrics(f"val_{name}_", extra))
            if average is not None:  # the trained weights themselves, for comparison (not monitored)
                raw = evaluate(model, task, val_x, val_y, config, device, precision)
                row.update({f"val_raw_{k}": raw[k] for k in RAW_METRICS if k in raw})
            row["lr"] = current_lr(optimizer)
            row["train_time_s"] = train_time
            row["epoch_time_s"] = time.perf_counter() - t_epoch
            row["train_images_per_s"] = min(n, steps * config.batch_size) / train_time
            history.append(row)
            log.append(row)
            stop = stopper.step(row, epoch)
            if stop:
                stop_reason = f"early stopping: {stopper.reason}"
            request = on_epoch(row) if on_epoch is not None else None
            if request and not stop:
                stop, stop_reason = True, str(request)
            files = []
            weights = model.state_dict()  # one dict for both files, so the writer copies the weights once
            averaged = average.state_dict() if average is not None else None
            if stopper.improved:
                best_weights = averaged["weights"] if averaged is not None else weights
                files.append(({"format": CHECKPOINT_FORMAT, "model": best_weights, "epoch": epoch,
                               "metrics": row, **(extra_state or {})}, run_dir / "best.pt"))
            files.append(({
                "format": CHECKPOINT_FORMAT, "model": weights, "average": averaged, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler is not None else None,
                "scaler": scaler.state_dict() if scaler is not None else None,
                "early_stopping": stopper.state_dict(), "rng": rng_state(gen), "epoch": epoch, "history": history,
                "stopped": stop, "stop_reason": stop_reason, **(extra_state or {}),
            }, run_dir / "last.pt"))
            writer.write(files)  # in the background: the next epoch starts while the files are written
            if config.progress:
                _print_epoch(config, row, stopper, stop, time.perf_counter() - t_start,
                             first=epoch == start_epoch, label=progress_label)
            if stop:
                break
    except BaseException as exc:
        # The training error (interrupt, NaN, a full disk, ...) is the one to report; a failed write in the
        # background is worth a warning only when it is not that same disk problem.
        writer.wait(raise_error=False, warn=not isinstance(exc, OSError))
        raise
    writer.wait()  # best.pt and last.pt are complete on disk before anyone reads them
    total = time.perf_counter() - t_start
    return {
        "epochs_run": len(history), "best_epoch": stopper.best_epoch, "best_value": stopper.best,
        "monitor": config.early_stopping.monitor, "stop_reason": stop_reason, "runtime_s": total,
        "device": str(device), "precision": precision, "cuda_graphs": use_graph,
        "weight_average": config.weight_average, "history": history,
        **peak_memory_mb(),
    }


def _use_epoch_data(train_step: TrainStep, epoch_data, epoch: int, n: int, device: torch.device) -> None:
    """Hand the step runner this epoch's training tensors; another size than the first epoch's is refused (the
    learning-rate schedule and a captured CUDA graph both count on it)."""
    x, y = epoch_data(epoch)
    if x.shape[0] != n or y.shape[0] != n:
        raise ValueError(f"epoch {epoch} has {x.shape[0]} training images, the first had {n}: epoch data must keep "
                         "one size")
    train_step.set_train_data(x.to(device), y.to(device))


def steps_per_epoch(n: int, batch_size: int) -> int:
    """Batches per epoch. A last batch of a single image is skipped (it is reshuffled into the next epoch):
    BatchNorm cannot normalise one sample in training mode, and one image is no gradient estimate anyway."""
    steps = math.ceil(n / batch_size)
    return steps - 1 if steps > 1 and n % batch_size == 1 else steps


def run_epoch(train_step: TrainStep, scheduler, epoch: int, steps: int, show_bar: bool = True) -> dict[str, float]:
    """One pass over the training set (`steps` batches of a fresh permutation); the mean loss and its parts.
    `show_bar`: a progress bar where config.progress asks for one and stderr is a terminal."""
    config, n = train_step.config, train_step.train_x.shape[0]
    perm = torch.randperm(n, device=train_step.device, generator=train_step.generator)
    train_step.start_epoch()
    bar = _progress(config, steps, epoch) if show_bar else None
    for step in range(steps):
        train_step(perm[step * config.batch_size:(step + 1) * config.batch_size])
        if scheduler is not None:
            scheduler.step()
        # The loss sums stay on the device; reading them (a sync) only every `log_every` steps keeps the GPU fed.
        if step % config.log_every == 0 or step == steps - 1:
            bad = int(train_step.first_bad)
            if bad >= 0:
                if bar is not None:
                    bar.close()
                raise TrainingDiverged(f"loss became non-finite at epoch {epoch}, step {bad}")
            if bar is not None:
                seen = min(n, (step + 1) * config.batch_size)
                bar.set_postfix(loss=f"{train_step.sums['loss'].item() / seen:.4f}")
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    seen = min(n, steps * config.batch_size)
    return {k: v.item() / seen for k, v in train_step.sums.items()}


def _train_epoch(model, task, optimizer, scheduler, scaler, train_x, train_y, gen, config: TrainConfig, device,
                 precision: str, epoch: int, steps: int) -> dict[str, float]:
    """One eager pass with a throw-away step runner: for experiments that drive the trainer's step by hand."""
    train_step = TrainStep(model, task, optimizer, scaler, train_x, train_y, gen, config, device, precision)
    return run_epoch(train_step, scheduler, epoch, steps)


def _progress(config: TrainConfig, steps: int, epoch: int):
    if not config.progress or not sys.stderr.isatty():  # bar frames ('\r') only garble a piped log
        return None
    from tqdm import tqdm

    return tqdm(total=steps, desc=f"epoch {epoch}/{config.epochs}", leave=False, dynamic_ncols=True, mininterval=0.5)


def _print_epoch(config: TrainConfig, row: dict, stopper: EarlyStopping, stopping: bool, elapsed_s: float,
                 first: bool, label: str | None) -> None:
    """The epoch's line (lab28.training.progress); before the first one of this process, the legend of its mark."""
    if first:
        print(legend(config.early_stopping, label), flush=True)
    print(epoch_line(row, config.epochs, elapsed_s, best=stopper.improved, monitor=config.early_stopping.monitor,
                     may_stop_sooner=early_stop_possible(stopper, int(row["epoch"]), config.epochs),
                     stopping=stopping, label=label), flush=True)
