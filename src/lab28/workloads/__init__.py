"""The table of workloads: the one place that names them all (the CLI, the API and the model registry read it).

A workload supplies what is specific to one kind of experiment (data, task, models, figures, report); the engine
(lab28.training, lab28.runs) knows none of them. See lab28.workloads.base for the contract.
"""

from __future__ import annotations

import importlib

from lab28.data.specs import IDX_DATASETS

# workload name -> the modules whose import registers its models (a new model: one file, named here)
MODEL_MODULES = {"gsn": ("lab28.workloads.gsn.models", "lab28.workloads.gsn.compact",
                          "lab28.workloads.gsn.counting_resnet"),
                 "classify": ("lab28.workloads.classify.models", "lab28.workloads.classify.small_resnet")}


def import_models() -> None:
    """Register every workload's models (idempotent: a module is imported once)."""
    for modules in MODEL_MODULES.values():
        for module in modules:
            importlib.import_module(module)


# workload name -> the module holding its WORKLOAD object (lab28.workloads.base.Workload)
WORKLOAD_MODULES = {"gsn": "lab28.workloads.gsn.workload", "classify": "lab28.workloads.classify.workload"}


def get_workload(name: str):
    if name not in WORKLOAD_MODULES:
        from lab28.errors import Lab28Error

        raise Lab28Error(f"unknown workload {name!r}; choose one of: {', '.join(WORKLOAD_MODULES)}")
    return importlib.import_module(WORKLOAD_MODULES[name]).WORKLOAD


# data set name (lab28.train's first argument) -> (its workload, the config values that select it in that workload).
# Every IDX data set of lab28.data.specs is an image classification.
DATASETS: dict[str, tuple[str, dict]] = {
    "gsn": ("gsn", {}), **{name: ("classify", {"data.dataset": name}) for name in IDX_DATASETS}}


def dataset_workload(dataset: str) -> tuple[str, dict]:
    """(workload name, config values) of a data set; one-line error listing the data sets for an unknown one."""
    if dataset not in DATASETS:
        from lab28.errors import Lab28Error

        raise Lab28Error(f"unknown data set {dataset!r}; choose one of: {', '.join(DATASETS)}")
    workload, values = DATASETS[dataset]
    return workload, dict(values)


def workload_name_of_config(config: dict) -> str | None:
    """The workload a config.json belongs to: its `workload` entry; older run folders, which lack it, are told
    apart by their task section (GSN has a setting, classification a label smoothing)."""
    if not isinstance(config, dict):
        return None
    if isinstance(config.get("workload"), str):
        return config["workload"]
    task = config.get("task")
    if isinstance(task, dict):
        if "setting" in task:
            return "gsn"
        if "label_smoothing" in task:
            return "classify"
    return None


def workload_of_run(run_dir):
    """The workload of a run folder, read from its config.json (one-line errors for a missing or foreign one)."""
    from pathlib import Path

    from lab28.errors import Lab28Error
    from lab28.runs.files import read_run_json

    path = Path(run_dir) / "config.json"
    name = workload_name_of_config(read_run_json(path))
    if name is None:
        raise Lab28Error(f"{path}: not a lab28 run config (no workload and no task section)")
    return get_workload(name)
