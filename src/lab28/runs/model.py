"""A finished run's best weights, for any workload: load them, feed them images, evaluate them.

The workload decides what the outputs mean (lab28.workloads.base.Predictor, Workload.evaluate_run); this module
does what is the same for all of them: checking the folder, rebuilding the model from config.json, loading best.pt
without ever running code from it, choosing a precision this machine can run, and turning user images (a tensor
or an array, N x 28 x 28 or N x 1 x 28 x 28, values 0..255) into the batch the task expects.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lab28.errors import Lab28Error
from lab28.runs.files import read_run_json
from lab28.training.checkpoint import load_checkpoint
from lab28.training.device import resolve_device, resolve_precision
from lab28.training.trainer import predict_outputs

IMAGE_SIZE = 28


def finished_run_workload(run_dir: str | Path):
    """The workload of a finished run folder (one with config.json and best.pt); one-line errors otherwise."""
    from lab28.workloads import workload_of_run

    run_dir = Path(run_dir)
    for name in ("config.json", "best.pt"):
        if not (run_dir / name).is_file():
            raise Lab28Error(f"{run_dir}: not a finished run folder (no {name})")
    return workload_of_run(run_dir)


@dataclass
class LoadedRun:
    """A run's best weights on a device, ready to predict: what every workload's Predictor holds."""

    run_dir: Path
    workload: Any
    model: torch.nn.Module  # in eval mode, on `device`
    config: Any  # the run's config dataclass tree (as config.json holds it)
    device: torch.device
    precision: str  # what this machine runs (a run trained in fp16 on a GPU is evaluated in fp32/bf16 on a CPU)

    def outputs(self, task, images: torch.Tensor, targets: torch.Tensor):
        """The model's outputs (float32, on the CPU) for a batch from `as_image_batch`, through the task's
        prepare_batch (normalisation) in evaluation batches. `targets` only fill prepare_batch's second argument."""
        if images.shape[0] == 0:
            raise Lab28Error("no images to predict")
        outputs, _ = predict_outputs(self.model, task, images, targets, self.config.train, self.device, self.precision)
        return tuple(o.cpu() for o in outputs) if isinstance(outputs, tuple) else outputs.cpu()


class RunPredictor:
    """What every workload's Predictor shares: the loaded run it predicts with, and how many classes it ranks."""

    def __init__(self, run: LoadedRun, top_k: int = 3):
        self.run, self.top_k = run, top_k

    @property
    def model(self) -> torch.nn.Module:
        return self.run.model

    @property
    def config(self):
        return self.run.config


def load_run_model(run_dir: str | Path, device: str | torch.device = "auto", workload: str | None = None) -> LoadedRun:
    """The best weights (best.pt) and config of a finished run, on `device` ("auto": the best this machine has).

    One-line Lab28Error for a folder that is not a finished run (of `workload`, when named), a damaged
    config.json, a device this machine lacks, and a checkpoint that is not a lab28 one or does not fit the model
    the config describes.
    """
    run_dir = Path(run_dir)
    found = finished_run_workload(run_dir)
    if workload is not None and found.name != workload:
        raise Lab28Error(f"{run_dir}: a {found.name} run, not a {workload} one")
    workload = found
    dev = device if isinstance(device, torch.device) else resolve_device(device)
    try:
        config = workload.config_from_dict(read_run_json(run_dir / "config.json"))
        config.validate()
    except (ValueError, TypeError) as exc:
        raise Lab28Error(f"{run_dir / 'config.json'}: bad config: {exc}") from None
    try:
        resolve_precision(config.train.precision, dev)
    except ValueError:  # e.g. fp16, trained on a GPU, evaluated here on the CPU: use what this device does well
        config.train.precision = "auto"
    precision = resolve_precision(config.train.precision, dev)
    state = load_checkpoint(run_dir / "best.pt", dev)
    try:
        model = workload.build_model(config)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise Lab28Error(f"{run_dir / 'best.pt'}: unusable checkpoint: {str(exc).splitlines()[0]}") from None
    model = model.to(dev).eval()
    if config.train.channels_last:  # the same memory format the inputs get in evaluation
        model = model.to(memory_format=torch.channels_last)
    return LoadedRun(run_dir, workload, model, config, dev, precision)


def as_image_batch(images) -> torch.Tensor:
    """A CPU tensor N x 1 x 28 x 28 from a tensor or NumPy array N x 28 x 28 or N x 1 x 28 x 28 holding values
    as the data files store them (0..255). uint8 stays uint8; other types become a new float32 tensor (never the
    caller's own: the task normalises its input in place). One-line Lab28Error for another shape or range."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if not isinstance(images, torch.Tensor):
        raise Lab28Error(f"images must be a tensor or NumPy array, got {type(images).__name__}")
    shape = tuple(images.shape)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4 or tuple(images.shape[1:]) != (1, IMAGE_SIZE, IMAGE_SIZE):
        hint = " (one image: add a batch dimension, images[None])" if shape == (IMAGE_SIZE, IMAGE_SIZE) else ""
        raise Lab28Error(f"images must be N x 28 x 28 or N x 1 x 28 x 28, got {' x '.join(map(str, shape))}{hint}")
    images = images.detach().cpu()
    if images.dtype == torch.uint8:
        return images.contiguous()
    if images.dtype == torch.bool or images.is_complex():
        raise Lab28Error(f"images must hold numbers 0..255, got dtype {images.dtype}")
    images = images.to(torch.float32, copy=True)
    if images.numel() and not (torch.isfinite(images).all() and images.min() >= 0 and images.max() <= 255):
        raise Lab28Error("images must hold values 0..255 as in the data files (got values outside that range; "
                         "pass raw pixels, not normalised ones)")
    return images


def evaluate_run(run_dir: str | Path, data_dir: str | Path, out_path: str | Path | None = None, device: str = "auto",
                 tta: bool = False) -> tuple[Path, dict]:
    """Evaluate a finished run's best weights on a labelled data folder of its workload (its Workload.evaluate_run):
    (the JSON written, what it holds)."""
    return finished_run_workload(run_dir).evaluate_run(run_dir, data_dir, out_path=out_path, device=device, tta=tta)
