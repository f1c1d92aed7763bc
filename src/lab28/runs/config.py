"""What every workload's run config shares: its dict form, its validation, and the one-line errors around them.

A run config is a dataclass tree with a `workload` name, the `preset` it was built from, sections (data, model, task,
augment, train) that each validate themselves, and a task that declares the metrics early stopping may watch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch

from lab28.config_io import check_finite
from lab28.errors import Lab28Error
from lab28.training.device import resolve_device, resolve_precision
from lab28.training.trainer import check_monitor


@dataclass
class RunConfig:
    """Base of a workload's run-config dataclass. Subclasses redeclare `workload` with their name as its default,
    set WORKLOAD to the same name, and define monitor_task() (a task built from the config, for the names of its
    metrics). Their own sections follow these two fields in config.json."""

    workload: str = ""  # which workload a config.json belongs to (lab28.workloads)
    # The preset the config was built from, so that a report can tell a demonstration run from the experiment;
    # "" for a config written by hand (config.json files from before this field load with "").
    preset: str = ""

    WORKLOAD = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def monitor_task(self):
        raise NotImplementedError

    def validate(self) -> None:
        """Every value, before anything is loaded or written; ValueError names the first bad one."""
        if self.workload != self.WORKLOAD:
            raise ValueError(f"this is a {self.workload!r} config, not a {self.WORKLOAD!r} one")
        check_finite(self)
        for section in dataclasses.fields(self):
            value = getattr(self, section.name)
            if dataclasses.is_dataclass(value) and hasattr(value, "validate"):
                value.validate()
        check_monitor(self.monitor_task(), self.train)


def checked(config):
    """`config`, validated; a one-line Lab28Error ("bad configuration: ...") if any value is bad."""
    try:
        config.validate()
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    return config


def check_run_config(config) -> tuple[torch.device, str]:
    """Validate every value and resolve the device and precision on this machine: (device, precision), or a
    one-line Lab28Error before anything is loaded or written."""
    checked(config)
    try:
        device = resolve_device(config.train.device)
        return device, resolve_precision(config.train.precision, device)
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
