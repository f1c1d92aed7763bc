"""The Fashion-MNIST suite: the three architectures trained with one recipe on one split, then one report."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from lab28.workloads.classify.config import FashionRunConfig
from lab28.workloads.classify.data import load_fashion
from lab28.workloads.classify.experiment import check_config, run_fashion
from lab28.io_utils import atomic_write_json
from lab28.workloads.classify.models import FASHION_MODELS
from lab28.run_folder import RunFolder, check_run_name
from lab28.parallel import check_jobs, epoch_printer, run_in_workers, share_threads


def _run_model_quietly(config: FashionRunConfig, suite_dir: Path, model: str, data) -> Path:
    """Worker of a parallel suite: no progress bars, one prefixed line per epoch."""
    config.train.progress = False
    return run_fashion(config, suite_dir, model, data=data, on_epoch=epoch_printer(model, ("val_accuracy",)))


def run_fashion_suite(base: FashionRunConfig, out_dir: str | Path, name: str = "fashion-suite",
                      models: tuple[str, ...] = FASHION_MODELS, jobs: int = 1) -> Path:
    """Train every model into suite_dir/<model>/ and write suite_dir/report.md. Returns suite_dir.

    jobs > 1 trains that many models at once in worker processes (lab28.parallel), sharing out the cores.
    """
    check_jobs(jobs)
    check_run_name(name)
    check_config(base)  # before the suite folder exists (the models share every other setting)
    data = load_fashion(base.data)  # read and split once: every model sees exactly the same images
    folder = RunFolder.create(out_dir, name)
    suite_dir = folder.path
    info = {"runs": list(models), "jobs": jobs}
    with folder.suite(info):
        t0 = time.perf_counter()
        configs = []
        for model in models:
            cfg = copy.deepcopy(base)
            cfg.model.name = model
            configs.append(cfg)
        if jobs == 1:
            for cfg, model in zip(configs, models):
                run_fashion(cfg, suite_dir, model, data=data)
        else:
            share_threads([cfg.train for cfg in configs], jobs)
            run_in_workers(_run_model_quietly, [(cfg, suite_dir, m, data) for cfg, m in zip(configs, models)], jobs)
        info["total_runtime_s"] = time.perf_counter() - t0
    from lab28.workloads.classify.report import write_report

    write_report(suite_dir)
    return suite_dir
