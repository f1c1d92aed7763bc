"""The report of a hyper-parameter sweep folder, from its files and the Optuna study only (never by re-training).

report.md, top to bottom: the title; the summary (objective and direction, how many trials ended how, the best
trial, its params and the command that re-runs it, and with repeats.json the verdict: is the best configuration's
lead over the preset larger than the seed-to-seed spread); a table of contents; the best trials; the optimisation
history; parameter importances; slices and parallel coordinates; learning curves; the repeats; the search space;
the failed trials. report.html beside it is the same page with the figures inlined. Everything is read and checked
(lab28.runs.sweep_files) and the importances computed before the first file is written.
"""

from __future__ import annotations

import shlex
import warnings
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from lab28.html_report import write_html_report
from lab28.io_utils import atomic_write_text
from lab28.runs import sweep_figures as figures
from lab28.runs.report import table_of_contents
from lab28.runs.sweep_files import RepeatGroup, SweepFiles, read_sweep

TOP_TRIALS = 10


def write_sweep_report(sweep_dir: Path, study) -> Path:
    """Write report.md, report.html and figures/*.png of a sweep folder; returns report.md's path."""
    files = read_sweep(sweep_dir, study)
    importances, importance_note = param_importances(files, study)
    out = files.folder / "figures"
    out.mkdir(exist_ok=True)
    title = f"# Sweep `{files.sweep['study']}`: {files.sweep['objective']} on {files.sweep['dataset']}"
    lines = [title, "", "## Summary", "", *summary(files), ""]
    body = [*best_trials_section(files), *figure_sections(files, out, importances, importance_note),
            *repeats_section(files), *space_section(files), *failed_section(files)]
    lines += table_of_contents(lines + body) + body
    path = files.folder / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    write_html_report(path)
    return path


def param_importances(files: SweepFiles, study) -> tuple[dict[str, float] | None, str]:
    """Optuna's parameter importances over the complete trials, or None and the one line that says why not."""
    complete = files.with_state(TrialState.COMPLETE)
    if len(complete) < 2:
        return None, f"Parameter importances need at least 2 complete trials; this sweep has {len(complete)}."
    varying = [p.path for p in files.space if len({repr(t.params.get(p.path)) for t in complete}) > 1]
    if not varying:
        return None, "No parameter took more than one value in the complete trials: there is nothing to rank."
    if len({t.value for t in complete}) < 2:
        return None, "Every complete trial reached the same objective: no parameter explains any of it."
    try:
        with warnings.catch_warnings():  # "few trials" warnings: the line under the figure says how many there were
            warnings.simplefilter("ignore")
            importances = optuna.importance.get_param_importances(study, params=varying)
    except (ValueError, RuntimeError) as exc:
        return None, f"Optuna could not compute parameter importances: {str(exc).splitlines()[0]}"
    return importances, f"From {len(complete)} complete trials; with few trials the ranking is rough."


# --- formatting ---------------------------------------------------------------------------------------------------

