"""The sweep report from hand-made studies and files (no training): the best trial and its re-run command, the
best-trials order for both directions, the seed-noise verdict, the figures inlined in report.html, and refusals of
damaged files before anything is written."""

import json
import re
import shlex
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from lab28.errors import Lab28Error
from lab28.runs.sweep_report import write_sweep_report

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = [{"path": "model.dropout", "kind": "float", "low": 0.0, "high": 0.7, "log": False, "step": None,
          "choices": None},
         {"path": "task.lam", "kind": "float", "low": 0.3, "high": 10.0, "log": True, "step": None, "choices": None},
         {"path": "model.head", "kind": "categorical", "low": None, "high": None, "log": False, "step": None,
          "choices": ["factored", "flat"]},
         {"path": "train.batch_size", "kind": "int", "low": 32, "high": 128, "log": False, "step": 32, "choices": None}]
DISTRIBUTIONS = {"model.dropout": FloatDistribution(0.0, 0.7), "task.lam": FloatDistribution(0.3, 10.0, log=True),
                 "model.head": CategoricalDistribution(["factored", "flat"]),
                 "train.batch_size": IntDistribution(32, 128, step=32)}
# (objective, dropout, lam, head, batch size) of the complete trials, by trial number.
COMPLETE = {0: (0.42, 0.1, 1.0, "flat", 64), 1: (0.61, 0.3, 2.0, "factored", 32), 2: (0.55, 0.5, 0.5, "flat", 128),
            4: (0.30, 0.6, 8.0, "flat", 96), 5: (0.58, 0.2, 3.0, "factored", 64)}


def params(dropout, lam, head, batch):
    return {"model.dropout": dropout, "task.lam": lam, "model.head": head, "train.batch_size": batch}


def make_study(direction: str = "maximize", complete: dict = COMPLETE) -> optuna.Study:
    """The complete trials, a pruned trial 3 (two epochs) and a failed trial 6 with its error."""
    study = optuna.create_study(direction=direction, storage=None, study_name="gsn-sweep")
    for number in range(7):
        run = {"run": f"trials/trial-{number:04d}"}
        if number in complete:
            value, *p = complete[number]
            curve = {1: value / 2, 2: value * 0.9, 3: value}
            trial = create_trial(params=params(*p), distributions=DISTRIBUTIONS, value=value,
                                 intermediate_values=curve, user_attrs=run)
        elif number == 3:
            trial = create_trial(params=params(0.65, 9.0, "flat", 32), distributions=DISTRIBUTIONS,
                                 state=TrialState.PRUNED, intermediate_values={1: 0.1, 2: 0.12}, user_attrs=run)
        else:
            trial = create_trial(params=params(0.4, 1.0, "flat", 32), distributions=DISTRIBUTIONS,
                                 state=TrialState.FAIL, user_attrs={**run, "error": "CUDA out of memory"})
        study.add_trial(trial)
    return study


def write_sweep_json(folder: Path, direction: str = "maximize", **changes) -> None:
    sweep = {"dataset": "gsn", "preset": "lab", "objective": "val_accuracy", "direction": direction, "trials": 30,
             "study": "gsn-sweep", "storage": "sqlite:///***@db/study.db", "space": SPACE,
             "overrides": {"train.epochs": 3}, "command": "lab28 sweep gsn --space space.yaml --trials 30"}
    (folder / "sweep.json").write_text(json.dumps({**sweep, **changes}))


def repeats(best: list, preset: list) -> dict:
    def runs(label, values):
        return [{"seed": s, "run": f"repeats/{label}-seed-{s}", "value": v} for s, v in zip((1, 2, 3), values)]
    return {"seeds": [1, 2, 3],
            "groups": [{"label": "best-1", "trial": 1, "params": {"model.dropout": 0.3}, "runs": runs("best-1", best)},
                       {"label": "preset", "trial": None, "params": {}, "runs": runs("preset", preset)}]}


def table_trials(report: str) -> list[int]:
    """The trial numbers of the best-trials table, in order."""
    section = report.split("\n## Best trials\n")[1]
    return [int(m) for m in re.findall(r"^\| (\d+) \|", section.split("\n## ")[0], flags=re.M)]


def test_maximize_report_names_the_best_trial_its_command_and_ranks_the_trials(tmp_path):
    write_sweep_json(tmp_path)
    path = write_sweep_report(tmp_path, make_study())
    assert path == tmp_path / "report.md"
    report = path.read_text()
    assert report.startswith("# Sweep `gsn-sweep`: val_accuracy on gsn\n")
    assert "- **Trials**: 7 of 30 started: 5 complete, 1 pruned, 1 failed, 0 running." in report
    assert ("- **Best trial**: 1, val_accuracy = 0.61: `model.dropout = 0.3`, `task.lam = 2`, "
            "`model.head = factored`, `train.batch_size = 32`.") in report
    config = shlex.quote(str(tmp_path / "trials" / "trial-0001" / "config.json"))
    assert f"- **Re-run the best trial**: `lab28 train gsn --config {config}`" in report
    assert "`lab28 sweep gsn --space space.yaml --trials 30`" in report
    assert table_trials(report) == [1, 5, 2, 0, 4]
    assert "| 1 | 0.61 | 0.3 | 2 | factored | 32 | 3 | [trials/trial-0001](trials/trial-0001) |" in report
    assert "| 6 | CUDA out of memory | [trials/trial-0006](trials/trial-0006) |" in report
    assert "## Repeats" not in report  # no repeats.json


