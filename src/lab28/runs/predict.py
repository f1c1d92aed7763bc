"""Predict on a user's own PNG files with a finished run of any workload: one CSV row per usable image.

The engine finds the files, reads each one through the workload's Predictor (which knows the channel its data
uses), skips the unusable ones with one `path: reason` line each, and writes the CSV; the workload's Predictor
turns the model's outputs into records and CSV cells (lab28.workloads.base.Predictor).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from lab28.errors import Lab28Error, file_error
from lab28.io_utils import atomic_write_text
from lab28.runs.model import finished_run_workload


def collect_images(paths: list[str | Path]) -> list[Path]:
    """PNG files named directly or found (sorted) in named folders; a missing path is an error."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.suffix.lower() == ".png")
        elif path.exists():
            found.append(path)  # read_png refuses a FIFO or device without opening it
        else:
            raise file_error(path, "no such file or folder")
    if not found:
        raise Lab28Error(f"no PNG images found in {', '.join(str(p) for p in paths)}")
    return found


def decode_images(files: list[Path], read: Callable[[Path], np.ndarray],
                  ) -> tuple[list[Path], list[np.ndarray], list[str]]:
    """(readable files, their 28 x 28 images, one `path: reason` line per file that could not be used).

    Bad files do not stop the others; only when no file is usable is that an error."""
    good, images, skipped = [], [], []
    for path in files:
        try:
            images.append(read(path))
        except Lab28Error as exc:
            skipped.append(str(exc))
            continue
        good.append(path)
    if not good:
        first = skipped[0] if len(skipped) == 1 else f"none of the {len(skipped)} images is usable; first: {skipped[0]}"
        raise Lab28Error(first)
    return good, images, skipped


def predictions_csv(predictor, files: list[Path], records: list[dict]) -> str:
    """CSV text: a `file` column, then the predictor's columns; the csv module quotes names with commas or quotes."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["file", *predictor.columns])
    for path, record in zip(files, records):
        writer.writerow([str(path), *predictor.row(record)])
    return buf.getvalue()


def predict_files(run_dir: str | Path, paths: list[str | Path], out_path: str | Path | None = None,
                  device: str = "auto", top_k: int = 3) -> tuple[Path | None, str, list[str]]:
    """Predict every usable image among `paths` (PNG files, or folders of them) with a finished run's best weights.

    Writes the CSV to out_path (atomically), or returns its text when out_path is None. Returns
    (out_path or None, CSV text or "", one `path: reason` line per skipped file). The run folder and device are
    checked before any image is read.
    """
    predictor = finished_run_workload(run_dir).load_predictor(run_dir, device=device)
    predictor.top_k = top_k
    files, arrays, skipped = decode_images(collect_images(list(paths)), predictor.read_png)
    records = predictor.predict(torch.from_numpy(np.stack(arrays)))
    text = predictions_csv(predictor, files, records)
    if out_path is None:
        return None, text, skipped
    atomic_write_text(out_path, text)
    return Path(out_path), "", skipped
