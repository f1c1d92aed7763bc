"""The GSN lab suite: the three settings (cls, reg, joint) trained on the same data, then one report."""

from __future__ import annotations

import copy
import time
from pathlib import Path

from lab28.workloads.gsn.config import GSNRunConfig, monitor_for
from lab28.workloads.gsn.experiment import check_config, load_data, run_gsn
from lab28.io_utils import atomic_write_json
from lab28.run_folder import RunFolder, check_run_name
from lab28.parallel import check_jobs, epoch_printer, run_in_workers, share_threads

# Joint first: it is the headline setting, so its result is on disk earliest; the report orders them cls/reg/joint.
SUITE_SETTINGS = ("joint", "cls", "reg")


def setting_config(base: GSNRunConfig, setting: str) -> GSNRunConfig:
    """The base config with the setting and the matching early-stopping monitor."""
    cfg = copy.deepcopy(base)
    cfg.task.setting = setting
    es = cfg.train.early_stopping
    # Only replace the monitor if it is the other setting's default: a user's explicit choice stays.
    if (es.monitor, es.mode) in (monitor_for("cls"), monitor_for("reg")):
        es.monitor, es.mode = monitor_for(setting)
    return cfg


def _run_setting_quietly(config: GSNRunConfig, suite_dir: Path, setting: str, data) -> Path:
    """Worker of a parallel suite: no progress bars, one prefixed line per epoch."""
    config.train.progress = False
    return run_gsn(config, suite_dir, setting, data=data,
                   on_epoch=epoch_printer(setting, ("val_accuracy", "val_rmse")))


def run_gsn_suite(base: GSNRunConfig, out_dir: str | Path, name: str = "gsn-suite",
                  settings: tuple[str, ...] = SUITE_SETTINGS, jobs: int = 1) -> Path:
    """Train every setting into suite_dir/<setting>/ and write suite_dir/report.md. Returns suite_dir.

    jobs > 1 trains that many settings at once in worker processes (lab28.parallel), sharing out the cores.
    """
    check_jobs(jobs)
    check_run_name(name)
    configs = [setting_config(base, s) for s in settings]
    for cfg in configs:  # each setting's own config (its monitor differs), before the suite folder exists
        check_config(cfg)
    data = load_data(base)  # loaded (or generated) once, shared by all settings
    folder = RunFolder.create(out_dir, name)
    suite_dir = folder.path
    info = {"settings": list(settings), "jobs": jobs}
    with folder.suite(info):
        t0 = time.perf_counter()
        if jobs == 1:
            for cfg, setting in zip(configs, settings):
                run_gsn(cfg, suite_dir, setting, data=data)
        else:
            share_threads([cfg.train for cfg in configs], jobs)
            run_in_workers(_run_setting_quietly, [(cfg, suite_dir, s, data) for cfg, s in zip(configs, settings)],
                           jobs)
        info["total_runtime_s"] = time.perf_counter() - t0
    from lab28.workloads.gsn.report import write_report

    write_report(suite_dir)
    return suite_dir