def test_minimize_ranks_the_lowest_first(tmp_path):
    write_sweep_json(tmp_path, "minimize")
    report = write_sweep_report(tmp_path, make_study("minimize")).read_text()
    assert table_trials(report) == [4, 0, 2, 5, 1]
    assert "- **Best trial**: 4, val_accuracy = 0.3:" in report and "trial-0004/config.json`" in report


def test_figures_are_written_and_inlined_in_the_html_page(tmp_path):
    write_sweep_json(tmp_path)
    report = write_sweep_report(tmp_path, make_study()).read_text()
    names = re.findall(r"\]\(figures/([\w.]+\.png)\)", report)
    assert set(names) == {"history.png", "importances.png", "slices.png", "parallel.png", "learning_curves.png"}
    for name in names:
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = (tmp_path / "report.html").read_text()
    assert page.count('src="data:image/png;base64,') == len(names) and "figures/" not in page.split("<body>")[1]
    assert '<a href="#best-trials">Best trials</a>' in page  # the contents link to the sections


@pytest.mark.parametrize("best, preset, verdict", [
    ([0.61, 0.58, 0.64], [0.59, 0.57, 0.60], "inside the seed-to-seed noise"),
    ([0.61, 0.62, 0.60], [0.50, 0.51, 0.49], "ahead of the preset by more than the spread"),
    ([0.40, 0.41, None], [0.50, 0.51, 0.49], "behind the preset by more than the spread"),
])
def test_the_repeats_verdict_weighs_the_lead_against_the_seed_spread(tmp_path, best, preset, verdict):
    write_sweep_json(tmp_path)
    (tmp_path / "repeats.json").write_text(json.dumps(repeats(best, preset)))
    report = write_sweep_report(tmp_path, make_study()).read_text()
    verdicts = [line for line in report.splitlines() if line.startswith("- **Verdict**")]
    assert len(verdicts) == 1 and verdicts[0].endswith(f", {verdict}."), verdicts
    assert "## Repeats" in report and "| preset | – | the preset's values |" in report
    if None in best:
        assert "| failed |" in report and "(2 seeds)" in report


def test_one_complete_trial_says_why_there_are_no_importances(tmp_path):
    write_sweep_json(tmp_path)
    report = write_sweep_report(tmp_path, make_study(complete={0: COMPLETE[0]})).read_text()
    assert "Parameter importances need at least 2 complete trials; this sweep has 1." in report
    assert not (tmp_path / "figures" / "importances.png").exists()
    assert (tmp_path / "figures" / "history.png").exists()


def test_no_complete_trial_has_no_best_and_no_command(tmp_path):
    write_sweep_json(tmp_path)
    report = write_sweep_report(tmp_path, make_study(complete={})).read_text()
    assert "- **Best trial**: none yet; no trial has completed." in report and "lab28 train" not in report


@pytest.mark.parametrize("garble, fragment", [
    (lambda r: r.update(seeds="1,2,3"), "seeds must be a list"),
    (lambda r: r["groups"][0].update(label=7), "groups[0].label must be text, found a number"),
    (lambda r: r["groups"][1]["runs"][0].update(value="0.5"), "groups[1].runs[0].value must be a number or null"),
    (lambda r: r["groups"][0]["runs"][0].update(seed=9), "groups[0].runs[0].seed 9 is not one of the seeds"),
    (lambda r: r["groups"].append([1, 2]), "groups[2] must be an object"),
])
def test_a_garbled_repeats_json_is_refused_before_anything_is_written(tmp_path, garble, fragment):
    write_sweep_json(tmp_path)
    data = repeats([0.6, 0.6, 0.6], [0.5, 0.5, 0.5])
    garble(data)
    (tmp_path / "repeats.json").write_text(json.dumps(data))
    with pytest.raises(Lab28Error) as err:
        write_sweep_report(tmp_path, make_study())
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'repeats.json'}: ") and fragment in message and "\n" not in message
    assert not (tmp_path / "report.md").exists() and not (tmp_path / "figures").exists()


@pytest.mark.parametrize("write, fragment", [
    (lambda d: None, "not a sweep folder (no sweep.json)"),
    (lambda d: (d / "sweep.json").write_text("{not json"), "sweep.json: unreadable"),
    (lambda d: write_sweep_json(d, direction="up"), "direction must be maximize or minimize"),
    (lambda d: write_sweep_json(d, space=[{"path": "model.head", "kind": "categorical"}]),
     "space[0]: model.head: choices must be a non-empty list"),
    (lambda d: write_sweep_json(d, trials="30"), "trials must be a number, found a string"),
    (lambda d: write_sweep_json(d, direction="minimize"), "it is set to maximize, sweep.json says minimize"),
    (lambda d: write_sweep_json(d, space=[{**SPACE[2], "kind": "float", "low": 0, "high": 1}]),
     "trial 0 tried model.head = 'flat', but sweep.json's space says float"),
    (lambda d: write_sweep_json(d, space=[{**SPACE[1], "low": 0}]), "space[0]: task.lam: a log range needs low > 0"),
])
def test_a_missing_or_garbled_sweep_json_is_refused_in_one_line(tmp_path, write, fragment):
    write(tmp_path)
    with pytest.raises(Lab28Error) as err:
        write_sweep_report(tmp_path, make_study())
    assert fragment in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "report.md").exists()
