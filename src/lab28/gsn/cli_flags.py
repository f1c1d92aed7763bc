"""CLI flags for a GSN run, one per config field, generated from the config dataclasses.

Each flag defaults to None ("take the preset's value"); --help shows the lab preset's value and the unit.
"""

from __future__ import annotations

import argparse

from lab28.config_io import get_path, parse_bool, set_path
from lab28.gsn.config import GSNRunConfig, preset

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
    "fc-init": ("model.fc_init", "start weights of the backbone Linear: default | pooled (global sum-pool)"),
    "setting": ("task.setting", "cls | reg | joint"),
    "lam": ("task.lam", "weight λ of the SmoothL1 count loss in the joint setting"),
    "hflip": ("augment.hflip", "horizontal-flip probability per image"),
    "vflip": ("augment.vflip", "vertical-flip probability per image"),
    "rot90": ("augment.rot90", "90-degree-turn probability per image (direction random)"),
    "brightness-contrast": ("augment.brightness_contrast", "brightness/contrast-change probability per image"),
    "noise": ("augment.noise", "Gaussian-noise probability per image"),
    "noise-variance": ("augment.noise_variance", "noise variance as a fraction of the max pixel value"),
    "erase": ("augment.erase", "random-erasing probability per image"),
    "epochs": ("train.epochs", "maximum epochs"),
    "batch-size": ("train.batch_size", "training batch size (images)"),
    "eval-batch-size": ("train.eval_batch_size", "evaluation batch size (images)"),
    "optimizer": ("train.optimizer", "adam | adamw"),
    "lr": ("train.lr", "learning rate"),
    "weight-decay": ("train.weight_decay", "weight decay"),
    "seed": ("train.seed", "torch.manual_seed for weights, shuffling and augmentation"),
    "device": ("train.device", "auto | cpu | cuda | cuda:N | mps"),
    "precision": ("train.precision", "auto | fp32 | bf16 | fp16"),
    "channels-last": ("train.channels_last", "channels_last memory format (true/false)"),
    "compile": ("train.compile", "torch.compile the model (true/false)"),
    "threads": ("train.threads", "CPU threads, 0 = torch's default"),
    "monitor": ("train.early_stopping.monitor", "metric watched by early stopping"),
    "mode": ("train.early_stopping.mode", "min | max"),
    "patience": ("train.early_stopping.patience", "epochs without improvement before stopping"),
    "min-delta": ("train.early_stopping.min_delta", "smallest change that counts as an improvement"),
}


def add_run_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    lab = preset("lab")
    group = parser.add_argument_group("run configuration (default: the preset's value; shown: lab preset)")
    for flag, (path, text) in FLAGS.items():
        if flag in skip:
            continue
        default = get_path(lab, path)
        kind = parse_bool if isinstance(default, bool) else type(default)
        group.add_argument(f"--{flag}", type=kind, default=None, help=f"{text} [lab: {default!r}]")


def apply_run_flags(cfg: GSNRunConfig, args: argparse.Namespace) -> GSNRunConfig:
    for flag, (path, _) in FLAGS.items():
        value = getattr(args, flag.replace("-", "_"), None)
        if value is not None:
            set_path(cfg, path, value)
    return cfg


