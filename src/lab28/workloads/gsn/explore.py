"""Exploration figures for a GSN data set: class occurrence, examples, and the same examples augmented."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lab28.errors import Lab28Error
from lab28.workloads.gsn.augment import GSNAugment, GSNAugmentConfig
from lab28.workloads.gsn.captions import augment_title, counts_legend, counts_text
from lab28.workloads.gsn.labels import NUM_CLASSES, NUM_PAIRS, SPLITS_PER_PAIR, encode_counts, pair_name
from lab28.io_utils import ensure_folder
from lab28.plotting import image_grid, plt, save


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
    """Images (N x 1 x 28 x 28, uint8 or floats in [0, 1]) captioned with their counts."""
    vmax = 1 if images.is_floating_point() else 255
    image_grid(images[:, 0].float().numpy(), [counts_text(c) for c in counts.tolist()], path, title, cols=8,
               vmax=vmax)


def augment_config(preset_name: str = "lab", config_path: str | Path | None = None) -> GSNAugmentConfig:
    """The augmentation of a preset, or of a config.json (such as a run's); one-line error for a bad file."""
    from lab28.config_io import load_config_file
    from lab28.workloads.gsn.config import config_from_dict, preset

    if config_path is None:
        return preset(preset_name).augment
    augment = load_config_file(config_path, config_from_dict).augment
    try:
        augment.validate()
    except ValueError as exc:
        raise Lab28Error(f"{config_path}: bad config file: {exc}") from None
    return augment


def show_gsn(root: str | None, synth: bool, out_dir: str | Path, n: int = 16, seed: int = 0,
             overwrite: bool = False, augment: GSNAugmentConfig | None = None) -> list[Path]:
    """class_occurrence.png, examples.png and examples_augmented.png: the same examples under `augment` (default:
    the lab preset's augmentation, which is what training applies)."""
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
    plot_examples(images[pick], counts[pick], out_dir / names[1],
                  f"Examples, captioned with their counts ({counts_legend()})")
    cfg = augment or augment_config()
    aug_imgs, aug_counts = GSNAugment(cfg)(images[pick].float() / 255, counts[pick], gen)
    plot_examples(aug_imgs.clamp(0, 1), aug_counts, out_dir / names[2],
                  f"The same examples as training augments them: {augment_title(cfg)}")
    return [out_dir / name for name in names]
