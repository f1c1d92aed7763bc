"""lab28 sweep: the search-space file, the checks before anything is made, exactly N trials however many workers
take them, a killed worker's trial replaced on the next run, pruning ending a run like early stopping, repeats."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from conftest import assert_one_line_error
from lab28.cli import main
from lab28.errors import Lab28Error
from lab28.runs.sweep_space import read_space

# A trial of a few seconds: the quick preset's small model on 120 synthetic images, one epoch.
TINY = ["--synth", "--preset", "quick", "--synth-n", "120", "--val-size", "40", "--threads", "1"]
SPACE = "params:\n  model.dropout: {type: float, low: 0.0, high: 0.5}\n  task.lam: {type: float, low: 0.3, high: 10, log: true}\n"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def sweep_args(tmp_path: Path, trials: int, *extra: str) -> list[str]:
    space = write(tmp_path / "space.yaml", SPACE)
    return ["sweep", "gsn", "--space", str(space), "--trials", str(trials), "--out", str(tmp_path / "out"),
            "--pruner", "none", *TINY, *extra]


def trials_of(tmp_path: Path, study: str = "gsn-sweep"):
    db = tmp_path / "out" / study / "study.db"
    return optuna.load_study(study_name=study, storage=f"sqlite:///{db}").get_trials()


# -- the search-space file ---------------------------------------------------------------------------------------
def test_a_space_file_reads_as_yaml_and_as_json(tmp_path):
    yaml_space = read_space(write(tmp_path / "s.yaml", SPACE + "objective: val_rmse\n"))
    json_space = read_space(write(tmp_path / "s.json", json.dumps({"params": {
        "model.dropout": {"type": "float", "low": 0.0, "high": 0.5},
        "task.lam": {"type": "float", "low": 0.3, "high": 10, "log": True}}, "objective": "val_rmse"})))
    assert yaml_space == json_space
    assert [p.path for p in yaml_space.params] == ["model.dropout", "task.lam"] and yaml_space.params[1].log
    assert yaml_space.objective == "val_rmse" and yaml_space.direction is None


@pytest.mark.parametrize("text, fragment", [
    ("- a list\n", "expected a mapping with 'params'"),
    ("params: {}\n", "'params' must map config keys"),
    ("params:\n  model.dropout: {type: gaussian}\n", "type must be one of float, int, categorical"),
    ("params:\n  model.dropout: {type: float, low: 0.5, high: 0.1}\n", "low (0.5) must be below high (0.1)"),
    ("params:\n  task.lam: {type: float, low: 0, high: 1, log: true}\n", "a log range needs low > 0"),
    ("params:\n  model.dropout: {type: float, low: 0, high: .nan}\n", "high must be a finite number"),
    ("params:\n  model.head: {type: categorical, choices: []}\n", "choices must be a non-empty list"),
    ("params:\n  train.batch_size: {type: int, low: 32.5, high: 64}\n", "an int range needs whole numbers"),
    ("params:\n  ../x: {type: float, low: 0, high: 1}\n", "is not a config key"),
    ("params:\n  model.dropout: {type: float, low: 0, high: 1}\nobjective: accuracy\n", "must be a validation metric"),
    ("params:\n  model.dropout: {type: float, low: 0, high: 1}\nextra: 1\n", "unknown entries ['extra']"),
    ("params: [unclosed\n", "not valid YAML"),
])
def test_a_bad_space_file_is_one_line_naming_it(tmp_path, capsys, text, fragment):
    space = write(tmp_path / "space.yaml", text)
    assert main(["sweep", "gsn", "--space", str(space), "--trials", "2", "--out", str(tmp_path / "out"), *TINY]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, fragment)
    assert str(space) in err and not (tmp_path / "out").exists()


def test_a_yaml_tag_that_would_run_code_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    space = write(tmp_path / "evil.yaml", f"params: !!python/object/apply:os.system ['touch {marker}']\n")
    with pytest.raises(Lab28Error, match="not valid YAML"):
        read_space(space)
    assert not marker.exists()


# -- checked before anything is made -----------------------------------------------------------------------------
@pytest.mark.parametrize("text, fragment", [
    ("params:\n  model.nope: {type: float, low: 0, high: 1}\n", "unknown config key 'model.nope'"),
    ("params:\n  model.dropout: {type: float, low: 0.0, high: 1.0}\n", "dropout must be in [0, 1)"),
    ("params:\n  model.head: {type: categorical, choices: [factored, round]}\n", "unknown head 'round'"),
    ("params:\n  model.dropout: {type: float, low: 0, high: 0.5}\nobjective: val_bogus\n",
     "objective 'val_bogus' is not a validation metric of this run"),
    ("params:\n  model.dropout: {type: float, low: 0, high: 0.5}\nobjective: val_raw_accuracy\n",
     "objective 'val_raw_accuracy' is not a validation metric of this run"),
])
def test_a_space_the_config_refuses_leaves_nothing(tmp_path, capsys, text, fragment):
    space = write(tmp_path / "space.yaml", text)
    assert main(["sweep", "gsn", "--space", str(space), "--trials", "2", "--out", str(tmp_path / "out"), *TINY]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("url, fragment", [
    ("postgresql://lab28:secret@127.0.0.1:1/lab28", "storage postgresql://lab28:***@127.0.0.1:1/lab28: "),
    ("not a url", "Could not parse SQLAlchemy URL"),
])
def test_a_storage_that_cannot_be_had_is_one_line_without_its_password(tmp_path, capsys, url, fragment):
    assert main([*sweep_args(tmp_path, 2), "--storage", url]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, fragment)
    assert "secret" not in err and not (tmp_path / "out").exists()


def test_bad_seeds_for_the_repeats_are_refused_before_any_trial(tmp_path, capsys):
    assert main([*sweep_args(tmp_path, 2), "--repeat-best", "1", "--seeds", "1,1"]) == 2
    assert_one_line_error(capsys.readouterr().err, "--seeds repeats a seed")
    assert not (tmp_path / "out").exists()


def test_a_shared_study_of_another_search_is_refused_before_anything_is_made(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    assert main([*sweep_args(tmp_path, 1, "--epochs", "1"), "--storage", storage]) == 0
    capsys.readouterr()
    other = [*sweep_args(tmp_path, 1, "--epochs", "2"), "--storage", storage]  # another base config
    other[other.index("--out") + 1] = str(tmp_path / "elsewhere")
    assert main(other) == 2
    assert_one_line_error(capsys.readouterr().err, "holds another search")
    assert not (tmp_path / "elsewhere").exists()


def _sigint_as_from_a_terminal() -> None:
    """In the child before exec: SIGINT handled by default and not blocked, as when a user starts the sweep. A
    process inherits an ignored or blocked SIGINT from its parent, and a test worker may have either after other
    tests; the sweep would then never see the Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def test_ctrl_c_stops_the_sweep_and_the_interrupted_trial_does_not_count(tmp_path):
    # Trials far longer than the test, so that the sweep is still in its first trial when the signal comes: on a
    # loaded machine, three 60-epoch trials of the tiny data set can all end between the poll and the signal.
    args = sweep_args(tmp_path, 3, "--epochs", "100000", "--patience", "100000")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    sweep = subprocess.Popen([sys.executable, "-m", "lab28.cli", *args], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_as_from_a_terminal)
    try:
        victim = _running_trial(tmp_path, sweep)
        sweep.send_signal(signal.SIGINT)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode in (2, 130) and "interrupt" in err, err
    trials = trials_of(tmp_path)
    assert [t.number for t in trials] == [victim.number]  # no further trial was started after the interrupt
    assert trials[0].state.name == "FAIL" and "error" not in trials[0].user_attrs  # so it is replaced, not counted


