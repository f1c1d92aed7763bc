"""The table of workloads: the one place that names them all (the CLI, the API and the model registry read it).

A workload supplies what is specific to one kind of experiment (data, task, models, figures, report); the engine
(lab28.train, lab28.run_folder, lab28.runs) knows none of them. See lab28.workloads.base for the contract.
"""

from __future__ import annotations

import importlib

# workload name -> the module whose import registers its models
MODEL_MODULES = {"gsn": "lab28.workloads.gsn.models", "classify": "lab28.workloads.classify.models"}


def import_models() -> None:
    """Register every workload's models (idempotent: a module is imported once)."""
    for module in MODEL_MODULES.values():
        importlib.import_module(module)
