"""One Fashion-MNIST run end to end: data -> model -> training -> final evaluation -> a self-describing folder.

A finished run folder holds: config.json, env.json, data.json (split sizes, class counts, a hash of the
validation rows), status.json, metrics.csv (one row per epoch), best.pt, final_metrics.json (validation
metrics incl. per class; test metrics, or "test": null and the reason), confusion.csv (10 x 10, rows = true
class; confusion_test.csv too when there is a test set), val_predictions.csv, prediction_samples.npz (the
images behind the prediction grid), figures/ drawn from those files, and tensorboard/ event files.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import numpy as np
import torch

from lab28.errors import Lab28Error
from lab28.workloads.classify.config import FashionRunConfig, config_from_dict
from lab28.workloads.classify.data import FashionSplits, Split, load_fashion
from lab28.workloads.classify.task import FashionTask
from lab28.runfiles import write_matrix
from lab28.io_utils import atomic_write_bytes, atomic_write_json, atomic_write_text
from lab28.run_folder import RunFolder, check_run_name
from lab28.models import create_model
from lab28.models.registry import count_parameters
from lab28.runinfo import environment, use_threads
from lab28.train.device import resolve_device, resolve_precision
from lab28.train.trainer import fit, metrics_from_outputs, predict_outputs

GRID_RANDOM, GRID_MISTAKES = 24, 12  # prediction grid: random validation images + extra misclassified ones


def build_model(config: FashionRunConfig):
    return create_model(config.model.name, workload="classify", dropout=config.model.dropout)


# -- TensorBoard (optional) ----------------------------------------------------------------------------------
class TensorBoardLog:
    """Thin wrapper over SummaryWriter: one scalar per metrics.csv column per epoch, images, hparams."""

    def __init__(self, writer):
        self.writer = writer

    @staticmethod
    def open(log_dir: Path) -> "TensorBoardLog | None":
        try:  # torch.utils.tensorboard raises ImportError when the tensorboard package is absent
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            print("note: the `tensorboard` package is not installed; skipping TensorBoard logging "
                  "(pip install 'lab28[tensorboard]')", flush=True)
            return None
        return TensorBoardLog(SummaryWriter(log_dir=str(log_dir)))

    def epoch(self, row: dict) -> None:
        step = int(row["epoch"])
        for key, value in row.items():
            if key == "epoch":
                continue
            # train_loss -> loss/train, val_accuracy -> accuracy/val: TensorBoard then groups train and val.
            split, _, metric = key.partition("_")
            if key.endswith("_s"):  # train_time_s, epoch_time_s, train_images_per_s
                tag = f"time/{key}"
            elif split in ("train", "val") and metric:
                tag = f"{metric}/{split}"
            else:
                tag = key  # lr
            self.writer.add_scalar(tag, float(value), step)
        self.writer.flush()

    def image(self, tag: str, png: Path, step: int = 0) -> None:
        from PIL import Image

        pixels = np.asarray(Image.open(png).convert("RGB"))
        self.writer.add_image(tag, pixels, step, dataformats="HWC")

    def hparams(self, config: FashionRunConfig, metrics: dict[str, float]) -> None:
        c = config
        hp = {"model": c.model.name, "dropout": c.model.dropout, "label_smoothing": c.task.label_smoothing,
              "optimizer": c.train.optimizer, "lr": c.train.lr, "weight_decay": c.train.weight_decay,
              "batch_size": c.train.batch_size, "scheduler": c.train.scheduler, "epochs": c.train.epochs,
              "hflip": c.augment.hflip, "vflip": c.augment.vflip, "rotate": c.augment.rotate,
              "translate": c.augment.translate, "erase": c.augment.erase, "seed": c.train.seed}
        # run_name="." keeps the hparams summary in this run's folder instead of a timestamped sub-folder.
        self.writer.add_hparams(hp, {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")

    def close(self) -> None:
        self.writer.close()


# -- one run -------------------------------------------------------------------------------------------------
def check_config(config: FashionRunConfig) -> tuple[torch.device, str]:
    """Validate every value and resolve the device and precision on this machine: (device, precision), or a
    one-line Lab28Error before anything is loaded or written."""
    try:
        config.validate()
        device = resolve_device(config.train.device)
        return device, resolve_precision(config.train.precision, device)
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None


def run_fashion(config: FashionRunConfig, out_dir: str | Path, name: str, overwrite: bool = False,
                data: FashionSplits | None = None, draw_figures: bool = True, on_epoch=None) -> Path:
    """Train one model and write its run folder; returns the folder (a new suffixed one if `name` exists).

    on_epoch(row) is called with each epoch's metrics row (after TensorBoard has it)."""
    # Everything that can reject the configuration runs before the run folder exists, so a bad flag leaves nothing.
    check_run_name(name)
    device, precision = check_config(config)
    splits = data if data is not None else load_fashion(config.data)
    folder = RunFolder.create(out_dir, name, overwrite=overwrite)
    run_dir = folder.path
    config.train.threads = use_threads(config.train.threads)
    with folder.active(resume_command=f"lab28 fashion train --resume {shlex.quote(str(run_dir.resolve()))}"):
        if config.data.path:  # absolute, so that --resume works from any working directory
            config.data.path = str(Path(config.data.path).resolve())
        atomic_write_json(run_dir / "config.json", config.to_dict())
        atomic_write_json(run_dir / "env.json", environment(str(device), precision))
        atomic_write_json(run_dir / "data.json", splits.describe())
        torch.manual_seed(config.train.seed)
        _train_and_finalize(run_dir, config, splits, device, precision, draw_figures, resume=None,
                            on_epoch=on_epoch)
    return folder.finish()


