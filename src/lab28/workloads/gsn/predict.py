"""Predict on a user's own images with a finished GSN run: classes, pair and counts per image."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import torch

from lab28.errors import Lab28Error, file_error
from lab28.workloads.gsn.evaluate import load_run_model
from lab28.workloads.gsn.labels import SHAPES, class_name, pair_name
from lab28.workloads.gsn.loader import decode_png
from lab28.workloads.gsn.task import GSNTask
from lab28.io_utils import atomic_write_text
from lab28.train.device import autocast, resolve_device, resolve_precision


def collect_images(paths: list[str]) -> list[Path]:
    """PNG files named directly or found (sorted) in named folders; anything else is refused (see decode_png)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        elif path.exists():
            found.append(path)  # decode_png refuses a FIFO or device without opening it
        else:
            raise file_error(path, "no such file or folder")
    if not found:
        raise Lab28Error(f"no PNG images found in {', '.join(paths)}")
    return found


def decode_images(files: list[Path]) -> tuple[list[Path], list[np.ndarray], list[str]]:
    """(readable files, their 28 x 28 images, one `path: reason` line per file that could not be used)."""
    good, images, skipped = [], [], []
    for path in files:
        try:
            images.append(decode_png(path))
        except Lab28Error as exc:
            skipped.append(str(exc))
            continue
        good.append(path)
    if not good:
        first = skipped[0] if len(skipped) == 1 else f"none of the {len(skipped)} images is usable; first: {skipped[0]}"
        raise Lab28Error(first)
    return good, images, skipped


@torch.inference_mode()
def predict_images(model, task: GSNTask, images: torch.Tensor, device, precision: str, batch: int = 1000):
    """(log_probs, counts) for a uint8 N x 1 x 28 x 28 tensor, in batches."""
    model.eval()
    outs = []
    for start in range(0, images.shape[0], batch):
        x, _ = task.prepare_batch(images[start:start + batch].to(device),
                                  torch.zeros(min(batch, images.shape[0] - start), 6, dtype=torch.long, device=device),
                                  train=False)
        with autocast(device, precision):
            lp, counts = model(x)
        outs.append((lp.float(), counts.float()))
    return torch.cat([o[0] for o in outs]), torch.cat([o[1] for o in outs])


def predict_run(run_dir: str | Path, paths: list[str], out_path: str | Path | None = None, device: str = "auto",
                top_k: int = 3) -> tuple[Path | None, str, list[str]]:
    """Predict every usable image; write the CSV to out_path (or return its text when out_path is None).

    Returns (out_path or None, CSV text or "", one `path: reason` line per skipped file). Bad files do not stop
    the others; only when no file is usable is that an error.
    """
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    model, config = load_run_model(run_dir, dev)
    files, arrays, skipped = decode_images(collect_images(paths))
    images = torch.from_numpy(np.stack(arrays)).unsqueeze(1)
    task = GSNTask(config.task)
    precision = resolve_precision(config.train.precision, dev)
    log_probs, counts = predict_images(model, task, images, dev, precision)
    classes, pred_counts = task.predict((log_probs, counts))
    probs = log_probs.exp()
    top_p, top_c = probs.topk(top_k, dim=1)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", "class", "class_name", "pair", *[f"count_{s}" for s in SHAPES],
                     *[f"top{k + 1}_class_name,top{k + 1}_prob".split(",")[i] for k in range(top_k) for i in range(2)]])
    for k, path in enumerate(files):
        c = int(classes[k])
        row = [str(path), c, class_name(c), pair_name(c // 9), *[f"{v:.3f}" for v in pred_counts[k].tolist()]]
        for j in range(top_k):
            row += [class_name(int(top_c[k, j])), f"{float(top_p[k, j]):.4f}"]
        writer.writerow(row)
    if out_path is None:
        return None, buf.getvalue(), skipped
    atomic_write_text(out_path, buf.getvalue())
    return Path(out_path), "", skipped
