"""The image-classification workload's pieces of a run (the engine's lifecycle, lab28.runs.lifecycle, drives them).

A finished run folder holds: config.json, env.json, data.json (split sizes, class counts, a hash of the
validation rows), status.json, metrics.csv (one row per epoch), best.pt, final_metrics.json (validation
metrics incl. per class; test metrics, or "test": null and the reason), confusion.csv (10 x 10, rows = true
class; confusion_test.csv too when there is a test set), val_predictions.csv, prediction_samples.npz (the
images behind the prediction grid), figures/ drawn from those files, and tensorboard/ event files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lab28.io_utils import atomic_write_json, atomic_write_text
from lab28.models import create_model
from lab28.runs.files import write_matrix
from lab28.runs.samples import SAMPLES_FILE, choose_rows, write_samples
from lab28.training.trainer import metrics_from_outputs, predict_outputs
from lab28.workloads.classify.config import FashionRunConfig
from lab28.workloads.classify.data import FashionSplits, Split
from lab28.workloads.classify.task import FashionTask

GRID_RANDOM, GRID_MISTAKES = 24, 12  # prediction grid: random validation images + extra misclassified ones
# (so a grid of a 93% model still shows what it gets wrong)


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
              "translate": c.augment.translate, "erase": c.augment.erase,
              "cutmix": c.augment.cutmix, "seed": c.train.seed}
        # run_name="." keeps the hparams summary in this run's folder instead of a timestamped sub-folder.
        self.writer.add_hparams(hp, {f"hparam/{k}": v for k, v in metrics.items()}, run_name=".")

    def close(self) -> None:
        self.writer.close()


# -- one run -------------------------------------------------------------------------------------------------
def run_fashion(config: FashionRunConfig, out_dir: str | Path, name: str, overwrite: bool = False,
                data: FashionSplits | None = None, draw_figures: bool = True, on_epoch=None) -> Path:
    """Train one model and write its run folder (lab28.runs.lifecycle); returns the folder.

    on_epoch(row) is called with each epoch's metrics row (after TensorBoard has it)."""
    from lab28.runs.lifecycle import train_run
    from lab28.workloads.classify.workload import WORKLOAD, run_data

    return train_run(WORKLOAD, config, out_dir, name, overwrite=overwrite, draw_figures=draw_figures,
                     data=run_data(data) if data is not None else None, on_epoch=on_epoch)


def resume_fashion(run_dir: str | Path, draw_figures: bool = True) -> Path:
    """Continue an interrupted run from its last.pt: lab28.runs.lifecycle.resume_run."""
    from lab28.runs.lifecycle import resume_run

    return resume_run(run_dir, draw_figures=draw_figures)


def _evaluate_split(model, task, split: Split, config, device, precision):
    outputs, targets = predict_outputs(model, task, split.images, split.labels, config.train, device, precision)
    return metrics_from_outputs(task, outputs, targets), outputs, targets


def finalize_run(run_dir: Path, config: FashionRunConfig, model, task: FashionTask, splits: FashionSplits,
                 summary: dict, device, precision: str) -> dict:
    """Evaluate the best weights (loaded into `model`) on validation (and test, if present), write the artefacts."""
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
    pick = choose_rows(labels != preds_np, GRID_RANDOM, GRID_MISTAKES, seed=config.data.split_seed)
    write_samples(run_dir / SAMPLES_FILE, images=splits.val.images[torch.from_numpy(pick), 0].numpy(),
                  true=labels[pick], pred=preds_np[pick], val_index=pick, confidence=conf.numpy()[pick],
                  class_names=np.array(task.class_names))
    test = None
    if splits.test is not None:
        test, t_out, t_tgt = _evaluate_split(model, task, splits.test, config, device, precision)
        write_matrix(run_dir / "confusion_test.csv", task.confusion(t_out, t_tgt).numpy())
    result = {
        "model": config.model.name, "val": val, "test": test, "test_note": splits.test_note,
        **{k: v for k, v in summary.items() if k != "history"},
    }
    atomic_write_json(run_dir / "final_metrics.json", result)
    return result
