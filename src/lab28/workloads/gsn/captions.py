"""The short words GSN figures use: counts as "3□ 7○", a setting in plain words, an augmentation config in words."""

from __future__ import annotations

import math

from lab28.plotting import drawable
from lab28.workloads.gsn.augment import GSNAugmentConfig

# One mark per shape column (squares, circles, up, right, down, left): the triangles point where their apex does.
GLYPHS = ("□", "○", "▲", "▶", "▼", "◀")
LETTERS = ("S", "C", "U", "R", "D", "L")  # for a figure font without those glyphs
SETTING_WORDS = {"cls": "classification only", "reg": "regression only", "joint": "joint"}


def shape_marks() -> tuple[str, ...]:
    """GLYPHS where the figures' font draws them all, else LETTERS (a box for each glyph would say nothing)."""
    return GLYPHS if drawable("".join(GLYPHS)) == "".join(GLYPHS) else LETTERS


def counts_text(counts) -> str:
    """The non-zero counts of one image as e.g. "3□ 7○" (rounded, so predicted counts read the same way)."""
    marks = shape_marks()
    if not all(math.isfinite(float(c)) for c in counts):  # a diverged count head
        return "not a number"
    rounded = [int(round(float(c))) for c in counts]
    return " ".join(f"{c}{marks[k]}" for k, c in enumerate(rounded) if c > 0) or "all 0"


def counts_legend() -> str:
    """What the marks mean, for a figure's title."""
    return ", ".join(f"{m} {name}" for m, name in zip(shape_marks(), ("squares", "circles", "up", "right", "down",
                                                                       "left")))


def setting_title(setting: str, lam: float) -> str:
    """A run's setting in words, with λ where the count loss is weighted: "joint, λ = 3"."""
    words = SETTING_WORDS.get(setting, setting)
    return f"{words}, λ = {lam:g}" if setting == "joint" else words


def augment_title(cfg: GSNAugmentConfig) -> str:
    """What an augmentation config applies, in words: "flips and quarter turns (each p = 0.5), counts permuted"."""
    geometry = [name for name, p in (("horizontal flips", cfg.hflip), ("vertical flips", cfg.vflip),
                                     ("quarter turns", cfg.rot90)) if p > 0]
    photometric = [name for name, p in (("brightness/contrast", cfg.brightness_contrast), ("noise", cfg.noise),
                                        ("erasing", cfg.erase)) if p > 0]
    if cfg.hflip > 0 and cfg.vflip > 0:
        geometry[:2] = ["flips"]
    probabilities = {p for p in (cfg.hflip, cfg.vflip, cfg.rot90, cfg.brightness_contrast, cfg.noise, cfg.erase)
                     if p > 0}
    if not probabilities:
        return "no augmentation"
    items = geometry + photometric
    if len(probabilities) > 1:
        chance = "each with its own p"
    else:
        chance = ("each " if len(items) > 1 else "") + f"p = {probabilities.pop():g}"
    text = items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
    return f"{text} ({chance})" + (", counts permuted" if geometry else "")
