"""Figures of one GSN run, drawn only from the files in its run folder (never by re-training)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from lab28.config_io import load_config_file
from lab28.workloads.gsn.captions import augment_title, counts_legend, counts_text, setting_title
from lab28.workloads.gsn.labels import (
    NUM_CLASSES, NUM_PAIRS, NUM_SHAPES, SPLITS_PER_PAIR, TOTAL_SHAPES, decode_classes, pair_name,
)
from lab28.plotting import epoch_axis, image_grid, plt, save
from lab28.runs.files import figures_folder, read_matrix, read_metrics_csv
from lab28.runs.samples import INTEGER, ROWS, SAMPLES_FILE, Column, read_samples

PAIR_LABELS = [pair_name(p) for p in range(NUM_PAIRS)]
# The GSN arrays of prediction_samples.npz beside the core ones (lab28.runs.samples).
SAMPLE_COLUMNS = {"true": Column(INTEGER, (ROWS,), 0, NUM_CLASSES - 1),
                  "pred": Column(INTEGER, (ROWS,), 0, NUM_CLASSES - 1),
                  "true_counts": Column(INTEGER, (ROWS, NUM_SHAPES), 0, TOTAL_SHAPES),
                  "pred_counts": Column("f", (ROWS, NUM_SHAPES))}
# Figures drawn from prediction_samples.npz (a run folder from before that file has neither): name, caption.
SAMPLE_FIGURES = (("misclassified.png", "misclassified validation images"),
                  ("augmentation.png", "what the run's augmentation does"))
AUGMENTED_IMAGES = 8


def plot_losses(m: dict[str, np.ndarray], path: Path, title: str = "") -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(m["epoch"], m["train_loss"], label="train")
    ax.plot(m["epoch"], m["val_loss"], label="validation")
    ax.set(ylabel="loss", title=title or "Loss per epoch")
    epoch_axis(ax)
    ax.legend()
    save(fig, path)


def plot_accuracy_rmse(m: dict[str, np.ndarray], path: Path, title: str = "") -> None:
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    a1.plot(m["epoch"], m["val_accuracy"], label="top-1")
    a1.plot(m["epoch"], m["val_pair_accuracy"], label="pair")
    a1.set(ylabel="validation accuracy", ylim=(0, 1), title="Validation accuracy")
    a1.legend()
    a2.plot(m["epoch"], m["val_rmse"], color="tab:red")
    a2.set(ylabel="count RMSE", title="Validation count RMSE")
    epoch_axis(a1, a2)
    if title:
        fig.suptitle(title)
    save(fig, path)


def plot_class_confusion(cm: np.ndarray, path: Path) -> None:
    """135 x 135 on a log colour scale, pair blocks outlined and labelled, so its structure is readable."""
    fig, ax = plt.subplots(figsize=(11, 10))
    shown = np.where(cm > 0, cm, np.nan)
    im = ax.imshow(np.log10(shown), cmap="viridis", interpolation="nearest")
    for b in range(1, NUM_PAIRS):
        ax.axhline(b * SPLITS_PER_PAIR - 0.5, color="0.7", lw=0.5)
        ax.axvline(b * SPLITS_PER_PAIR - 0.5, color="0.7", lw=0.5)
    ticks = [p * SPLITS_PER_PAIR + 4 for p in range(NUM_PAIRS)]
    ax.set_xticks(ticks, PAIR_LABELS, rotation=90, fontsize=7)
    ax.set_yticks(ticks, PAIR_LABELS, fontsize=7)
    ax.set(xlabel="predicted class (blocks: pairs; within a block: count of the first type 1..9)",
           ylabel="true class", title="Confusion matrix, 135 classes (log10 count; blank = 0)")
    fig.colorbar(im, ax=ax, shrink=0.8, label="log10(images)")
    save(fig, path)


def plot_pair_confusion(pcm: np.ndarray, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(9, 8))
    ax.imshow(pcm, cmap="Blues")
    for i in range(NUM_PAIRS):
        for j in range(NUM_PAIRS):
            if pcm[i, j]:
                ax.text(j, i, str(pcm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if pcm[i, j] > pcm.max() / 2 else "black")
    ax.set_xticks(range(NUM_PAIRS), PAIR_LABELS, rotation=90, fontsize=8)
    ax.set_yticks(range(NUM_PAIRS), PAIR_LABELS, fontsize=8)
    ax.set(xlabel="predicted pair", ylabel="true pair", title="Confusion of shape pairs (15 x 15)")
    save(fig, path)


def plot_misclassified_pairs(cm: np.ndarray, pcm: np.ndarray, path: Path) -> None:
    """Per true pair: images with the wrong pair, and with the right pair but a wrong split."""
    support = pcm.sum(axis=1)
    wrong_pair = support - np.diag(pcm)
    exact = np.array([np.trace(cm[p * 9:(p + 1) * 9, p * 9:(p + 1) * 9]) for p in range(NUM_PAIRS)])
    wrong_split = np.diag(pcm) - exact
    fig, ax = plt.subplots(figsize=(10, 4.5))
    x = np.arange(NUM_PAIRS)
    ax.bar(x, wrong_split, label="right pair, wrong counts")
    ax.bar(x, wrong_pair, bottom=wrong_split, label="wrong pair")
    for k in range(NUM_PAIRS):
        if support[k]:
            ax.text(k, wrong_split[k] + wrong_pair[k], f"{(wrong_split[k] + wrong_pair[k]) / support[k]:.0%}",
                    ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, PAIR_LABELS, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="misclassified validation images", title="Misclassified images per true shape pair (label: error rate)")
    ax.legend()
    save(fig, path)


def plot_dead_neurons(rates: np.ndarray, path: Path) -> None:
    dead = int((rates == 0).sum())
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(rates, bins=np.linspace(0, 1, 41), color="tab:purple")
    ax.set(xlabel="fraction of validation images on which the feature is active (> 0)", ylabel="features",
           title=f"Activation rates of the 256 backbone features: {dead} dead ({dead / len(rates):.0%})")
    save(fig, path)


def plot_misclassified(samples: dict[str, np.ndarray], cm: np.ndarray, path: Path, cols: int = 8) -> None:
    """The saved misclassified validation images, each captioned with its true counts, the counts of the predicted
    class and, where the run's predicted counts (its count readout: lab28.workloads.gsn.task) round to something
    else, those."""
    wrong = np.flatnonzero(samples["true"] != samples["pred"])
    pred_class_counts = decode_classes(torch.from_numpy(samples["pred"][wrong])).numpy()
    captions = []
    for k, class_counts in zip(wrong, pred_class_counts):
        lines = [f"true {counts_text(samples['true_counts'][k])}", f"pred {counts_text(class_counts)}"]
        head = counts_text(samples["pred_counts"][k])
        if head != counts_text(class_counts):
            lines.append(f"counts {head}")
        captions.append("\n".join(lines))
    total, errors = int(cm.sum()), int(cm.sum() - np.trace(cm))
    title = (f"{len(wrong)} of the {errors} misclassified validation images (of {total}); "
             f"pred: the predicted class, counts: the predicted counts, rounded\n{counts_legend()}")
    image_grid(samples["images"][wrong], captions, path, title, cols=cols)


def plot_augmentation(samples: dict[str, np.ndarray], augment, path: Path, seed: int = 0) -> None:
    """A few saved validation images as stored (top row) and as the run's augmentation turns them (bottom row),
    each captioned with its counts: geometry moves the triangles' counts with the image."""
    from lab28.workloads.gsn.augment import GSNAugment

    images = torch.from_numpy(samples["images"][:AUGMENTED_IMAGES]).float().unsqueeze(1) / 255
    counts = torch.from_numpy(samples["true_counts"][:AUGMENTED_IMAGES]).long()
    augmented, new_counts = GSNAugment(augment)(images, counts, torch.Generator().manual_seed(seed))
    shown = np.concatenate([images[:, 0].numpy(), augmented[:, 0].clamp(0, 1).numpy()])
    captions = [counts_text(c) for c in counts.tolist()] + [counts_text(c) for c in new_counts.tolist()]
    moved = np.concatenate([np.zeros(len(counts), bool), (new_counts != counts).any(dim=1).numpy()])
    title = (f"Training augmentation: {augment_title(augment)}\ntop: validation images as stored; bottom: "
             f"augmented (red: counts permuted); {counts_legend()}")
    image_grid(shown, captions, path, title, cols=max(1, len(counts)), wrong=moved, vmax=1)


