"""What a sweep report reads, read and checked before anything is written: sweep.json, repeats.json (optional) and
the Optuna study's trials.

A sweep folder holds sweep.json (the data set, objective, direction, search space, fixed overrides and the command
that runs the sweep), one run folder per trial (named by the trial's user_attrs["run"]) and, after the best
configurations were re-run over several seeds, repeats.json. The study itself is passed in, already loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from optuna.trial import FrozenTrial, TrialState

from lab28.errors import Lab28Error
from lab28.runs.files import LIST, NUMBER, TEXT, check_fields, read_run_json
from lab28.runs.sweep_space import DIRECTIONS, Param, param_from_record

# Where a trial's run folder may be: what lab28 sweep names it (a study is shared: its attributes are not trusted).
RUN_NAME = re.compile(r"trials/trial-\d{4,}(-\d+)?")
SWEEP_SPEC = {"dataset": TEXT, "preset": TEXT, "objective": TEXT, "direction": TEXT, "trials": NUMBER,
              "study": TEXT, "storage": TEXT, "space": LIST, "overrides": {}, "command": TEXT}
GROUP_SPEC = {"label": TEXT, "trial": (NUMBER, None), "params": {}, "runs": LIST}
RUN_SPEC = {"seed": NUMBER, "run": TEXT, "value": (NUMBER, None)}


@dataclass
class RepeatGroup:
    """One configuration re-run over the seeds: the sweep's best ones, and the preset (trial None)."""

    label: str
    trial: int | None
    params: dict
    values: dict  # seed -> objective value, None where that run failed

    @property
    def finished(self) -> np.ndarray:
        return np.array([v for v in self.values.values() if v is not None], dtype=float)


@dataclass
class SweepFiles:
    """Everything a sweep report shows."""

    folder: Path
    sweep: dict  # sweep.json
    space: list[Param]
    trials: list[FrozenTrial]  # every trial of the study, by number
    seeds: list | None  # repeats.json's seeds, None without repeats.json
    groups: list[RepeatGroup]

    @property
    def maximize(self) -> bool:
        return self.sweep["direction"] == "maximize"

    def with_state(self, state: TrialState) -> list[FrozenTrial]:
        return [t for t in self.trials if t.state == state]

    def ranked(self) -> list[FrozenTrial]:
        """Complete trials, best first (ties: the earlier trial first)."""
        sign = -1 if self.maximize else 1
        return sorted(self.with_state(TrialState.COMPLETE), key=lambda t: (sign * t.value, t.number))


def read_sweep(sweep_dir: str | Path, study) -> SweepFiles:
    """The sweep folder's files and the study's trials, each checked for what the report uses (one-line errors)."""
    folder = Path(sweep_dir)
    if not folder.is_dir():
        raise Lab28Error(f"{folder}: {'not a folder' if folder.exists() else 'no such folder'}")
    path = folder / "sweep.json"
    if not path.exists():
        raise Lab28Error(f"{folder}: not a sweep folder (no sweep.json)")
    sweep = read_run_json(path)
    check_fields(path, sweep, SWEEP_SPEC)
    if sweep["direction"] not in DIRECTIONS:
        raise Lab28Error(f"{path}: direction must be maximize or minimize, found {sweep['direction']!r}")
    space = [param_from_record(entry, f"{path}: space[{k}]") for k, entry in enumerate(sweep["space"])]
    trials = _trials(study, sweep["direction"], space)
    seeds, groups = _repeats(folder / "repeats.json") if (folder / "repeats.json").exists() else (None, [])
    return SweepFiles(folder, sweep, space, trials, seeds, groups)


def _trials(study, direction: str, space: list[Param]) -> list[FrozenTrial]:
    """The study's trials, after checking that it is the sweep's: one objective, the same direction, numbers where
    the space says so, and run folders that lie inside the sweep folder."""
    name = getattr(study, "study_name", "?")
    if len(study.directions) != 1:
        raise Lab28Error(f"study {name!r}: {len(study.directions)} objectives; a sweep optimises one")
    if study.direction.name.lower() != direction:
        raise Lab28Error(f"study {name!r}: it is set to {study.direction.name.lower()}, sweep.json says {direction}")
    trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
    for t in trials:
        run = t.user_attrs.get("run")
        if run is not None and not (isinstance(run, str) and RUN_NAME.fullmatch(run)):
            raise Lab28Error(f"study {name!r}: trial {t.number}'s run must be a folder inside the sweep, "
                             f"found {run!r}")
        for p in space:
            value = t.params.get(p.path, 0)
            if p.kind != "categorical" and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
                raise Lab28Error(f"study {name!r}: trial {t.number} tried {p.path} = {value!r}, but sweep.json's "
                                 f"space says {p.kind}")
    return trials


def _repeats(path: Path) -> tuple[list, list[RepeatGroup]]:
    data = read_run_json(path)
    check_fields(path, data, {"seeds": LIST, "groups": LIST})
    seeds = data["seeds"]
    if not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise Lab28Error(f"{path}: seeds must be a list of whole numbers, found {seeds!r}")
    groups = []
    for g, group in enumerate(data["groups"]):
        if not isinstance(group, dict):
            raise Lab28Error(f"{path}: groups[{g}] must be an object")
        check_fields(path, group, GROUP_SPEC, f"groups[{g}].")
        values = {}
        for r, run in enumerate(group["runs"]):
            where = f"groups[{g}].runs[{r}]"
            if not isinstance(run, dict):
                raise Lab28Error(f"{path}: {where} must be an object")
            check_fields(path, run, RUN_SPEC, f"{where}.")
            if run["seed"] not in seeds:
                raise Lab28Error(f"{path}: {where}.seed {run['seed']} is not one of the seeds {seeds}")
            values[run["seed"]] = run["value"]
        groups.append(RepeatGroup(group["label"], group["trial"], group["params"], values))
    return seeds, groups
