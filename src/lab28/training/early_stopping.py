"""Early stopping as a small object: monitor, mode, patience, min_delta (Lightning style)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStoppingConfig:
    monitor: str = "val_accuracy"
    mode: str = "max"  # max | min
    patience: int = 10  # epochs without improvement before stopping (0 = stop at the first miss)
    min_delta: float = 0.0  # an improvement must beat the best by more than this

    def validate(self) -> None:
        if self.mode not in ("min", "max"):
            raise ValueError(f"early-stopping mode must be 'min' or 'max', got {self.mode!r}")
        if self.patience < 0:
            raise ValueError(f"patience must be >= 0, got {self.patience}")
        if self.min_delta < 0:
            raise ValueError(f"min_delta must be >= 0, got {self.min_delta}")


class EarlyStopping:
    """Call `step(metrics)` once per epoch; it returns True when training should stop.

    `improved` says whether the last step set a new best (the trainer then saves the best checkpoint);
    `reason` says why it stopped. A non-finite monitored value never counts as an improvement.
    """

    def __init__(self, config: EarlyStoppingConfig):
        config.validate()
        self.config = config
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0
        self.improved = False
        self.reason = ""

    def _better(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.best is None:
            return True
        if self.config.mode == "max":
            return value > self.best + self.config.min_delta
        return value < self.best - self.config.min_delta

    def step(self, metrics: dict[str, float], epoch: int) -> bool:
        name = self.config.monitor
        if name not in metrics:
            raise KeyError(f"early stopping monitors {name!r}, which is not among the metrics: {sorted(metrics)}")
        value = float(metrics[name])
        self.improved = self._better(value)
        if self.improved:
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs > self.config.patience:
            self.reason = (
                f"{name} did not improve on {self.best:.4f} (epoch {self.best_epoch}) for "
                f"{self.bad_epochs} epochs (patience {self.config.patience}, min_delta {self.config.min_delta})"
            )
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
