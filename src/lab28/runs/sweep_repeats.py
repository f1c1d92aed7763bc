"""The best configurations of a sweep and its base config, each re-run over the same seeds (repeats.json).

Why: between seeds the same recipe moves by about as much as most differences a search finds, so a "winner" is
only one when its lead over the base config is larger than that spread. Each repeat is an ordinary run folder,
repeats/<label>-seed-<seed>; one that finished already is read, not re-run, so the command can be repeated.
"""

from __future__ import annotations

from pathlib import Path

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_json
from lab28.parallel import run_in_workers
from lab28.runs.files import read_run_json
from lab28.runs.sweep import REPEATS_FILE, Sweep, objective_value, trial_config


def best_trials(study, direction: str, count: int) -> list:
    """The `count` best complete trials, best first."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: t.value, reverse=direction == "maximize")[:count]


def run_repeats(sweep: Sweep, study, best: int, seeds: list[int], jobs: int = 1) -> Path:
    """Re-run the `best` best trials' configurations and the base config ("preset") over `seeds`; write
    repeats.json and return its path."""
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise Lab28Error(f"--seeds must be whole numbers >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise Lab28Error(f"--seeds repeats a seed: {seeds}")
    chosen = best_trials(study, sweep.direction, best)
    if not chosen:
        raise Lab28Error(f"{sweep.folder}: no complete trial to repeat yet")
    groups = [{"label": f"best-{rank}", "trial": t.number, "params": dict(t.params)}
              for rank, t in enumerate(chosen, start=1)]
    groups.append({"label": "preset", "trial": None, "params": {}})  # the base config: preset + fixed values
    calls = [(sweep, g["label"], g["params"], seed) for g in groups for seed in seeds]
    values = run_in_workers(repeat_run, calls, jobs) if jobs > 1 else [repeat_run(*call) for call in calls]
    it = iter(values)
    for group in groups:
        group["runs"] = [{"seed": seed, "run": f"repeats/{group['label']}-seed-{seed}", "value": next(it)}
                         for seed in seeds]
    path = sweep.folder / REPEATS_FILE
    atomic_write_json(path, {"seeds": list(seeds), "objective": sweep.objective, "groups": groups})
    return path


def repeat_run(sweep: Sweep, label: str, params: dict, seed: int) -> float | None:
    """One repeat: the base config with `params` and `seed`; its objective (None when the run failed)."""
    from lab28.runs.lifecycle import train_run
    from lab28.training.trainer import TrainingDiverged
    from lab28.workloads import get_workload

    name = f"{label}-seed-{seed}"
    run_dir = sweep.folder / "repeats" / name
    status = run_dir / "status.json"
    if (run_dir / "final_metrics.json").is_file() and status.is_file() and read_run_json(status).get("status") == "finished":
        return objective_value(run_dir, sweep.objective)
    workload = get_workload(sweep.workload)
    config = trial_config(workload, sweep.config, {**params, "train.seed": seed})
    if not config.train.threads:
        config.train.threads = sweep.threads
    try:
        run_dir = train_run(workload, config, sweep.folder / "repeats", name, overwrite=run_dir.exists(),
                            draw_figures=False, progress_label=name)
    except (Lab28Error, TrainingDiverged) as exc:
        print(f"[{name}] failed: {' '.join(str(exc).split())[:300]}", flush=True)
        return None
    value = objective_value(run_dir, sweep.objective)
    print(f"[{name}] {sweep.objective} = {value:.4f}", flush=True)
    return value
