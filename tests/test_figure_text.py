"""What the figures say: whole-epoch ticks, GSN counts and settings in plain words, the augmentation in words."""

import numpy as np
import pytest

from lab28.plotting import epoch_axis, plt
from lab28.workloads.gsn.augment import GSNAugmentConfig
from lab28.workloads.gsn.captions import GLYPHS, LETTERS, augment_title, counts_text, setting_title, shape_marks
from lab28.workloads.gsn.config import preset


@pytest.mark.parametrize("epochs", [1, 3, 7, 40])
def test_epoch_axes_tick_whole_epochs(epochs):
    fig, ax = plt.subplots()
    ax.plot(np.arange(1, epochs + 1), np.linspace(1, 0, epochs))
    epoch_axis(ax)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    plt.close(fig)
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_xlabel() == "epoch"


def test_without_integer_ticks_a_3_epoch_plot_has_fractions():
    """The reason for epoch_axis: matplotlib's own ticks of a 3-epoch plot are 1.00, 1.25, ..."""
    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [3, 2, 1])
    fig.canvas.draw()
    plt.close(fig)
    assert not all(float(t).is_integer() for t in ax.get_xticks())


def test_counts_read_as_marks():
    marks = shape_marks()
    assert marks in (GLYPHS, LETTERS)
    assert counts_text([3, 7, 0, 0, 0, 0]) == f"3{marks[0]} 7{marks[1]}"
    # predicted counts are rounded; below one half a shape is absent
    assert counts_text([0.2, 0, 2.6, 0, 0, 6.5]) == f"3{marks[2]} 6{marks[5]}"
    assert counts_text([0.1] * 6) == "all 0"
    assert counts_text([float("nan"), 1, 0, 0, 0, 9]) == "not a number"


def test_settings_in_words_once():
    assert setting_title("cls", 3.0) == "classification only"
    assert setting_title("reg", 3.0) == "regression only"
    assert setting_title("joint", 3.0) == "joint, λ = 3"
    assert setting_title("joint", 0.5) == "joint, λ = 0.5"


def test_data_show_takes_the_augmentation_of_a_preset_or_config(tmp_path):
    import json

    from lab28.workloads.gsn.explore import augment_config

    assert augment_config() == preset("lab").augment == augment_config("quick")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"augment": {"rot90": 0.25, "noise": 0.1}}))
    assert augment_config(config_path=path) == GSNAugmentConfig(rot90=0.25, noise=0.1)


def test_augmentation_in_words():
    assert augment_title(preset("lab").augment) == "flips and quarter turns (each p = 0.5), counts permuted"
    assert augment_title(GSNAugmentConfig()) == "no augmentation"
    assert augment_title(GSNAugmentConfig(hflip=0.5)) == "horizontal flips (p = 0.5), counts permuted"
    assert augment_title(GSNAugmentConfig(vflip=0.5, noise=0.3)) == \
        "vertical flips and noise (each with its own p), counts permuted"
    assert augment_title(GSNAugmentConfig(noise=0.3, erase=0.3)) == "noise and erasing (each p = 0.3)"
