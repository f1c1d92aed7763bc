"""The Fashion-MNIST suite: the three architectures trained with one recipe on one split, then one report."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from lab28.fashion.config import FashionRunConfig
from lab28.fashion.data import load_fashion
from lab28.fashion.experiment import run_fashion
from lab28.io_utils import atomic_write_json, new_run_dir
from lab28.models.fashion_cnns import FASHION_MODELS


def run_fashion_suite(base: FashionRunConfig, out_dir: str | Path, name: str = "fashion-suite",
                      models: tuple[str, ...] = FASHION_MODELS) -> Path:
    """Train every model into suite_dir/<model>/ and write suite_dir/report.md. Returns suite_dir."""
    data = load_fashion(base.data)  # read and split once: every model sees exactly the same images
    suite_dir = new_run_dir(out_dir, name)
    t0 = time.perf_counter()
    atomic_write_json(suite_dir / "suite.json", {"runs": list(models), "status": "running"})
    for model in models:
        cfg = copy.deepcopy(base)
        cfg.model.name = model
        run_fashion(cfg, suite_dir, model, data=data)
    atomic_write_json(suite_dir / "suite.json", {"runs": list(models), "status": "finished",
                                                 "total_runtime_s": time.perf_counter() - t0})
    from lab28.fashion.report import write_report

    write_report(suite_dir)
    return suite_dir
