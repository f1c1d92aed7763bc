"""lab28 sweep: a hyper-parameter search on Optuna whose trials are ordinary run folders.

A sweep folder (OUT/STUDY/) holds:
  sweep.json          what the sweep is: data set, workload, base config, search space, objective, trials wanted
  study.db            the Optuna study (SQLite), unless --storage names a shared database
  trials/trial-NNNN/  one run folder per trial, its config complete (re-run it with `lab28 train --config`)
  repeats/            the best configurations and the base config re-run over several seeds (repeats.json)
  report.md/.html     lab28.runs.sweep_report

Optuna's relational storage is the only shared state, so the same command started again continues the study, and
started on several machines against one database (--storage postgresql://...) they share its trials. Each worker
takes its next trial inside a lock (a file lock beside an SQLite file; an advisory lock in PostgreSQL or MySQL), so
exactly N trials are run however many workers join. A trial whose worker died (killed, machine lost) is marked
failed and replaced; one whose run failed by itself (a diverged loss) counts as run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import random
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_json
from lab28.parallel import check_jobs, run_in_workers, threads_per_worker
from lab28.runs.files import read_run_json
from lab28.runs.folder import check_run_name
from lab28.runs.sweep_space import SearchSpace, default_direction

SWEEP_FILE, REPEATS_FILE = "sweep.json", "repeats.json"
PRUNERS = ("median", "halving", "none")
HEARTBEAT_S = 30.0  # how often a running trial says it is alive
STALE_AFTER_S = 300.0  # a trial silent this long on another machine is taken for lost (its worker died)
# The fields of sweep.json that make two sweeps the same search (the number of trials may grow between runs). The
# base config counts by its preset and the values fixed away from it: a later lab28 whose config has more fields
# (at their defaults) still continues the same sweep.
IDENTITY = ("workload", "dataset", "preset", "overrides", "space", "objective", "direction")


@dataclass
class Sweep:
    """Everything a worker needs, picklable: it travels to the worker processes."""

    workload: str  # lab28.workloads name
    dataset: str
    config: dict  # the base config (preset + fixed flags), complete; a trial sets its sampled values on a copy
    space: SearchSpace
    trials: int
    study: str
    storage: str  # SQLAlchemy URL
    objective: str
    direction: str
    pruner: str = "median"
    folder: Path = Path()
    threads: int = 0
    command: str = ""
    overrides: dict = field(default_factory=dict)  # config path -> value where the base config leaves its preset

    def identity(self) -> str:
        """What makes two sweeps the same search (IDENTITY's fields), as a digest kept in the study too."""
        record = self.to_json()
        text = json.dumps({key: record[key] for key in IDENTITY}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {"workload": self.workload, "dataset": self.dataset, "config": self.config,
                "space": [p.to_dict() for p in self.space.params], "objective": self.objective,
                "direction": self.direction, "trials": self.trials, "study": self.study,
                "storage": redact(self.storage), "pruner": self.pruner, "command": self.command,
                "preset": self.config.get("preset", ""), "overrides": self.overrides}


def redact(url: str) -> str:
    """The URL with any password and query string replaced by ***, for files and messages."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:  # not a URL SQLAlchemy can read: say nothing of it
        return "(unreadable storage URL)"
    # A query string can carry a password too (?password=...): it is left out.
    return parsed.set(query={}).render_as_string(hide_password=True) + ("?***" if parsed.query else "")


# -- setting up ------------------------------------------------------------------------------------------------
def prepare(workload, dataset: str, config, space: SearchSpace, trials: int, out: str | os.PathLike,
            study: str | None = None, storage: str | None = None, pruner: str = "median", jobs: int = 1,
            command: str = "") -> Sweep:
    """Check everything (space against the config, objective, names, storage) and make or reopen the sweep folder.
    Nothing is made when a check fails."""
    check_jobs(jobs)
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise Lab28Error(f"--trials must be a whole number of at least 1, got {trials!r}")
    if pruner not in PRUNERS:
        raise Lab28Error(f"--pruner must be one of {', '.join(PRUNERS)}, got {pruner!r}")
    study = study or f"{dataset}-sweep"
    check_run_name(study, "--study")
    base = workload.config_from_dict(config.to_dict())
    if getattr(base.data, "path", ""):  # absolute, so that every worker and a later run find the same data
        base.data.path = str(Path(base.data.path).resolve())
    if base.train.init_from:  # the same for the start weights, checked once here rather than by every trial
        from lab28.runs.init_from import check_init_from

        check_init_from(workload, base)
        base.train.init_from = str(Path(base.train.init_from).resolve())
    tree = base.to_dict()
    objective = space.objective or base.train.early_stopping.monitor
    _check_objective(workload, base, objective)
    direction = space.direction or ({"max": "maximize", "min": "minimize"}[base.train.early_stopping.mode]
                                    if objective == base.train.early_stopping.monitor else default_direction(objective))
    for param in space.params:  # every value at the edges of the space must make a valid config
        for value in _edges(param):
            trial_config(workload, tree, {param.path: value})
    overrides = _leaves_changed(workload.preset(base.preset).to_dict() if base.preset else {}, tree)
    clash = [p.path for p in space.params if p.path in overrides]
    if clash:
        raise Lab28Error(f"{', '.join(clash)}: both fixed (a flag, or a value away from the preset) and searched; "
                         "leave one of them out")
    folder = Path(out) / study
    url = storage or os.environ.get("LAB28_STORAGE") or f"sqlite:///{(folder / 'study.db').resolve()}"
    sweep = Sweep(workload=workload.name, dataset=dataset, config=tree, space=space, trials=trials, study=study,
                  storage=url, objective=objective, direction=direction, pruner=pruner, folder=folder,
                  command=command, overrides=overrides)
    if storage or os.environ.get("LAB28_STORAGE"):
        # A shared database that cannot be reached, or holds another search by this name, is refused before the
        # folder is made.
        import optuna

        shared = open_storage(url)
        if sweep.study in {s.study_name for s in shared.get_all_studies()}:
            check_same_search(sweep, optuna.load_study(study_name=sweep.study, storage=shared))
    _open_folder(sweep)
    sweep.threads = threads_per_worker(jobs, jobs)
    return sweep


def _leaves_changed(reference: dict, tree: dict, prefix: str = "") -> dict[str, Any]:
    """config path -> value of every leaf of `tree` that differs from `reference` (all of them without one)."""
    changed = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            ref = reference.get(key)
            changed.update(_leaves_changed(ref if isinstance(ref, dict) else {}, value, f"{prefix}{key}."))
        elif key not in reference or reference[key] != value:
            changed[f"{prefix}{key}"] = value
    return changed


def _edges(param) -> list:
    if param.kind == "categorical":
        return list(param.choices)
    return [int(param.low), int(param.high)] if param.kind == "int" else [param.low, param.high]


def _check_objective(workload, config, objective: str) -> None:
    from lab28.training.trainer import monitor_choices

    # val_raw_* (the trained weights beside their average) are logged per epoch but not kept at the best one
    choices = [c for c in monitor_choices(workload.task(config), config.train)
               if c.startswith("val_") and not c.startswith("val_raw_")]
    if objective not in choices:
        raise Lab28Error(f"objective {objective!r} is not a validation metric of this run; choose one of: "
                         f"{', '.join(choices)}")


def trial_config(workload, tree: dict, values: dict[str, Any]):
    """The base config tree with `values` (config path -> value) set, built and checked by the workload."""
    import copy

    tree = copy.deepcopy(tree)
    for path, value in values.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                raise Lab28Error(f"unknown config key {path!r} in the search space (see a run's config.json)")
            node = node[part]
        if leaf not in node or isinstance(node[leaf], dict):
            raise Lab28Error(f"unknown config key {path!r} in the search space (see a run's config.json)")
        node[leaf] = value
    try:
        config = workload.config_from_dict(tree)
    except (TypeError, ValueError) as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    workload.check_config(config)
    return config


def _open_folder(sweep: Sweep) -> None:
    """A new sweep folder with its sweep.json, or the same sweep's folder (continue it); refuse another sweep's."""
    path = sweep.folder / SWEEP_FILE
    wanted = json.loads(json.dumps(sweep.to_json()))  # as it reads back from the file
    if path.is_file():
        found = read_run_json(path)
        differs = [key for key in IDENTITY if found.get(key) != wanted[key]]
        if differs:
            raise Lab28Error(f"{sweep.folder} holds another sweep (its {', '.join(differs)} differ); "
                             "choose another --study or --out, or delete that folder")
    elif sweep.folder.exists() and any(sweep.folder.iterdir()):
        raise Lab28Error(f"{sweep.folder} exists and is not a sweep folder (no {SWEEP_FILE})")
    sweep.folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, wanted)


# -- the study --------------------------------------------------------------------------------------------------
def open_storage(url: str):
    """Optuna's storage at `url` (its tables made if new); a one-line Lab28Error when it cannot be had."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # lab28 prints its own lines per trial and epoch
    try:
        for attempt in range(5):
            try:
                return optuna.storages.RDBStorage(url)
            except Exception as exc:
                # Workers that start together on an empty database race to create Optuna's tables: the loser's
                # CREATE or its version row fails once the winner's exists (SQLite: "table ... already exists"),
                # or waits on the winner's lock; a second try finds the tables.
                if attempt == 4 or not _lost_the_table_race(exc):
                    raise
                time.sleep(0.2 + random.random())
    except ImportError as exc:
        raise Lab28Error(f"storage {redact(url)}: its database driver is not installed ({exc}); for "
                         "PostgreSQL: pip install 'lab28[postgres]'") from None
    except Exception as exc:  # sqlalchemy.exc.OperationalError and kin: the database said no
        if type(exc).__module__.startswith(("sqlalchemy", "optuna")) or isinstance(exc, ValueError):
            raise Lab28Error(f"storage {redact(url)}: {' '.join(str(exc).split())[:300]}") from None
        raise


def _lost_the_table_race(exc: Exception) -> bool:
    if type(exc).__name__ == "IntegrityError":
        return True
    message = str(exc)
    return type(exc).__name__ == "OperationalError" and ("already exists" in message or "locked" in message)


def load_study(sweep: Sweep):
    """The sweep's study (made by the first worker to ask), refused when it holds another search.

    The sampler is seeded from nothing fixed: workers on several machines, or a continued sweep, would otherwise
    propose the same configurations again."""
    import optuna

    study = optuna.create_study(study_name=sweep.study, storage=open_storage(sweep.storage),
                                direction=sweep.direction, sampler=optuna.samplers.TPESampler(),
                                pruner=make_pruner(sweep.pruner), load_if_exists=True)
    if study.user_attrs.get("lab28_sweep") is None:
        study.set_user_attr("lab28_sweep", sweep.identity())
    check_same_search(sweep, study)
    return study


def check_same_search(sweep: Sweep, study) -> None:
    """Refuse a study that holds another search (a shared database may hold many under similar names)."""
    found = study.user_attrs.get("lab28_sweep")
    if (found is not None and found != sweep.identity()) or study.direction.name.lower() != sweep.direction:
        raise Lab28Error(f"study {sweep.study!r} in {redact(sweep.storage)} holds another search (other data, "
                         "config, space or objective); choose another --study")


def make_pruner(name: str):
    """median: stop a trial whose objective is worse than the median of earlier trials at the same epoch, once
    five trials have finished and from epoch 2 on (the first epoch says little); halving: successive halving;
    none: every trial runs until its own early stopping."""
    import optuna

    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    return optuna.pruners.SuccessiveHalvingPruner() if name == "halving" else optuna.pruners.NopPruner()


OPEN_STATES = ("RUNNING", "WAITING")


def counted(trial) -> bool:
    """Whether a trial uses up one of the N: run or running; a trial failed by a lost worker does not."""
    name = trial.state.name
    return name in ("COMPLETE", "PRUNED", *OPEN_STATES) or (name == "FAIL" and "error" in trial.user_attrs)


def finished(trial) -> bool:
    return trial.state.name in ("COMPLETE", "PRUNED") or (trial.state.name == "FAIL" and "error" in trial.user_attrs)


def fail_lost_trials(study) -> list[int]:
    """Mark failed the running trials whose worker is gone: a dead process on this machine, or no heartbeat for
    STALE_AFTER_S. They do not count, so a new trial takes their place."""
    from optuna.trial import TrialState

    host, now, lost = socket.gethostname(), time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        attrs = trial.user_attrs
        started = trial.datetime_start.timestamp() if trial.datetime_start else now
        beat = attrs.get("heartbeat", started)
        silent = now - (float(beat) if isinstance(beat, (int, float)) else started) > STALE_AFTER_S
        # On this machine a process that is gone says so at once; the heartbeat catches the rest (other machines,
        # a pid taken again by another process).
        gone = (attrs.get("host") == host and isinstance(attrs.get("pid"), int) and attrs["pid"] != os.getpid()
                and not _process_alive(attrs["pid"]))
        if gone or silent:
            study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            lost.append(trial.number)
    return lost


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@contextlib.contextmanager
def trial_slot(sweep: Sweep):
    """Held while a worker counts the trials and takes the next one, so that no two workers take the N+1-th."""
    from sqlalchemy.engine import make_url

    url = make_url(sweep.storage)
    key = int.from_bytes(hashlib.sha256(f"lab28 sweep {sweep.study}".encode()).digest()[:7], "big")
    if url.get_backend_name() == "sqlite" and url.database:
        import fcntl

        with open(f"{url.database}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return
    backend = url.get_backend_name()
    if backend not in ("postgresql", "mysql", "mariadb"):
        yield  # no lock this database offers: with several workers the last trials may run once too often
        return
    import sqlalchemy

    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    lock, unlock = (("SELECT pg_advisory_lock(:k)", "SELECT pg_advisory_unlock(:k)") if backend == "postgresql"
                    else ("SELECT GET_LOCK(:k, 3600)", "SELECT RELEASE_LOCK(:k)"))
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(lock), {"k": key if backend == "postgresql" else str(key)})
        try:
            yield
        finally:
            connection.execute(sqlalchemy.text(unlock), {"k": key if backend == "postgresql" else str(key)})
    engine.dispose()


# -- running trials ---------------------------------------------------------------------------------------------
def run_trials(sweep: Sweep, jobs: int = 1) -> None:
    """Run trials until the study holds `sweep.trials` that count: here (jobs 1) or in `jobs` worker processes."""
    load_study(sweep)  # create it once, before workers race to
    if jobs == 1:
        work(sweep, 0)
    else:
        run_in_workers(work, [(sweep, k) for k in range(jobs)], jobs)


def work(sweep: Sweep, worker: int) -> int:
    """One worker: take trials until N count; returns how many this worker ran."""
    study = load_study(sweep)
    ran = 0
    while True:
        with trial_slot(sweep):
            fail_lost_trials(study)
            if sum(counted(t) for t in study.get_trials(deepcopy=False)) >= sweep.trials:
                return ran
            trial = study.ask()
            for key, value in (("host", socket.gethostname()), ("pid", os.getpid()), ("heartbeat", time.time()),
                               ("run", f"trials/trial-{trial.number:04d}")):
                trial.set_user_attr(key, value)
        run_trial(sweep, study, trial)
        ran += 1


def run_trial(sweep: Sweep, study, trial) -> None:
    """Train the trial's configuration into trials/trial-NNNN and tell the study its objective (or its pruning)."""
    from optuna.trial import TrialState

    name = f"trial-{trial.number:04d}"
    pruned: list[str] = []
    alive = threading.Event()
    threading.Thread(target=_heartbeat, args=(trial, alive), daemon=True).start()
    try:
        run_dir = train_one(sweep, sweep.space.suggest(trial), sweep.folder / "trials", name,
                            on_epoch=_pruning_callback(sweep, trial, pruned))
        trial.set_user_attr("run", f"trials/{run_dir.name}")
        value = objective_value(run_dir, sweep.objective)
    except Lab28Error as exc:
        alive.set()
        trial.set_user_attr("error", one_line(exc))  # its own failure (a diverged loss, ...): it counts as run
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        print(f"[{name}] failed: {one_line(exc)}", flush=True)
        return
    except BaseException:
        alive.set()
        study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)  # interrupted: replaced by a later run
        raise
    alive.set()
    # skip_if_finished: a trial taken for lost (no heartbeat for STALE_AFTER_S) was failed by another worker
    if pruned:
        study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
    else:
        study.tell(trial, value, skip_if_finished=True)
    print(f"[{name}] {sweep.objective} = {value:.4f}{' (pruned)' if pruned else ''}", flush=True)


def train_one(sweep: Sweep, values: dict, parent: Path, name: str, on_epoch=None, overwrite: bool = False) -> Path:
    """Train the base config with `values` set into parent/name; the run folder. A run that fails by itself raises
    its one-line Lab28Error; an interrupted one (Ctrl-C, SIGTERM) raises KeyboardInterrupt, so that the sweep stops
    instead of counting it as a failed configuration."""
    from lab28.runs.lifecycle import train_run
    from lab28.training.trainer import TrainingInterrupted
    from lab28.workloads import get_workload

    workload = get_workload(sweep.workload)
    config = trial_config(workload, sweep.config, values)
    if not config.train.threads:
        config.train.threads = sweep.threads
    try:
        # No figures: a sweep's report reads the study; `lab28 report` on a run folder draws them on demand.
        return train_run(workload, config, parent, name, overwrite=overwrite, draw_figures=False,
                         progress_label=name, on_epoch=on_epoch)
    except Lab28Error as exc:
        # The run folder has recorded the interrupt and turned it into one line; the sweep must still stop.
        if isinstance(exc.__context__, (KeyboardInterrupt, TrainingInterrupted)):
            raise KeyboardInterrupt from None
        raise


def one_line(exc: BaseException, limit: int = 300) -> str:
    return " ".join(str(exc).split())[:limit] or type(exc).__name__


def _heartbeat(trial, stop: threading.Event) -> None:
    while not stop.wait(HEARTBEAT_S):
        with contextlib.suppress(Exception):  # a missed beat is retried; the run itself must not fail over it
            trial.set_user_attr("heartbeat", time.time())


def _pruning_callback(sweep: Sweep, trial, pruned: list[str]):
    """on_epoch for a trial's run: report the objective; a pruning decision ends the run like early stopping."""
    from optuna.exceptions import UpdateFinishedTrialError

    def on_epoch(row: dict) -> str | None:
        value = row.get(sweep.objective)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            return None
        epoch = int(row["epoch"])
        try:
            trial.report(value, epoch)
            prune = trial.should_prune()
        except UpdateFinishedTrialError:  # another worker took this trial for lost: it no longer counts
            return "stopped: the sweep's study has marked this trial failed (taken for lost)"
        except Exception as exc:  # the database is unreachable for a moment: train on, without pruning
            print(f"[trial-{trial.number:04d}] warning: could not report epoch {epoch} to the study: "
                  f"{one_line(exc, 200)}", flush=True)
            return None
        if prune:
            pruned.append(f"pruned by the sweep ({sweep.pruner} pruner) after epoch {epoch}")
            return pruned[-1]
        return None

    return on_epoch


def objective_value(run_dir: Path, objective: str) -> float:
    """The objective of a finished run: its validation metric at the best epoch (what best.pt holds)."""
    final = read_run_json(run_dir / "final_metrics.json")
    value = final.get("val", {}).get(objective.removeprefix("val_")) if isinstance(final.get("val"), dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Lab28Error(f"{run_dir / 'final_metrics.json'}: no number for {objective}")
    return float(value)


# -- the whole command ------------------------------------------------------------------------------------------
def run_sweep(workload, dataset: str, config, space: SearchSpace, trials: int, out: str | os.PathLike = "runs",
              study: str | None = None, storage: str | None = None, pruner: str = "median", jobs: int = 1,
              repeat_best: int = 0, seeds: tuple[int, ...] = (1, 2, 3), command: str = "") -> Path:
    """`lab28 sweep`: run (or continue) the trials, then the repeats if asked, then the report; the sweep folder."""
    from lab28.runs.sweep_repeats import check_seeds, run_repeats

    if isinstance(repeat_best, bool) or not isinstance(repeat_best, int) or repeat_best < 0:
        raise Lab28Error(f"--repeat-best must be a whole number >= 0, got {repeat_best!r}")
    if repeat_best:
        check_seeds(list(seeds))
    sweep = prepare(workload, dataset, config, space, trials, out, study=study, storage=storage, pruner=pruner,
                    jobs=jobs, command=command)
    run_trials(sweep, jobs)
    optuna_study = load_study(sweep)
    try:
        done = sum(finished(t) for t in optuna_study.get_trials(deepcopy=False))
        if repeat_best and done < sweep.trials:
            print(f"{done} of {sweep.trials} trials have finished (others still run elsewhere): the repeats wait "
                  "for all of them; run the command again later", flush=True)
        elif repeat_best:
            run_repeats(sweep, optuna_study, repeat_best, list(seeds), jobs)
    finally:  # the trials' report, also when the repeats could not run
        write_report(sweep.folder, optuna_study)
    return sweep.folder


def write_report(folder: Path, study) -> Path:
    """report.md and report.html of the sweep (lab28.runs.sweep_report)."""
    from lab28.runs.sweep_report import write_sweep_report

    return write_sweep_report(folder, study)


def report_folder(folder: str | Path) -> Path:
    """`lab28 report SWEEP`: the report again, from the study in the folder's study.db or at $LAB28_STORAGE (a
    shared database's URL is not kept in sweep.json, which may be shared: it can hold a password)."""
    import optuna

    folder = Path(folder)
    info = read_run_json(folder / SWEEP_FILE)
    local = folder / "study.db"
    url = os.environ.get("LAB28_STORAGE") or (f"sqlite:///{local.resolve()}" if local.is_file() else None)
    if url is None:
        raise Lab28Error(f"{folder}: its study is in a shared database; give its URL in $LAB28_STORAGE")
    study_name = info.get("study")
    if not isinstance(study_name, str):
        raise Lab28Error(f"{folder / SWEEP_FILE}: study must be text, found {study_name!r}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study = optuna.load_study(study_name=study_name, storage=url)
    except KeyError:
        raise Lab28Error(f"{redact(url)}: no study named {study_name!r}") from None
    except Exception as exc:
        if type(exc).__module__.startswith(("sqlalchemy", "optuna")):
            raise Lab28Error(f"storage {redact(url)}: {' '.join(str(exc).split())[:300]}") from None
        raise
    return write_report(folder, study)
