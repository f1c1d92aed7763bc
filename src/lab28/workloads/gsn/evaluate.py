"""Evaluate a finished GSN run's best checkpoint on any GSN-format data set."""

from __future__ import annotations

from pathlib import Path

import torch

from lab28.io_utils import atomic_write_json
from lab28.runs.model import load_run_model as load_best
from lab28.training.trainer import evaluate
from lab28.workloads.gsn.loader import load_gsn
from lab28.workloads.gsn.task import GSNTask


def load_run_model(run_dir: Path, device: torch.device):
    """(model with the best weights, run config) of a finished GSN run: lab28.runs.model.load_run_model."""
    run = load_best(run_dir, device, workload="gsn")
    return run.model, run.config


def evaluate_run(run_dir: str | Path, data_dir: str | Path, out_path: str | Path | None = None,
                 device: str = "auto", tta: bool = False) -> tuple[Path, dict]:
    """Metrics of the run's best weights on every row of a GSN folder (and with dihedral TTA if asked).

    Writes {"run", "data", "images", "metrics"[, "metrics_tta"]} to out_path (default RUN_DIR/eval-<data>.json)
    and returns (that path, the same dict)."""
    run_dir = Path(run_dir)
    run = load_best(run_dir, device, workload="gsn")
    data = load_gsn(data_dir)
    config, task = run.config, GSNTask(run.config.task)
    result = {"run": str(run_dir), "data": data.source, "images": len(data),
              "metrics": evaluate(run.model, task, data.images, data.counts, config.train, run.device, run.precision)}
    if tta:
        from lab28.workloads.gsn.tta import DihedralTTA

        result["metrics_tta"] = evaluate(DihedralTTA(run.model), task, data.images, data.counts, config.train,
                                         run.device, run.precision)
    out = Path(out_path) if out_path else run_dir / f"eval-{Path(data.source).parent.name or 'data'}.json"
    atomic_write_json(out, result)
    return out, result

