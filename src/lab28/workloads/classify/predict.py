"""Image-classification predictions on new images and evaluation on labelled IDX files (the MNIST family).

Records: class, class_name (the run's own class names, as its data.json records them), probability (softmax of
the predicted class), top_k [(class name, probability), ...].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from lab28.data.idx import find_fashion_files, load_idx_pair
from lab28.data.png import read_png
from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_json
from lab28.runs.model import LoadedRun, RunPredictor, as_image_batch, load_run_model
from lab28.training.trainer import evaluate, metrics_from_outputs, predict_outputs
from lab28.workloads.classify.task import FashionTask


def _logits(outputs) -> torch.Tensor:
    return outputs[0] if isinstance(outputs, tuple) else outputs


class ClassifyPredictor(RunPredictor):
    """A finished classification run's best weights (lab28.workloads.base.Predictor)."""

    def __init__(self, run: LoadedRun, top_k: int = 3):
        super().__init__(run, top_k)
        # The run's data set decides the normalisation and the class names (lab28.data.specs).
        self.task = FashionTask(run.config.task, dataset=run.config.data.dataset)
        self.class_names = self.task.class_names

    @property
    def columns(self) -> list[str]:
        top = [f"top{k + 1}_{part}" for k in range(self.top_k) for part in ("class_name", "prob")]
        return ["class", "class_name", "probability", *top]

    def read_png(self, path: Path) -> np.ndarray:
        return read_png(path, channel="L")  # greyscale data: colour images are read as their luminance

    def predict(self, images) -> list[dict]:
        x = as_image_batch(images)
        if x.shape[0] == 0:
            return []
        probs = _logits(self.run.outputs(self.task, x, torch.zeros(x.shape[0], dtype=torch.long))).softmax(dim=1)
        top_p, top_c = probs.topk(min(self.top_k, probs.shape[1]), dim=1)
        records = []
        for p, c in zip(top_p.tolist(), top_c.tolist()):
            records.append({"class": c[0], "class_name": self.class_names[c[0]], "probability": p[0],
                            "top_k": [(self.class_names[j], q) for j, q in zip(c, p)]})
        return records

    def row(self, record: dict) -> list:
        top = [cell for name, p in record["top_k"] for cell in (name, f"{p:.4f}")]
        return [record["class"], record["class_name"], f"{record['probability']:.4f}", *top]


def load_predictor(run_dir: str | Path, device: str = "auto") -> ClassifyPredictor:
    return ClassifyPredictor(load_run_model(run_dir, device, workload="classify"))


class HFlipTTA(nn.Module):
    """Wraps a classifier: forward returns the log of the softmax averaged over the image and its mirror image."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = sum(_logits(self.model(v)).float().softmax(dim=1) for v in (x, x.flip(-1)))
        return (probs / 2).clamp_min(1e-12).log()  # log-probabilities: cross-entropy on them is the NLL


def labelled_files(data_dir: str | Path) -> tuple[str, tuple[Path, Path]]:
    """("t10k" | "train", (images, labels)) of an IDX folder: the test pair if present, else the training pair."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise Lab28Error(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    for split in ("t10k", "train"):
        files = find_fashion_files(folder, split)
        if files is not None:
            return split, files
    raise Lab28Error(f"{folder}: no labelled IDX files (t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, or the "
                     "train- pair; raw or .gz)")


def evaluate_run(run_dir: str | Path, data_dir: str | Path, out_path: str | Path | None = None,
                 device: str = "auto", tta: bool = False) -> tuple[Path, dict]:
    """Metrics (incl. per class) and the confusion matrix of the run's best weights on the labelled IDX files of
    data_dir (t10k if present, else train). tta=True adds metrics averaged over each image and its mirror image,
    for runs trained with horizontal flips only (elsewhere a mirror image need not keep its class: digits).

    Writes {"run", "data", "split", "files", "images", "metrics", "confusion"[, "metrics_tta"]} to out_path
    (default RUN_DIR/eval-<data folder name>.json) and returns (that path, the same dict)."""
    run_dir = Path(run_dir)
    run = load_run_model(run_dir, device, workload="classify")
    config = run.config
    if tta and not config.augment.hflip > 0:
        raise Lab28Error(f"{run_dir}: TTA averages over horizontal flips, which this run never trained with "
                         "(augment.hflip = 0); evaluate without it")
    split, files = labelled_files(data_dir)
    images, labels = load_idx_pair(*files)
    if len(labels) == 0:
        raise Lab28Error(f"{files[1]}: no images to evaluate")
    x, y = torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels)
    task = FashionTask(config.task, dataset=config.data.dataset)
    outputs, targets = predict_outputs(run.model, task, x, y, config.train, run.device, run.precision)
    result = {"run": str(run_dir), "data": str(Path(data_dir).expanduser().resolve()), "split": split,
              "files": [str(f) for f in files], "images": len(labels),
              "metrics": metrics_from_outputs(task, outputs, targets),
              "confusion": task.confusion(outputs, targets).tolist()}
    if tta:
        result["metrics_tta"] = evaluate(HFlipTTA(run.model), task, x, y, config.train, run.device, run.precision)
    out = Path(out_path) if out_path else run_dir / f"eval-{Path(result['data']).name or 'data'}.json"
    atomic_write_json(out, result)
    return out, result
