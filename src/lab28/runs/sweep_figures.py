"""Figures of a sweep report, drawn from the study's trials and sweep.json's space only (never by re-training):
optimisation history, parameter importances, slices, parallel coordinates and learning curves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import LogLocator, NullFormatter, StrMethodFormatter
from optuna.trial import FrozenTrial, TrialState

from lab28.plotting import epoch_axis, plt, save
from lab28.runs.sweep_files import Param, SweepFiles

STATE_STYLE = {TrialState.COMPLETE: dict(color="tab:blue", ls="-", label="complete"),
               TrialState.PRUNED: dict(color="tab:orange", ls="--", label="pruned"),
               TrialState.RUNNING: dict(color="0.6", ls=":", label="running")}
LABEL_BOX = dict(facecolor="white", edgecolor="none", pad=1, alpha=0.85)  # axis labels stay legible over the lines


def reached(trial: FrozenTrial) -> float | None:
    """The objective a trial reached: its value, or for a pruned one the last epoch it reported."""
    if trial.value is not None:
        return trial.value
    steps = trial.intermediate_values
    return steps[max(steps)] if steps else None


def position(param: Param, value) -> float:
    """Where a value sits on its parameter's axis: the number itself, or a categorical choice's index."""
    if param.kind == "categorical":
        return float(param.choices.index(value)) if value in param.choices else np.nan
    return float(value)


def scaled(param: Param, value) -> float:
    """A value scaled to [0, 1] across its parameter's range (on a log scale for log parameters)."""
    x = position(param, value)
    if param.kind == "categorical":
        return x / (len(param.choices) - 1) if len(param.choices) > 1 else 0.5
    low, high = param.low, param.high
    if param.log and low > 0 and x > 0:
        x, low, high = np.log(x), np.log(low), np.log(high)
    return (x - low) / (high - low) if high > low else 0.5


def _categorical_ticks(ax, param: Param, axis: str = "x") -> None:
    set_ticks = ax.set_xticks if axis == "x" else ax.set_yticks
    set_ticks(range(len(param.choices)), [str(c) for c in param.choices])


def plot_history(files: SweepFiles, path: Path) -> None:
    """Objective per trial number: complete trials as dots, pruned ones as crosses, and the best so far."""
    fig, ax = plt.subplots(figsize=(8, 4))
    for state, marker in ((TrialState.COMPLETE, "o"), (TrialState.PRUNED, "x")):
        points = [(t.number, reached(t)) for t in files.with_state(state) if reached(t) is not None]
        if points:
            x, y = zip(*points)
            ax.scatter(x, y, marker=marker, color=STATE_STYLE[state]["color"], label=STATE_STYLE[state]["label"],
                       zorder=3)
    complete = files.with_state(TrialState.COMPLETE)
    if complete:
        pick = max if files.maximize else min
        best, steps = [], []
        for t in complete:
            best.append(pick(t.value, best[-1]) if best else t.value)
            steps.append(t.number)
        steps.append(max(t.number for t in files.trials))  # the line runs on to the last trial
        ax.step(steps, best + best[-1:], where="post", color="black", label="best so far")
    ax.set(xlabel="trial", ylabel=files.sweep["objective"],
           title=f"Optimisation history ({files.sweep['direction']} {files.sweep['objective']})")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1))  # outside: no trial's dot hides under it
    save(fig, path)


def plot_importances(importances: dict[str, float], objective: str, path: Path) -> None:
    """Horizontal bars, the most important parameter on top."""
    names = list(importances)[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(names) + 1.5))
    ax.barh(names, [importances[n] for n in names], color="tab:blue")
    ax.set(xlabel="importance (the parameters' importances sum to 1)", xlim=(0, 1),
           title=f"Which parameters move {objective}")
    save(fig, path)


