"""What a GSN report says about the synthetic track (lab28.workloads.gsn.synthetic_track): which runs trained on
fresh synthetic images, and how far their accuracy on synthetic images ran ahead of the real one, epoch by epoch.
Read from config.json and metrics.csv only; runs of the protocol track add nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lab28.plotting import epoch_axis, plt, save

GAP_FIGURE = "sim_to_real_gap.png"
SYNTH_COLUMN = "val_synth_accuracy"


def _track(config: dict) -> dict | None:
    data = config.get("data")
    return data if isinstance(data, dict) and data.get("track") == "synthetic" else None


def track_lines(configs: dict[str, dict]) -> list[str]:
    """One "Track: ..." line per distinct synthetic-track recipe among the runs ([] when all are protocol runs)."""
    recipes = []
    for config in configs.values():
        data = _track(config)
        if data is not None:
            line = (f"Track: synthetic ({data.get('synth_per_epoch')} fresh synthetic images per epoch, real fraction "
                    f"{data.get('real_fraction'):g}); validation on real images.")
            if line not in recipes:
                recipes.append(line)
    return [line for recipe in recipes for line in (recipe, "")]


def gap_section(finals: dict[str, dict], metrics: dict[str, dict[str, np.ndarray]], figures: Path) -> list[str]:
    """The sim-to-real gap of every synthetic-track run: a table at the best epoch and a figure per epoch."""
    runs = [name for name in finals if SYNTH_COLUMN in metrics[name]]
    if not runs:
        return []
    lines = ["## Sim-to-real gap (synthetic track)", "",
             "Top-1 on a fixed set of synthetic images beside top-1 on the real validation rows; early stopping and "
             "best.pt watched the real ones only.", "",
             "| run | best epoch | synthetic top-1 | real top-1 | gap |", "|---|---|---|---|---|"]
    for name in runs:
        best = finals[name]["best_epoch"]
        m = metrics[name]
        if best is None or not 1 <= best <= len(m["epoch"]):
            continue
        synth, real = m[SYNTH_COLUMN][best - 1], m["val_accuracy"][best - 1]
        lines.append(f"| {name} | {best} | {synth:.3f} | {real:.3f} | {synth - real:+.3f} |")
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in runs:
        m = metrics[name]
        ax.plot(m["epoch"], m[SYNTH_COLUMN] - m["val_accuracy"], label=name)
    ax.axhline(0, color="grey", linewidth=0.8)
    ax.set(ylabel="top-1 synthetic − top-1 real", title="Sim-to-real gap per epoch")
    epoch_axis(ax)
    ax.legend(fontsize=7)
    save(fig, figures / GAP_FIGURE)
    return lines + ["", f"![sim-to-real gap per epoch](figures/{GAP_FIGURE})", ""]