def resume_fashion(run_dir: str | Path, draw_figures: bool = True) -> Path:
    """Continue an interrupted Fashion-MNIST run from its last.pt (same data split, config and random states)."""
    from lab28.runfiles import read_unfinished_run

    run_dir = Path(run_dir)
    folder = RunFolder.open_existing(run_dir)
    try:
        config, state = read_unfinished_run(run_dir, config_from_dict)
        device = resolve_device(config.train.device)
        splits = load_fashion(config.data)
    except BaseException:
        folder.release()
        raise
    print(f"[{run_dir.name}] resuming after epoch {state['epoch']}", flush=True)
    with folder.active(resume_command=f"lab28 fashion train --resume {shlex.quote(str(run_dir.resolve()))}"):
        _train_and_finalize(run_dir, config, splits, device, resolve_precision(config.train.precision, device),
                            draw_figures, resume=state)
    return folder.finish()


def _chain(*callbacks):
    """One on_epoch callback calling each given one (None entries skipped) in order."""
    active = [c for c in callbacks if c is not None]
    if not active:
        return None

    def call(row: dict) -> None:
        for callback in active:
            callback(row)

    return call


def _train_and_finalize(run_dir: Path, config: FashionRunConfig, splits: FashionSplits, device, precision: str,
                        draw_figures: bool, resume: dict | None, on_epoch=None) -> None:
    model = build_model(config)
    params = count_parameters(model)
    task = FashionTask(config.task, config.augment, config.data.dataset)
    tb = TensorBoardLog.open(run_dir / "tensorboard") if config.tensorboard else None
    print(f"[{run_dir.name}] model={config.model.name} ({params:,} parameters) device={device} "
          f"precision={precision} train={len(splits.train)} val={len(splits.val)} "
          f"test={len(splits.test) if splits.test is not None else 'none'}", flush=True)
    try:
        summary = fit(model, task, (splits.train.images, splits.train.labels), (splits.val.images, splits.val.labels),
                      config.train, run_dir, extra_state={"config": config.to_dict()},
                      on_epoch=_chain(tb.epoch if tb is not None else None, on_epoch), resume=resume)
        summary["params"] = params
        result = finalize_run(run_dir, config, model, task, splits, summary, device, precision)
        if draw_figures:
            from lab28.workloads.classify.report import draw_run_figures

            draw_run_figures(run_dir)
        if tb is not None:
            if (run_dir / "figures" / "predictions.png").exists():
                tb.image("predictions/val", run_dir / "figures" / "predictions.png", int(result["best_epoch"] or 0))
            if (run_dir / "figures" / "confusion.png").exists():
                tb.image("confusion/val", run_dir / "figures" / "confusion.png", int(result["best_epoch"] or 0))
            hp_metrics = {"val_accuracy": result["val"]["accuracy"], "val_macro_f1": result["val"]["macro_f1"]}
            if result["test"] is not None:
                hp_metrics["test_accuracy"] = result["test"]["accuracy"]
            tb.hparams(config, hp_metrics)
    finally:
        if tb is not None:
            tb.close()


