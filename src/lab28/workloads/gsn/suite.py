"""The GSN lab suite: the three settings (cls, reg, joint) trained on the same data, then one report."""

from __future__ import annotations

import copy
from pathlib import Path

from lab28.runs.suite import run_suite
from lab28.workloads.gsn.config import GSNRunConfig, monitor_for
from lab28.workloads.gsn.workload import WORKLOAD

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


def run_gsn_suite(base: GSNRunConfig, out_dir: str | Path, name: str = "gsn-suite",
                  settings: tuple[str, ...] = SUITE_SETTINGS, jobs: int = 1) -> Path:
    """Train every setting into suite_dir/<setting>/ and write suite_dir/report.md (lab28.runs.suite)."""
    return run_suite(WORKLOAD, [(s, setting_config(base, s)) for s in settings], out_dir, name, jobs=jobs,
                     list_key="settings")
