"""Sweep workers in separate processes share one study on a real PostgreSQL server (the `postgres_url` fixture).

This is the set-up of `lab28 sweep --storage postgresql://...` on many machines: the same command started on
each, every worker loading the study by name from the server and asking it for the next trial.
"""

import subprocess
import sys

import pytest

TRIALS_PER_WORKER = 4

# One worker: what each machine of a shared sweep does, minus the training. Both workers start at once on an
# empty database, so both create Optuna's tables at the same moment and the loser gets a unique-key violation
# (CREATE TYPE studydirection); RDBStorage does not retry that. A second try finds the tables made, so the worker
# retries, a bounded number of times, with jitter. The study itself is safe: create_study(load_if_exists=True)
# turns a duplicate study name into loading it.
WORKER = """
import random, sys, time
import optuna
import sqlalchemy.exc

url, study_name, worker, n_trials = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
optuna.logging.set_verbosity(optuna.logging.WARNING)
for attempt in range(5):
    try:
        storage = optuna.storages.RDBStorage(url)
        break
    except sqlalchemy.exc.SQLAlchemyError as error:
        if attempt == 4:
            raise
        print(f"worker {worker}: creating the tables raced another worker ({type(error).__name__}); retrying")
        time.sleep(0.2 + random.random() * 0.3)
study = optuna.create_study(study_name=study_name, storage=storage, direction="minimize", load_if_exists=True,
                            sampler=optuna.samplers.RandomSampler(seed=int(worker)))

def objective(trial):
    trial.set_user_attr("worker", worker)
    x = trial.suggest_float("x", -5.0, 5.0)
    time.sleep(0.05)  # long enough that the two workers' trials interleave
    return (x - 2.0) ** 2

study.optimize(objective, n_trials=n_trials)
"""


def start_worker(url: str, study_name: str, worker: int, n_trials: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url, study_name, str(worker), str(n_trials)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_two_optuna_workers_share_one_study(postgres_url):
    import optuna

    study_name = "two-workers"
    workers = [start_worker(postgres_url, study_name, worker, TRIALS_PER_WORKER) for worker in (1, 2)]
    for process in workers:
        try:
            output, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            for running in workers:
                running.kill()
            raise
        assert process.returncode == 0, output
        print(output, end="")  # shows whether the table-creation race happened (pytest -rP)

    study = optuna.load_study(study_name=study_name, storage=postgres_url)
    trials = study.get_trials(deepcopy=False)
    total = 2 * TRIALS_PER_WORKER
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * total
    assert sorted(t.number for t in trials) == list(range(total))  # the server hands out each number once
    by_worker = [t.user_attrs["worker"] for t in trials]
    assert by_worker.count("1") == by_worker.count("2") == TRIALS_PER_WORKER
    assert len(optuna.get_all_study_names(storage=postgres_url)) == 1  # joined one study, did not make two


# ---- lab28 sweep on two workers ---------------------------------------------------------------------------------
# Two `lab28 sweep` processes, as on two machines: each with its own --out, joining one study on the server.

SWEEP_SPACE = "params:\n  model.dropout: {type: float, low: 0.0, high: 0.7}\n"


def sweep_worker_command(url: str, study_name: str, out, space, trials: int) -> list[str]:
    return [sys.executable, "-m", "lab28.cli", "sweep", "gsn", "--synth", "--space", str(space),
            "--trials", str(trials), "--storage", url, "--out", str(out), "--study", study_name, "--jobs", "1",
            "--pruner", "none",
            "--preset", "quick", "--synth-n", "200", "--val-size", "50", "--epochs", "1", "--threads", "1"]


def test_lab28_sweep_two_workers_share_one_study(postgres_url, tmp_path):
    import optuna

    space = tmp_path / "space.yaml"
    space.write_text(SWEEP_SPACE)
    trials = 4  # for the whole study: each worker stops once the study holds that many
    workers = [subprocess.Popen(sweep_worker_command(postgres_url, "lab28-two", tmp_path / f"machine-{i}", space,
                                                     trials), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True) for i in (1, 2)]
    for process in workers:
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
    study = optuna.load_study(study_name="lab28-two", storage=postgres_url)
    complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    assert len(study.get_trials(deepcopy=False)) == trials  # exactly N, however the two workers raced
    assert sorted(t.number for t in complete) == list(range(trials))
    # each trial is a run folder on the machine that ran it, and no trial ran on both
    folders = [sorted(p.name for p in (tmp_path / f"machine-{i}" / "lab28-two" / "trials").glob("trial-*"))
               for i in (1, 2)]
    assert sorted(folders[0] + folders[1]) == [f"trial-{n:04d}" for n in range(trials)]