def _evaluate_split(model, task, split: Split, config, device, precision):
    outputs, targets = predict_outputs(model, task, split.images, split.labels, config.train, device, precision)
    return metrics_from_outputs(task, outputs, targets), outputs, targets


def grid_indices(labels: np.ndarray, preds: np.ndarray, seed: int = 0) -> np.ndarray:
    """Validation rows for the prediction grid: GRID_RANDOM at random plus up to GRID_MISTAKES more
    misclassified ones, so a grid of a 93% model still shows what it gets wrong."""
    rng = np.random.default_rng(seed)
    n = len(labels)
    chosen = rng.choice(n, size=min(GRID_RANDOM, n), replace=False)
    wrong = np.setdiff1d(np.flatnonzero(labels != preds), chosen)
    extra = rng.choice(wrong, size=min(GRID_MISTAKES, len(wrong)), replace=False) if len(wrong) else wrong
    return np.sort(np.concatenate([chosen, extra]).astype(np.int64))


def finalize_run(run_dir: Path, config: FashionRunConfig, model, task: FashionTask, splits: FashionSplits,
                 summary: dict, device, precision: str) -> dict:
    """Reload the best weights, evaluate them on validation (and test, if present), write the artefacts."""
    best = torch.load(run_dir / "best.pt", map_location=device, weights_only=True)
    model.load_state_dict(best["model"])
    val, outputs, targets = _evaluate_split(model, task, splits.val, config, device, precision)
    labels = targets["labels"].cpu().numpy()
    probs = torch.softmax(outputs.float(), dim=1).cpu()
    conf, preds = probs.max(dim=1)
    preds_np = preds.numpy()
    write_matrix(run_dir / "confusion.csv", task.confusion(outputs, targets).numpy())
    lines = ["val_index,train_file_row,true,pred,confidence"]
    for i, (row, t, p, c) in enumerate(zip(splits.val_indices.tolist(), labels.tolist(), preds_np.tolist(), conf.tolist())):
        lines.append(f"{i},{row},{t},{p},{c:.4f}")
    atomic_write_text(run_dir / "val_predictions.csv", "\n".join(lines) + "\n")
    pick = grid_indices(labels, preds_np, seed=config.data.split_seed)
    buf = io.BytesIO()
    np.savez_compressed(buf, images=splits.val.images[torch.from_numpy(pick), 0].numpy(), true=labels[pick],
                        pred=preds_np[pick], confidence=conf.numpy()[pick], val_index=pick,
                        class_names=np.array(task.class_names))
    atomic_write_bytes(run_dir / "prediction_samples.npz", buf.getvalue())
    test = None
    if splits.test is not None:
        test, t_out, t_tgt = _evaluate_split(model, task, splits.test, config, device, precision)
        write_matrix(run_dir / "confusion_test.csv", task.confusion(t_out, t_tgt).numpy())
    result = {
        "model": config.model.name, "val": val, "test": test, "test_note": splits.test_note,
        **{k: v for k, v in summary.items() if k != "history"},
    }
    atomic_write_json(run_dir / "final_metrics.json", result)
    (run_dir / "last.pt").unlink(missing_ok=True)  # only needed to resume an unfinished run
    return result
