"""The best configurations of a sweep and its base config, each re-run over the same seeds (repeats.json).

Why: between seeds the same recipe moves by about as much as most differences a search finds, so a "winner" is
only one when its lead over the base config is larger than that spread. Each repeat is an ordinary run folder,
repeats/trial-NNNN-seed-S (preset-seed-S for the base config); one that finished already is read, not re-run,
so the command can be repeated.
"""

from __future__ import annotations

from pathlib import Path

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_json
from lab28.parallel import run_in_workers
from lab28.runs.files import read_run_json
from lab28.runs.sweep import REPEATS_FILE, Sweep, objective_value, one_line, train_one


def check_seeds(seeds: list[int]) -> None:
    """Refuse seeds the repeats cannot use, before the sweep's trials run rather than after."""
    if not seeds or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
        raise Lab28Error(f"--seeds must be whole numbers >= 0, got {seeds}")
    if len(set(seeds)) != len(seeds):
        raise Lab28Error(f"--seeds repeats a seed: {seeds}")


def best_trials(study, direction: str, count: int) -> list:
    """The `count` best complete trials, best first."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sorted(complete, key=lambda t: t.value, reverse=direction == "maximize")[:count]


def run_repeats(sweep: Sweep, study, best: int, seeds: list[int], jobs: int = 1) -> Path:
    """Re-run the `best` best trials' configurations and the base config ("preset") over `seeds`; write
    repeats.json and return its path."""
    check_seeds(seeds)
    chosen = best_trials(study, sweep.direction, best)
    if not chosen:
        raise Lab28Error(f"{sweep.folder}: no complete trial to repeat yet")
    groups = [{"label": f"best-{rank}", "trial": t.number, "params": dict(t.params)}
              for rank, t in enumerate(chosen, start=1)]
    groups.append({"label": "preset", "trial": None, "params": {}})  # the base config: preset + fixed values
    runs = [(group, seed, _folder_name(group, seed)) for group in groups for seed in seeds]
    calls = [(sweep, name, group["params"], seed) for group, seed, name in runs]
    values = run_in_workers(repeat_run, calls, jobs) if jobs > 1 else [repeat_run(*call) for call in calls]
    for group in groups:
        group["runs"] = []
    for (group, seed, name), value in zip(runs, values):
        group["runs"].append({"seed": seed, "run": f"repeats/{name}", "value": value})
    path = sweep.folder / REPEATS_FILE
    atomic_write_json(path, {"seeds": list(seeds), "objective": sweep.objective, "groups": groups})
    return path


def _folder_name(group: dict, seed: int) -> str:
    return f"trial-{group['trial']:04d}-seed-{seed}" if group["trial"] is not None else f"preset-seed-{seed}"


def repeat_run(sweep: Sweep, folder: str, params: dict, seed: int) -> float | None:
    """One repeat: the base config with `params` and `seed` in repeats/<folder>; its objective (None when the run
    failed). Folders are named by trial number, so one that finished already holds this very configuration."""
    run_dir = sweep.folder / "repeats" / folder
    status = run_dir / "status.json"
    if (run_dir / "final_metrics.json").is_file() and status.is_file() and read_run_json(status).get("status") == "finished":
        return objective_value(run_dir, sweep.objective)
    try:
        run_dir = train_one(sweep, {**params, "train.seed": seed}, sweep.folder / "repeats", folder,
                            overwrite=run_dir.exists())
    except Lab28Error as exc:
        print(f"[{folder}] failed: {one_line(exc)}", flush=True)
        return None
    value = objective_value(run_dir, sweep.objective)
    print(f"[{folder}] {sweep.objective} = {value:.4f}", flush=True)
    return value