def test_a_value_both_fixed_and_searched_is_refused(tmp_path, capsys):
    assert main([*sweep_args(tmp_path, 2), "--dropout", "0.2"]) == 2
    assert_one_line_error(capsys.readouterr().err, "model.dropout: both fixed")
    assert not (tmp_path / "out").exists()


def test_a_folder_of_another_sweep_is_refused(tmp_path, capsys):
    assert main(sweep_args(tmp_path, 1, "--epochs", "1")) == 0
    capsys.readouterr()
    write(tmp_path / "space.yaml", SPACE.replace("high: 0.5", "high: 0.4"))
    args = sweep_args(tmp_path, 1, "--epochs", "1")
    args[args.index("--space") + 1] = str(write(tmp_path / "other.yaml", SPACE.replace("high: 0.5", "high: 0.4")))
    assert main(args) == 2
    assert_one_line_error(capsys.readouterr().err, "holds another sweep (its space differ)")


# -- exactly N trials, a killed worker replaced -------------------------------------------------------------------
def test_two_workers_sharing_one_sqlite_study_run_exactly_n_trials(tmp_path, capsys):
    assert main(sweep_args(tmp_path, 5, "--epochs", "1", "--jobs", "2")) == 0
    trials = trials_of(tmp_path)
    assert sorted(t.number for t in trials) == [0, 1, 2, 3, 4]
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    assert len({t.user_attrs["pid"] for t in trials}) == 2  # both workers took trials
    for t in trials:  # each trial an ordinary, finished run folder holding the sampled values
        run = tmp_path / "out" / "gsn-sweep" / t.user_attrs["run"]
        config = json.loads((run / "config.json").read_text())
        assert json.loads((run / "status.json").read_text())["status"] == "finished"
        assert config["model"]["dropout"] == t.params["model.dropout"] and config["task"]["lam"] == t.params["task.lam"]
        assert t.value == json.loads((run / "final_metrics.json").read_text())["val"]["accuracy"]
    # the same command again: the study is complete, nothing more runs
    assert main(sweep_args(tmp_path, 5, "--epochs", "1", "--jobs", "2")) == 0
    assert len(trials_of(tmp_path)) == 5


