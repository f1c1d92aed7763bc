"""Exploration figures for a GSN data set: class occurrence, examples, and the same examples augmented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lab28.errors import Lab28Error
from lab28.workloads.gsn.augment import GSNAugment, GSNAugmentConfig
from lab28.workloads.gsn.labels import NUM_CLASSES, NUM_PAIRS, SHAPES, SPLITS_PER_PAIR, encode_counts, pair_name
from lab28.io_utils import ensure_folder
from lab28.plotting import plt, save

SHORT = {"squares": "sq", "circles": "ci", "up": "up", "right": "ri", "down": "dn", "left": "le"}


def counts_title(counts) -> str:
    return " ".join(f"{SHORT[SHAPES[k]]}{int(c)}" for k, c in enumerate(counts) if c > 0)


def plot_class_occurrence(classes: torch.Tensor, path: Path, source: str) -> None:
    """Bar per class over all 135; absent classes are marked so that they stay visible."""
    hist = torch.bincount(classes, minlength=NUM_CLASSES).numpy()
    fig, ax = plt.subplots(figsize=(16, 4.5))
    colors = [f"C{(k // SPLITS_PER_PAIR) % 10}" for k in range(NUM_CLASSES)]
    ax.bar(np.arange(NUM_CLASSES), hist, color=colors, width=0.85)
    absent = np.nonzero(hist == 0)[0]
    ax.scatter(absent, np.zeros_like(absent), marker="x", color="red", s=14, zorder=3,
               label=f"absent classes ({len(absent)})")
    ax.set_xticks([p * SPLITS_PER_PAIR + 4 for p in range(NUM_PAIRS)],
                  [pair_name(p) for p in range(NUM_PAIRS)], rotation=45, ha="right", fontsize=8)
    ax.set_xlim(-1, NUM_CLASSES)
    ax.set(ylabel="images", title=f"Class occurrence over the 135 classes ({len(classes)} images, {source}); "
           "within a pair, count of the first type 1..9")
    ax.legend()
    save(fig, path)


def plot_examples(images: torch.Tensor, counts: torch.Tensor, path: Path, title: str) -> None:
    n = images.shape[0]
    cols = min(8, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.6, rows * 2.0), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < n:
            ax.imshow(images[k, 0].float().numpy(), cmap="gray", vmin=0, vmax=1 if images.is_floating_point() else 255)
            ax.set_title(counts_title(counts[k].tolist()), fontsize=8)
    fig.suptitle(title, fontsize=10)
    save(fig, path)


def show_gsn(root: str | None, synth: bool, out_dir: str | Path, n: int = 16, seed: int = 0,
             overwrite: bool = False, augment: GSNAugmentConfig | None = None) -> list[Path]:
    from lab28.workloads.gsn.loader import load_gsn

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        ensure_folder(out_dir)  # the one-line error, before any data is read
    names = ("class_occurrence.png", "examples.png", "examples_augmented.png")
    existing = [name for name in names if (out_dir / name).exists()]
    if existing and not overwrite:
        raise Lab28Error(f"{out_dir}: already holds {', '.join(existing)} (use --overwrite to replace)")
    if synth:
        from lab28.workloads.gsn.synth import generate

        imgs, counts = generate(2000, seed=seed)
        images, counts, source = torch.from_numpy(imgs).unsqueeze(1), torch.from_numpy(counts), "synthetic"
    else:
        data = load_gsn(root)
        images, counts, source = data.images, data.counts, str(root)
    if n < 1:
        raise Lab28Error(f"--n must be at least 1, got {n}")
    ensure_folder(out_dir)
    gen = torch.Generator().manual_seed(seed)
    pick = torch.randperm(images.shape[0], generator=gen)[:n]
    plot_class_occurrence(encode_counts(counts), out_dir / names[0], source)
    plot_examples(images[pick], counts[pick], out_dir / names[1], "Examples (title: counts; sq ci up ri dn le)")
    cfg = augment or GSNAugmentConfig(hflip=0.5, vflip=0.5, rot90=0.5, brightness_contrast=0.3, noise=0.3, erase=0.3)
    aug_imgs, aug_counts = GSNAugment(cfg)(images[pick].float() / 255, counts[pick], gen)
    plot_examples(aug_imgs.clamp(0, 1), aug_counts, out_dir / names[2],
                  "The same examples augmented (flips, quarter turns, brightness/contrast, noise, erasing): updated counts")
    return [out_dir / name for name in names]