def plot_slices(files: SweepFiles, path: Path) -> None:
    """The objective against each parameter, one panel per parameter, complete trials coloured by trial number
    (early exploration versus later exploitation)."""
    trials = files.with_state(TrialState.COMPLETE)
    cols = min(4, len(files.space))
    rows = -(-len(files.space) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3 * rows), squeeze=False, sharey=True,
                             layout="constrained")
    jitter = np.random.default_rng(0)  # spreads the dots of one categorical choice; seeded: the same figure each time
    for ax, param in zip(axes.flat, files.space):
        shown = [t for t in trials if param.path in t.params]
        x = np.array([position(param, t.params[param.path]) for t in shown])
        if param.kind == "categorical":
            x = x + jitter.uniform(-0.12, 0.12, len(x))
            _categorical_ticks(ax, param)
            ax.set_xlim(-0.5, len(param.choices) - 0.5)
        elif param.log:  # ticks at 1, 2, 5 per decade, written plainly: a range such as 0.3-10 has one decade tick
            ax.set_xscale("log")
            ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
            ax.xaxis.set_major_formatter(StrMethodFormatter("{x:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        dots = ax.scatter(x, [t.value for t in shown], c=[t.number for t in shown], cmap="viridis", s=18,
                          vmin=0, vmax=max(t.number for t in files.trials))
        ax.set_xlabel(param.path)
    for ax in axes.flat[len(files.space):]:
        ax.set_visible(False)
    for ax in axes[:, 0]:
        ax.set_ylabel(files.sweep["objective"])
    fig.colorbar(dots, ax=axes, label="trial", shrink=0.8)
    fig.suptitle("Objective against each parameter (complete trials)")
    save(fig, path, layout=False)


def plot_parallel(files: SweepFiles, path: Path) -> None:
    """Each complete trial a line across the objective and the parameters (each scaled to [0, 1] over its range),
    coloured by the objective; the best trials are drawn last, on top."""
    trials = files.ranked()[::-1]
    values = np.array([t.value for t in trials])
    low, high = values.min(), values.max()
    norm = plt.Normalize(low, high if high > low else low + 1)
    cmap = plt.get_cmap("viridis" if files.maximize else "viridis_r")  # the best trials are yellow either way
    n = len(files.space) + 1
    fig, ax = plt.subplots(figsize=(max(6, 1.8 * n), 4.5))
    for t, value in zip(trials, values):
        y = [norm(value) if high > low else 0.5]
        y += [scaled(p, t.params[p.path]) if p.path in t.params else np.nan for p in files.space]
        ax.plot(range(n), y, color=cmap(norm(value)), alpha=0.8, lw=1.2)
    labels = [f"{v:.4g}" for v in (low, high)]
    ends = [(files.sweep["objective"], *labels)]
    for p in files.space:
        if p.kind == "categorical":
            for choice in p.choices:
                ax.text(len(ends), scaled(p, choice), str(choice), fontsize=7, ha="center", va="center", bbox=LABEL_BOX)
            ends.append((p.path, "", ""))
        else:
            ends.append((p.path + (" (log)" if p.log else ""), f"{p.low:.4g}", f"{p.high:.4g}"))
    for k, (name, bottom, top) in enumerate(ends):
        ax.axvline(k, color="0.3", lw=0.8)
        ax.text(k, -0.06, bottom, ha="center", va="top", fontsize=7, bbox=LABEL_BOX)
        ax.text(k, 1.06, top, ha="center", va="bottom", fontsize=7, bbox=LABEL_BOX)
    ax.set_xticks(range(n), [name for name, _, _ in ends], rotation=15, fontsize=8)
    ax.set(ylim=(-0.15, 1.15), yticks=[], xlim=(-0.3, n - 0.7),
           title="Parallel coordinates (complete trials)\neach axis from its lowest to its highest value")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label=files.sweep["objective"])
    save(fig, path)


def plot_learning_curves(files: SweepFiles, path: Path) -> None:
    """The objective per epoch of every trial; pruned ones dashed, so the pruner's cuts show; the best trial bold."""
    fig, ax = plt.subplots(figsize=(8, 4.5))
    ranked = files.ranked()
    best = ranked[0] if ranked else None
    for t in files.trials:
        style = STATE_STYLE.get(t.state)
        if style is None or not t.intermediate_values or t is best:
            continue
        steps = sorted(t.intermediate_values)
        pruned = t.state == TrialState.PRUNED  # on top, a cross where the pruner stopped it: the figure's point
        ax.plot(steps, [t.intermediate_values[s] for s in steps], color=style["color"], ls=style["ls"], alpha=0.6,
                lw=1.4 if pruned else 1, zorder=3 if pruned else 2)
        if pruned:
            ax.scatter(steps[-1:], [t.intermediate_values[steps[-1]]], marker="x", color=style["color"], zorder=3)
    handles = [Line2D([], [], **style) for state, style in STATE_STYLE.items() if files.with_state(state)]
    if best is not None and best.intermediate_values:
        steps = sorted(best.intermediate_values)
        ax.plot(steps, [best.intermediate_values[s] for s in steps], color="black", lw=2.2)
        handles.append(Line2D([], [], color="black", lw=2.2, label=f"best (trial {best.number})"))
    ax.set(ylabel=files.sweep["objective"], title="Learning curves: the objective per epoch of every trial")
    epoch_axis(ax)
    ax.legend(handles=handles)
    save(fig, path)
