"""A suite: several runs of one workload on the same data (settings, models, ...), then one report.

Written once for every workload: the workload names the runs and their configs and writes the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from lab28.errors import Lab28Error
from lab28.parallel import check_jobs, run_in_workers, share_threads
from lab28.runs.files import read_run_json, suite_run_names
from lab28.runs.folder import RunFolder, check_run_name
from lab28.runs.init_from import check_init_from
from lab28.runs.lifecycle import train_run
from lab28.runs.report import write_suite_report


def _run_quietly(workload_name: str, config, suite_dir: Path, name: str, data) -> Path:
    """Worker of a parallel suite: no progress bars; the epoch lines start with the run's name."""
    from lab28.workloads import get_workload

    return train_run(get_workload(workload_name), config, suite_dir, name, data=data, progress_label=name)


def run_suite(workload, runs: list[tuple[str, object]], out_dir: str | Path, name: str, jobs: int = 1,
              list_key: str = "runs") -> Path:
    """Train each (run name, config) of `runs` into out_dir/name/<run name>/, on data loaded once, then write the
    workload's report. suite.json lists the runs under `list_key`. Returns the suite folder.

    jobs > 1 trains that many runs at once in worker processes (lab28.parallel), sharing out the cores.
    """
    check_jobs(jobs)
    check_run_name(name)
    names = [run_name for run_name, _ in runs]
    if not runs or len(set(names)) != len(names):
        raise Lab28Error(f"a suite needs one or more runs with distinct names, got {names}")
    for run_name, config in runs:  # every run's own config, before the suite folder exists
        check_run_name(run_name)
        workload.check_config(config)
        check_init_from(workload, config)
    data = workload.load_data(runs[0][1])  # the runs differ in model or task, never in data
    folder = RunFolder.create(out_dir, name)
    suite_dir = folder.path
    info = {list_key: [run_name for run_name, _ in runs], "jobs": jobs}
    with folder.suite(info):
        t0 = time.perf_counter()
        if jobs == 1:
            for run_name, config in runs:
                train_run(workload, config, suite_dir, run_name, data=data)
        else:
            share_threads([config.train for _, config in runs], jobs)
            run_in_workers(_run_quietly, [(workload.name, config, suite_dir, run_name, data)
                                          for run_name, config in runs], jobs)
        info["total_runtime_s"] = time.perf_counter() - t0
    write_suite_report(workload, suite_dir)
    return suite_dir


def suite_workload(suite_dir: str | Path):
    """The workload of a suite folder: that of its runs, which suite.json lists (under `runs` or `settings`) or,
    without one, the sub-folders holding a config.json. One-line errors for a folder that is neither."""
    from lab28.workloads import workload_of_run

    suite_dir = Path(suite_dir)
    suite_file = suite_dir / "suite.json"
    info = read_run_json(suite_file) if suite_file.is_file() else {}
    key = next((k for k in ("runs", "settings") if k in info), "runs")
    names = suite_run_names(suite_dir, key, "config.json")
    return workload_of_run(suite_dir / names[0])


def write_report(folder: str | Path) -> Path:
    """`lab28 report` for any workload: a suite folder gets its workload's report.md (+ report.html), whose path is
    returned; a sweep folder its sweep report; a single run folder gets its figures redrawn from its files, and
    figures/ is returned."""
    from lab28.workloads import workload_of_run

    folder = Path(folder)
    if (folder / "sweep.json").is_file():
        from lab28.runs.sweep import report_folder

        return report_folder(folder)
    if (folder / "config.json").is_file() and not (folder / "suite.json").is_file():
        workload = workload_of_run(folder)
        if not (folder / "final_metrics.json").is_file():
            raise Lab28Error(f"{folder}: this run has not finished (no final_metrics.json); nothing to draw yet")
        workload.draw_figures(folder)
        return folder / "figures"
    return write_suite_report(suite_workload(folder), folder)
