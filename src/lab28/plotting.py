"""Matplotlib set-up shared by all figures: a non-interactive backend and atomic saving."""

from __future__ import annotations

import functools
import re

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (and work on machines without a display)

import matplotlib.pyplot as plt  # noqa: E402

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


def save(fig, path, dpi: int = 120) -> None:
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=dpi)
    plt.close(fig)


__all__ = ["drawable", "plt", "save"]
