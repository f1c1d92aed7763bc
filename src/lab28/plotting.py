"""Matplotlib set-up shared by all figures: a non-interactive backend and atomic saving."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # figures are files; never open a window (and work on machines without a display)

import matplotlib.pyplot as plt  # noqa: E402

from lab28.io_utils import atomic_savefig  # noqa: E402


def save(fig, path, dpi: int = 120) -> None:
    fig.tight_layout()
    atomic_savefig(fig, path, dpi=dpi)
    plt.close(fig)


__all__ = ["plt", "save"]
