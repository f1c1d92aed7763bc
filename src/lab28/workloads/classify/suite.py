"""The image-classification suite: the three architectures trained with one recipe on one split, then one report."""

from __future__ import annotations

import copy
from pathlib import Path

from lab28.runs.suite import run_suite
from lab28.workloads.classify.config import FashionRunConfig
from lab28.workloads.classify.models import FASHION_MODELS
from lab28.workloads.classify.workload import WORKLOAD


def run_fashion_suite(base: FashionRunConfig, out_dir: str | Path, name: str = "fashion-suite",
                      models: tuple[str, ...] = FASHION_MODELS, jobs: int = 1) -> Path:
    """Train every model into suite_dir/<model>/ and write suite_dir/report.md (lab28.runs.suite)."""
    runs = []
    for model in models:
        config = copy.deepcopy(base)
        config.model.name = model
        runs.append((model, config))
    return run_suite(WORKLOAD, runs, out_dir, name, jobs=jobs, list_key="runs")
