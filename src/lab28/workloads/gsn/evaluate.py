"""Evaluate a finished run's best checkpoint on any GSN-format data set."""

from __future__ import annotations

from pathlib import Path

import torch

from lab28.errors import Lab28Error
from lab28.workloads.gsn.config import config_from_dict
from lab28.workloads.gsn.experiment import build_model
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.task import GSNTask
from lab28.io_utils import atomic_write_json
from lab28.runs.files import read_run_json
from lab28.train.checkpoint import load_checkpoint
from lab28.train.device import resolve_device, resolve_precision
from lab28.train.trainer import evaluate


def load_run_model(run_dir: Path, device: torch.device):
    """(model with the best weights, run config) from a run folder, with clear errors for bad folders."""
    for name in ("config.json", "best.pt"):
        if not (run_dir / name).is_file():
            raise Lab28Error(f"{run_dir}: not a finished run folder (no {name})")
    try:
        config = config_from_dict(read_run_json(run_dir / "config.json"))
    except (ValueError, TypeError) as exc:
        raise Lab28Error(f"{run_dir / 'config.json'}: bad config: {exc}") from None
    try:
        resolve_precision(config.train.precision, device)
    except ValueError:  # e.g. fp16, trained on a GPU, evaluated here on the CPU: use what this device does well
        config.train.precision = "auto"
    state = load_checkpoint(run_dir / "best.pt", device)
    try:
        model = build_model(config)
        model.load_state_dict(state["model"])
    except (RuntimeError, KeyError, ValueError) as exc:
        raise Lab28Error(f"{run_dir / 'best.pt'}: unusable checkpoint: {str(exc).splitlines()[0]}") from None
    model = model.to(device)
    if config.train.channels_last:  # the same memory format the inputs get in evaluation
        model = model.to(memory_format=torch.channels_last)
    return model, config


def evaluate_run(run_dir: str | Path, data_dir: str | Path, out_path: str | Path | None = None,
                 device: str = "auto", tta: bool = False) -> Path:
    """Metrics of the run's best weights on every row of a GSN folder (and with dihedral TTA if asked)."""
    run_dir = Path(run_dir)
    dev = resolve_device(device)
    model, config = load_run_model(run_dir, dev)
    data = load_gsn(data_dir)
    precision = resolve_precision(config.train.precision, dev)
    task = GSNTask(config.task)
    result = {"run": str(run_dir), "data": data.source, "images": len(data),
              "metrics": evaluate(model, task, data.images, data.counts, config.train, dev, precision)}
    if tta:
        from lab28.workloads.gsn.tta import DihedralTTA

        result["metrics_tta"] = evaluate(DihedralTTA(model), task, data.images, data.counts, config.train, dev, precision)
    out = Path(out_path) if out_path else run_dir / f"eval-{Path(data.source).parent.name or 'data'}.json"
    atomic_write_json(out, result)
    return out