def draw_run_figures(run_dir: str | Path) -> list[Path]:
    """All per-run figures into run_dir/figures (the SAMPLE_FIGURES where the run saved prediction samples);
    returns their paths."""
    from lab28.workloads.gsn.task import pair_confusion

    run_dir, out, final = figures_folder(run_dir)
    setting = setting_title(final["setting"], final.get("lam", final.get("lambda", 0)))
    title = setting if run_dir.name == final["setting"] else f"{run_dir.name}: {setting}"
    m = read_metrics_csv(run_dir / "metrics.csv")
    cm = read_matrix(run_dir / "confusion.csv")
    pcm = pair_confusion(torch.from_numpy(cm)).numpy()
    with open(run_dir / "activation_rates.csv", newline="") as fh:
        rates = np.array([float(r["rate"]) for r in csv.DictReader(fh)])
    paths = {
        "loss.png": lambda p: plot_losses(m, p, title),
        "accuracy_rmse.png": lambda p: plot_accuracy_rmse(m, p, title),
        "confusion_classes.png": lambda p: plot_class_confusion(cm, p),
        "confusion_pairs.png": lambda p: plot_pair_confusion(pcm, p),
        "misclassified_pairs.png": lambda p: plot_misclassified_pairs(cm, pcm, p),
        "dead_neurons.png": lambda p: plot_dead_neurons(rates, p),
    }
    if (run_dir / SAMPLES_FILE).exists():
        from lab28.workloads.gsn.config import config_from_dict

        samples = read_samples(run_dir / SAMPLES_FILE, SAMPLE_COLUMNS)
        augment = load_config_file(run_dir / "config.json", config_from_dict).augment
        paths["misclassified.png"] = lambda p: plot_misclassified(samples, cm, p)
        paths["augmentation.png"] = lambda p: plot_augmentation(samples, augment, p)
    for name, draw in paths.items():
        draw(out / name)
    return [out / name for name in paths]
