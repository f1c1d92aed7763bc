"""CLI flags for a GSN run, one per config field, generated from the config dataclasses.

Each flag defaults to None ("take the preset's value"); --help shows the lab preset's value and the unit.
"""

from __future__ import annotations

import argparse

from lab28.config_io import add_config_flags, apply_config_flags
from lab28.workloads.gsn.config import GSNRunConfig, preset
from lab28.train.config import TRAIN_FLAGS

# flag -> (config path, help text with unit). The flag names are the field names; `--data` is data.path.
FLAGS: dict[str, tuple[str, str]] = {
    "data": ("data.path", "GSN data folder (labels.csv + PNGs, or its parent); omit for synthetic data"),
    "synth-n": ("data.synth_n", "synthetic images to generate when no --data is given (images)"),
    "synth-seed": ("data.synth_seed", "seed of the synthetic data"),
    "val-size": ("data.val_size", "validation rows, taken from the end of labels.csv (images)"),
    "train-size": ("data.train_size", "use only the first N training rows, 0 = all (images)"),
    "model": ("model.name", "model name from the registry"),
    "head": ("model.head", "classification head: factored | flat"),
    "dropout": ("model.dropout", "dropout on the 256 backbone features (probability)"),
    "fc-init": ("model.fc_init", "start weights of the backbone Linear: default | pooled (sum-pool) | centered "
                                 "(on the training data) | pooled-centered"),
    "batchnorm": ("model.batchnorm", "BatchNorm1d on the 256 features before the heads (true/false)"),
    "hidden": ("model.hidden", "units of a hidden layer before both heads (0 = none)"),
    "setting": ("task.setting", "cls | reg | joint"),
    "lam": ("task.lam", "weight λ of the SmoothL1 count loss in the joint setting"),
    "hflip": ("augment.hflip", "horizontal-flip probability per image"),
    "vflip": ("augment.vflip", "vertical-flip probability per image"),
    "rot90": ("augment.rot90", "90-degree-turn probability per image (direction random)"),
    "brightness-contrast": ("augment.brightness_contrast", "brightness/contrast-change probability per image"),
    "noise": ("augment.noise", "Gaussian-noise probability per image"),
    "noise-variance": ("augment.noise_variance", "noise variance as a fraction of the max pixel value"),
    "erase": ("augment.erase", "random-erasing probability per image"),
}
FLAGS.update(TRAIN_FLAGS)  # epochs, batch size, optimizer, ... shared with every workload


def add_run_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    add_config_flags(parser, {k: v for k, v in FLAGS.items() if k not in skip}, preset("lab"), "lab")


def apply_run_flags(cfg: GSNRunConfig, args: argparse.Namespace) -> GSNRunConfig:
    return apply_config_flags(cfg, args, FLAGS)