def value_text(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def params_text(params: dict) -> str:
    return ", ".join(f"`{path} = {value_text(value)}`" for path, value in params.items()) or "the preset's values"


def run_link(trial: FrozenTrial) -> str:
    run = trial.user_attrs.get("run")
    return f"[{run}]({run})" if run else "–"


def rerun_command(files: SweepFiles, trial: FrozenTrial) -> str | None:
    """The command that trains the trial's configuration again (its run folder's config.json is complete)."""
    run = trial.user_attrs.get("run")
    if not run:
        return None
    config = files.folder / run / "config.json"
    return f"lab28 train {shlex.quote(files.sweep['dataset'])} --config {shlex.quote(str(config))}"


def mean_std(group: RepeatGroup) -> tuple[float, float, int]:
    """Mean and sample standard deviation over the group's finished seeds (nan where too few), and their number."""
    values = group.finished
    mean = float(values.mean()) if len(values) else np.nan
    return mean, float(values.std(ddof=1)) if len(values) > 1 else np.nan, len(values)


def mean_std_text(group: RepeatGroup) -> str:
    mean, std, n = mean_std(group)
    if n == 0:
        return "no finished run"
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    return f"{mean:.4g} ± {std:.2g} ({seeds})" if n > 1 else f"{mean:.4g} ({seeds})"


def seed_verdict(group: RepeatGroup, preset: RepeatGroup, maximize: bool) -> str:
    """Whether the group's lead over the preset is larger than the spread between seeds: the larger of the two
    standard deviations."""
    (mean, std, n), (base, base_std, base_n) = mean_std(group), mean_std(preset)
    if min(n, base_n) < 2:
        return f"{group.label} against the preset: too few finished seeds to measure the spread"
    lead, spread = mean - base, max(std, base_std)
    if abs(lead) <= spread:
        verdict = "inside the seed-to-seed noise"
    else:
        verdict = f"{'ahead of' if (lead > 0) == maximize else 'behind'} the preset by more than the spread"
    return f"{group.label} against the preset: {lead:+.3g} (spread {spread:.2g}), {verdict}"


# --- sections -----------------------------------------------------------------------------------------------------

def summary(files: SweepFiles) -> list[str]:
    sweep = files.sweep
    better = "higher" if files.maximize else "lower"
    counts = [f"{len(files.with_state(state))} {word}" for state, word in (
        (TrialState.COMPLETE, "complete"), (TrialState.PRUNED, "pruned"), (TrialState.FAIL, "failed"),
        (TrialState.RUNNING, "running"))]
    if files.with_state(TrialState.WAITING):  # enqueued, not started: only worth a word when there are some
        counts.append(f"{len(files.with_state(TrialState.WAITING))} waiting")
    lines = [f"- **Objective**: `{sweep['objective']}` ({sweep['direction']}: {better} is better), each trial's value "
             f"at its best epoch.",
             f"- **Trials**: {len(files.trials)} of {value_text(sweep['trials'])} started: {', '.join(counts)}."]
    ranked = files.ranked()
    if not ranked:
        lines.append("- **Best trial**: none yet; no trial has completed.")
    else:
        best = ranked[0]
        lines.append(f"- **Best trial**: {best.number}, {sweep['objective']} = {best.value:.4g}: "
                     f"{params_text(best.params)}.")
        command = rerun_command(files, best)
        lines.append(f"- **Re-run the best trial**: `{command}`" if command else
                     "- **Re-run the best trial**: the study records no run folder for it.")
    lines += repeats_summary(files)
    fixed = ", ".join(f"`{k} = {value_text(v)}`" for k, v in sweep["overrides"].items()) or "none"
    lines.append(f"- **Sweep**: study `{sweep['study']}` in `{sweep['storage']}`, preset `{sweep['preset']}`, "
                 f"fixed values {fixed}; run or continue it with `{sweep['command']}`.")
    return lines


def repeats_summary(files: SweepFiles) -> list[str]:
    if files.seeds is None:
        return []
    spread = "; ".join(f"{g.label} {mean_std_text(g)}" for g in files.groups)
    preset = next((g for g in files.groups if g.trial is None), None)
    if preset is None:
        verdicts = ["repeats.json has no preset group (trial null) to compare with"]
    else:
        verdicts = [seed_verdict(g, preset, files.maximize) for g in files.groups if g is not preset]
    return [f"- **Repeats over seeds {', '.join(map(str, files.seeds))}** (mean ± standard deviation): {spread}.",
            *(f"- **Verdict**: {v}." for v in verdicts)]


def best_trials_section(files: SweepFiles) -> list[str]:
    ranked = files.ranked()[:TOP_TRIALS]
    lines = ["## Best trials", ""]
    if not ranked:
        return lines + ["No trial has completed yet.", ""]
    paths = [p.path for p in files.space]
    lines += [f"The {len(ranked)} best complete trials by `{files.sweep['objective']}` "
              f"({'highest' if files.maximize else 'lowest'} first); epochs: how many the trial reported.", "",
              "| trial | " + " | ".join([files.sweep["objective"], *paths, "epochs", "run"]) + " |",
              "|---" * (len(paths) + 4) + "|"]
    for t in ranked:
        cells = [str(t.number), f"{t.value:.4g}", *(value_text(t.params[p]) if p in t.params else "–" for p in paths),
                 str(len(t.intermediate_values)), run_link(t)]
        lines.append("| " + " | ".join(cells) + " |")
    unknown = sorted({p for t in files.trials for p in t.params} - set(paths))
    if unknown:
        lines += ["", f"Parameters some trials tried that sweep.json's space no longer lists (not shown): "
                      f"{', '.join(f'`{p}`' for p in unknown)}."]
    return lines + [""]


def figure_sections(files: SweepFiles, out: Path, importances, importance_note: str) -> list[str]:
    """Draw the figures into `out` and return the sections that show them."""
    complete = files.with_state(TrialState.COMPLETE)
    lines = ["## Optimisation history", ""]
    if files.trials:
        figures.plot_history(files, out / "history.png")
        lines += ["![optimisation history](figures/history.png)", "",
                  "Dots: complete trials; crosses: pruned trials at the last epoch they reported; line: the best "
                  "so far.", ""]
    else:
        lines += ["The study has no trials yet.", ""]
    lines += ["## Parameter importances", ""]
    if importances is None:
        lines += [importance_note, ""]
    else:
        figures.plot_importances(importances, files.sweep["objective"], out / "importances.png")
        lines += ["![parameter importances](figures/importances.png)", "",
                  f"{importance_note} Optuna's default importance evaluator.", ""]
    lines += ["## Slices and parallel coordinates", ""]
    if complete and files.space:
        figures.plot_slices(files, out / "slices.png")
        figures.plot_parallel(files, out / "parallel.png")
        lines += ["![objective against each parameter](figures/slices.png)",
                  "![parallel coordinates](figures/parallel.png)", ""]
    else:
        lines += ["No complete trial to draw." if files.space else "sweep.json's space lists no parameter.", ""]
    lines += ["## Learning curves", ""]
    if any(t.intermediate_values for t in files.trials):
        figures.plot_learning_curves(files, out / "learning_curves.png")
        lines += ["![learning curves](figures/learning_curves.png)", "",
                  "Dashed: pruned trials, stopped where the pruner judged them unpromising.", ""]
    else:
        lines += ["No trial reported a value per epoch.", ""]
    return lines


def repeats_section(files: SweepFiles) -> list[str]:
    if files.seeds is None:
        return []
    lines = ["## Repeats", "",
             "The best configurations and the preset trained again with other seeds; a failed run shows as failed.",
             "", "| group | trial | params | " + " | ".join(f"seed {s}" for s in files.seeds) + " | mean ± std |",
             "|---" * (len(files.seeds) + 4) + "|"]
    for g in files.groups:
        values = [("failed" if g.values[s] is None else f"{g.values[s]:.4g}") if s in g.values else "–"
                  for s in files.seeds]
        trial = "–" if g.trial is None else value_text(g.trial)
        lines.append(f"| {g.label} | {trial} | {params_text(g.params)} | " + " | ".join(values)
                     + f" | {mean_std_text(g)} |")
    return lines + [""]


def space_section(files: SweepFiles) -> list[str]:
    lines = ["## Search space", "", "| parameter | kind | values |", "|---|---|---|"]
    for p in files.space:
        values = (", ".join(map(str, p.choices)) if p.kind == "categorical"
                  else f"{value_text(p.low)} to {value_text(p.high)}{' (log scale)' if p.log else ''}"
                  + (f", step {value_text(p.step)}" if p.step is not None else ""))
        lines.append(f"| {p.path} | {p.kind} | {values} |")
    return lines + [""]


def failed_section(files: SweepFiles) -> list[str]:
    failed = files.with_state(TrialState.FAIL)
    if not failed:
        return []
    lines = ["## Failed trials", "", "| trial | error | run |", "|---|---|---|"]
    for t in failed:
        error = t.user_attrs.get("error")
        error = error.splitlines()[0] if isinstance(error, str) and error.strip() else "no error recorded"
        lines.append(f"| {t.number} | {error.replace('|', '/')} | {run_link(t)} |")
    return lines + [""]
