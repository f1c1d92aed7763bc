"""Matplotlib set-up shared by all figures: a non-interactive backend, atomic saving, integer epoch axes and
grids of 28 x 28 images with captions."""

from __future__ import annotations

import functools
import re

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (and work on machines without a display)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from lab28.io_utils import atomic_savefig  # noqa: E402


@functools.lru_cache(maxsize=1)
def _font_codes() -> frozenset[int]:
    from matplotlib.font_manager import FontProperties, findfont
    from matplotlib.ft2font import FT2Font

    return frozenset(FT2Font(findfont(FontProperties())).get_charmap())


def drawable(text: str) -> str:
    """`text` without the characters the figures' font cannot draw, and without brackets that leaves empty.

    Matplotlib draws a missing glyph as a box and warns once per glyph; with the usual Latin-only default font
    a label such as "o (お)" becomes "o" (with a font that has the glyphs it stays as it is)."""
    codes = _font_codes()
    if all(c.isspace() or ord(c) in codes for c in text):
        return text
    kept = re.sub(r"\(\s*\)", "", "".join(c for c in text if c.isspace() or ord(c) in codes))
    return " ".join(kept.split()) or text  # nothing drawable at all: boxes say more than an empty label


def epoch_axis(*axes) -> None:
    """Label each x axis "epoch" and tick it at whole epochs only (a 3-epoch run would otherwise get 1.25, 1.5, ...)."""
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # a 1-epoch run: one tick, at 1


def image_grid(images: np.ndarray, captions: list[str], path, title: str, cols: int = 6,
               wrong: np.ndarray | None = None, vmax: float = 255) -> None:
    """One grey 28 x 28 image per cell with its caption above it; cells where `wrong` is True get a red caption
    and frame. Laid out by hand in inches (tight_layout lets multi-line captions run into the row above)."""
    n = len(images)
    cols = max(1, min(cols, n))
    rows = max(1, -(-n // cols))
    lines = max((c.count("\n") + 1 for c in captions), default=1)
    side, gap, line = 1.6, 0.2, 0.13  # inches: image side, space between cells, one 7-pt caption line
    cell_w, cell_h = side + gap, side + gap + line * lines
    title_h = 0.17 * (title.count("\n") + 1) + 0.15
    width, height = cols * cell_w, rows * cell_h + title_h
    fig = plt.figure(figsize=(width, height))
    for k in range(n):
        r, c = divmod(k, cols)
        ax = fig.add_axes(((c * cell_w + gap / 2) / width, (height - title_h - (r + 1) * cell_h + gap / 2) / height,
                           side / width, side / height))
        ax.set_xticks([])
        ax.set_yticks([])
        red = wrong is not None and bool(wrong[k])
        ax.imshow(images[k], cmap="gray", vmin=0, vmax=vmax)
        caption = "\n".join(drawable(text) for text in captions[k].split("\n"))
        ax.set_title(caption, fontsize=7, color="red" if red else "black", pad=3)
        for spine in ax.spines.values():
            spine.set_color("red" if red else "0.8")
            spine.set_linewidth(2.5 if red else 0.5)
    fig.suptitle(title, fontsize=9, y=1 - 0.08 / height, va="top")
    save(fig, path, layout=False)


def save(fig, path, dpi: int = 120, layout: bool = True) -> None:
    """Write the figure atomically, after tight_layout unless the caller placed everything itself."""
    if layout:
        fig.tight_layout()
    atomic_savefig(fig, path, dpi=dpi)
    plt.close(fig)


__all__ = ["drawable", "epoch_axis", "image_grid", "plt", "save"]