# Trials of 60 epochs with early stopping out of reach: several seconds each (a tiny epoch takes ~0.1 s), so that
# _running_trial finds one mid-run even on a loaded machine. The sweeps started with them send their progress lines
# to /dev/null: an unread pipe that fills would stall the workers.
LONG_TRIALS = ("--epochs", "60", "--patience", "100")


def _running_trial(tmp_path: Path, sweep: subprocess.Popen, timeout: float = 120.0):
    """The first trial that is running with its worker's pid recorded (polls the study)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sweep.poll() is not None:
            raise AssertionError(f"the sweep ended (exit {sweep.returncode}) before a trial could be killed: "
                                 f"{sweep.stderr.read()[-2000:]}")
        if (tmp_path / "out" / "gsn-sweep" / "study.db").is_file():
            try:
                running = [t for t in trials_of(tmp_path) if t.state.name == "RUNNING" and "pid" in t.user_attrs
                           and (tmp_path / "out" / "gsn-sweep" / t.user_attrs.get("run", "-") / "metrics.csv").is_file()]
            except Exception:  # the study is being created
                running = []
            if running:
                return running[0]
        time.sleep(0.2)
    raise AssertionError("no trial started in time")


def test_a_worker_killed_mid_trial_is_replaced_when_the_command_runs_again(tmp_path):
    args = sweep_args(tmp_path, 3, *LONG_TRIALS, "--jobs", "2")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    sweep = subprocess.Popen([sys.executable, "-m", "lab28.cli", *args], env=env, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        victim = _running_trial(tmp_path, sweep)
        os.kill(victim.user_attrs["pid"], signal.SIGKILL)
        _, err = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            sweep.kill()
    assert sweep.returncode == 2 and "a worker process died" in err and err.count("\n") == 1
    # the same command again: the killed trial is marked failed and replaced; N complete, no number twice
    again = subprocess.run([sys.executable, "-m", "lab28.cli", *args], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    trials = trials_of(tmp_path)
    numbers = [t.number for t in trials]
    assert len(numbers) == len(set(numbers))
    assert sum(t.state.name == "COMPLETE" for t in trials) == 3
    lost = [t for t in trials if t.state.name == "FAIL"]
    assert victim.number in [t.number for t in lost] and all("error" not in t.user_attrs for t in lost)
    assert not [t for t in trials if t.state.name == "RUNNING"]


# -- pruning ends a run like early stopping --------------------------------------------------------------------------
def test_a_stop_request_from_on_epoch_ends_the_run_with_its_reason(tmp_path):
    from lab28.runs.lifecycle import train_run
    from lab28.workloads import get_workload
    from lab28.workloads.gsn.config import preset

    cfg = preset("quick")
    cfg.data.synth_n, cfg.data.val_size, cfg.train.epochs, cfg.train.threads = 120, 40, 5, 1
    seen = []

    def on_epoch(row):
        seen.append(row["epoch"])
        return "pruned by the sweep after epoch 2" if row["epoch"] == 2 else None

    run = train_run(get_workload("gsn"), cfg, tmp_path, "pruned", draw_figures=False, on_epoch=on_epoch)
    final = json.loads((run / "final_metrics.json").read_text())
    assert seen == [1, 2] and final["epochs_run"] == 2 and final["stop_reason"] == "pruned by the sweep after epoch 2"
    assert json.loads((run / "status.json").read_text())["status"] == "finished" and (run / "best.pt").is_file()


def test_the_median_pruner_stops_a_trial_below_the_median(tmp_path):
    """Five trials report their objective per epoch; the sixth, far below them, is pruned at epoch 2, not 1."""
    from lab28.runs.sweep import Sweep, _pruning_callback, make_pruner
    from lab28.runs.sweep_space import SearchSpace

    study = optuna.create_study(direction="maximize", pruner=make_pruner("median"))
    for value in (0.5, 0.6, 0.7, 0.8, 0.9):
        study.add_trial(optuna.trial.create_trial(value=value, intermediate_values={1: value, 2: value, 3: value}))
    trial = study.ask()
    sweep = Sweep(workload="gsn", dataset="gsn", config={}, space=SearchSpace(()), trials=5, study="s",
                  storage="sqlite://", objective="val_accuracy", direction="maximize")
    pruned: list[str] = []
    callback = _pruning_callback(sweep, trial, pruned)
    assert callback({"epoch": 1, "val_accuracy": 0.1}) is None  # warm-up: never pruned in epoch 1
    assert callback({"epoch": 2, "val_accuracy": 0.1}) == "pruned by the sweep (median pruner) after epoch 2"
    assert pruned and trial.should_prune()


# -- repeats over seeds ----------------------------------------------------------------------------------------------
def test_repeats_rerun_the_best_and_the_preset_over_the_seeds_once(tmp_path, capsys):
    args = sweep_args(tmp_path, 2, "--epochs", "1", "--repeat-best", "1", "--seeds", "3,4")
    assert main(args) == 0
    folder = tmp_path / "out" / "gsn-sweep"
    repeats = json.loads((folder / "repeats.json").read_text())
    best = max((t for t in trials_of(tmp_path)), key=lambda t: t.value)
    assert repeats["seeds"] == [3, 4] and [g["label"] for g in repeats["groups"]] == ["best-1", "preset"]
    assert repeats["groups"][0]["trial"] == best.number and repeats["groups"][0]["params"] == best.params
    for group in repeats["groups"]:
        for run in group["runs"]:
            config = json.loads((folder / run["run"] / "config.json").read_text())
            assert config["train"]["seed"] == run["seed"]
            assert run["value"] == json.loads((folder / run["run"] / "final_metrics.json").read_text())["val"]["accuracy"]
    preset_config = json.loads((folder / "repeats" / "preset-seed-3" / "config.json").read_text())
    assert preset_config["model"]["dropout"] == 0.0  # the quick preset's own value: no sampled one
    capsys.readouterr()
    assert main(args) == 0  # again: the repeats that finished are read, not trained again
    assert "epoch 1/1" not in capsys.readouterr().out
    assert json.loads((folder / "repeats.json").read_text()) == repeats


def test_the_python_api_sweeps_from_a_dict_and_writes_the_report(tmp_path):
    import lab28

    space = {"params": {"task.lam": {"type": "float", "low": 1.0, "high": 4.0}}, "objective": "val_rmse"}
    folder = lab28.sweep("gsn", space, trials=2, preset="quick", synth=True, out=tmp_path, pruner="none",
                         synth_n=120, val_size=40, epochs=1, threads=1)
    assert folder == tmp_path / "gsn-sweep"
    info = json.loads((folder / "sweep.json").read_text())
    assert info["objective"] == "val_rmse" and info["direction"] == "minimize"
    assert info["overrides"]["train.epochs"] == 1 and "task.lam" not in info["overrides"]
    trials = optuna.load_study(study_name="gsn-sweep", storage=f"sqlite:///{folder / 'study.db'}").get_trials()
    best = min(trials, key=lambda t: t.value)
    report = (folder / "report.md").read_text()
    assert f"lab28 train gsn --config {folder / best.user_attrs['run'] / 'config.json'}" in report
    assert "data:image/png;base64," in (folder / "report.html").read_text()


def test_the_recorded_command_masks_the_storage_however_it_is_spelled(tmp_path):
    """sweep.json and the report keep the command; a password in --storage (even abbreviated) never reaches them."""
    db = tmp_path / "shared.db"
    args = sweep_args(tmp_path, 1, "--epochs", "1", "--stor", f"sqlite:///{db}?password=hunter2")
    assert main(args) == 0
    folder = tmp_path / "out" / "gsn-sweep"
    record = json.loads((folder / "sweep.json").read_text())
    assert "--stor ***" in record["command"] and record["command"].startswith("lab28 sweep gsn --space ")
    for path in (folder / "sweep.json", folder / "report.md", folder / "report.html"):
        assert "hunter2" not in path.read_text()


# -- workers that start together on an empty database ----------------------------------------------------------------
def _sqlite_refusal(message: str) -> Exception:
    """What Optuna's storage raises when SQLite answers `message`."""
    import sqlite3

    import sqlalchemy.exc

    return sqlalchemy.exc.OperationalError("CREATE TABLE study_directions", None, sqlite3.OperationalError(message))


@pytest.mark.parametrize("message", ["table study_directions already exists", "database is locked"])
def test_a_worker_that_loses_the_race_to_create_the_tables_tries_again(tmp_path, monkeypatch, message):
    """SQLite's answers to the second of two workers creating Optuna's tables at once: the next try succeeds."""
    from lab28.runs.sweep import open_storage

    real = optuna.storages.RDBStorage
    calls = []

    def racing(url, *args, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise _sqlite_refusal(message)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    assert isinstance(open_storage(url), real) and len(calls) == 2


def test_a_database_that_refuses_for_another_reason_is_one_line_at_once(tmp_path, monkeypatch):
    from lab28.runs.sweep import open_storage

    calls = []

    def refusing(url, *args, **kwargs):
        calls.append(url)
        raise _sqlite_refusal("unable to open database file")

    monkeypatch.setattr(optuna.storages, "RDBStorage", refusing)
    with pytest.raises(Lab28Error, match="unable to open database file"):
        open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    assert len(calls) == 1
