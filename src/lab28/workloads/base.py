"""The contract between the engine and a workload.

The engine (lab28.runs: run lifecycle, suites; lab28.train: the training loop) knows no workload. A workload
(GSN multitask shape counting, image classification on the MNIST family) supplies, through this protocol, only
what is specific to it: its data, its task (loss, metrics, batch preparation including normalisation,
decoding), its models and their output contract, the files a finished run holds besides the engine's, and its
figures and report.

What the engine guarantees in return: every setting is validated (`check_config`) before any folder exists; the
run folder is created, locked, marked running/failed/interrupted/finished and replaced safely by the engine
(lab28.runs.folder); config.json, env.json, data.json, metrics.csv, best.pt and last.pt are written by the engine;
the model is seeded with `config.train.seed` before `build_model` is called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

import torch


@dataclass
class RunData:
    """A run's data as the trainer wants it, plus what the workload keeps for its own final evaluation.

    train/val: (inputs, targets) CPU tensors; inputs are N x 1 x 28 x 28 uint8 as stored in the data files (the
    task normalises them). description: what data.json records. source: the workload's own data objects.
    """

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor]
    description: dict
    source: Any = field(default=None, repr=False)


class EpochLogger(Protocol):
    """Optional per-run logging beside metrics.csv (TensorBoard, say)."""

    def epoch(self, row: dict) -> None: ...

    def finish(self, run_dir: Path, result: dict) -> None: ...

    def close(self) -> None: ...


class Workload(Protocol):
    """One kind of experiment. Implementations: lab28.workloads.gsn.workload, lab28.workloads.classify.workload."""

    name: str  # "gsn" | "classify": stored in every run's config.json as `workload`

    def config_from_dict(self, data: dict) -> Any:
        """The run config (a dataclass tree with .to_dict(), .validate(), .data, .train) from config.json."""

    def check_config(self, config) -> tuple[torch.device, str]:
        """Validate every value and resolve (device, precision) on this machine; one-line Lab28Error if bad."""

    def load_data(self, config) -> RunData:
        """Read (or generate) and split the data the config names. Lab28Error naming the file if it is bad."""

    def build_model(self, config) -> torch.nn.Module:
        """A model registered for this workload; its forward takes the task's prepared batch and returns the
        outputs the task's loss and metrics read (GSN: (log_probs, counts); classification: logits)."""

    def prepare_model(self, model: torch.nn.Module, config, data: RunData) -> None:
        """Data-dependent start weights from the training split only (a no-op for most models)."""

    def task(self, config) -> Any:
        """The task object the trainer drives: prepare_batch, loss, metrics (see lab28.train.trainer)."""

    def start_line(self, config, model: torch.nn.Module, data: RunData) -> str:
        """What the run prints about itself when it starts (setting/model, data sizes)."""

    def epoch_logger(self, run_dir: Path, config) -> EpochLogger | None:
        """Extra per-epoch logging for this run, or None."""

    def finalize(self, run_dir: Path, config, model: torch.nn.Module, task, data: RunData, summary: dict,
                 device: torch.device, precision: str) -> dict:
        """Evaluate the best weights (already loaded into `model`) and write the workload's own artefacts
        (final_metrics.json, confusion matrices, predictions, ...); returns the final metrics."""

    def draw_figures(self, run_dir: Path) -> None:
        """Figures of a finished run, drawn from its files alone."""


OnEpoch = Callable[[dict], None]
