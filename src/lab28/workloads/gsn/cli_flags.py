"""CLI flags for a GSN run, one per config field, generated from the config dataclasses.

Each flag defaults to None ("take the preset's value"); --help shows the lab preset's value and the unit.
"""

from __future__ import annotations

import argparse

from lab28.runs.config import checked
from lab28.augment_ops import AUGMENT_FLAGS
from lab28.config_io import add_config_flags, apply_config_flags, load_config_file
from lab28.errors import Lab28Error
from lab28.workloads.gsn.config import PRESETS, PRESETS_NEEDING_DATA, GSNRunConfig, config_from_dict, preset
from lab28.training.config import TRAIN_FLAGS

# flag -> (config path, help text with unit). The flag names are the field names; `--data` is data.path.
FLAGS: dict[str, tuple[str, str]] = {
    "data": ("data.path", "GSN data folder (labels.csv + PNGs, or its parent); omit for synthetic data"),
    "synth-n": ("data.synth_n", "synthetic images to generate when no --data is given (images)"),
    "synth-seed": ("data.synth_seed", "seed of the synthetic data"),
    "val-size": ("data.val_size", "validation rows, taken from the end of labels.csv (images)"),
    "train-size": ("data.train_size", "use only the first N training rows, 0 = all (images)"),
    "track": ("data.track", "protocol: train on the data set's training rows | synthetic: fresh synthetic images "
                            "every epoch; both validate on the data set's validation rows"),
    "synth-per-epoch": ("data.synth_per_epoch", "synthetic track: freshly generated images per epoch (images)"),
    "real-fraction": ("data.real_fraction", "synthetic track: share of each epoch's images drawn from the real "
                                            "training rows instead (fraction 0..1; 1 = real only)"),
    "synth-val-size": ("data.synth_val_size", "synthetic track: fixed synthetic images evaluated each epoch beside "
                                              "the real validation rows, for the sim-to-real gap (images)"),
    "model": ("model.name", "model name from the registry"),
    "head": ("model.head", "classification head: factored | flat"),
    "dropout": ("model.dropout", "dropout on the 256 backbone features (probability)"),
    "fc-init": ("model.fc_init", "start weights of the backbone Linear: default | pooled (sum-pool) | centered "
                                 "(on the training data) | pooled-centered"),
    "fc-lr-scale": ("model.fc_lr_scale", "learning rate of the backbone Linear as a multiple of --lr (lab backbone "
                                         "only; 1 = the same rate; AdamW's weight decay follows the rate)"),
    "batchnorm": ("model.batchnorm", "BatchNorm1d on the 256 features before the heads (true/false)"),
    "hidden": ("model.hidden", "units of a hidden layer before both heads (0 = none)"),
    "setting": ("task.setting", "cls | reg | joint"),
    "lam": ("task.lam", "weight λ of the SmoothL1 count loss in the joint setting"),
    "count-readout": ("task.count_readout", "where predicted counts come from: posterior (expected under the class "
                                            "probabilities; reg keeps its count head) | setting (the count head, "
                                            "in cls the predicted class's counts)"),
    "class-readout-weight": ("task.class_readout_weight", "joint: read the class from both heads, the argmax of log "
                                                          "p(class) - W * squared distance of the count head from the "
                                                          "class's counts (0 = the class head alone; cls and reg "
                                                          "ignore it)"),
    **AUGMENT_FLAGS,  # hflip, vflip, erase
    "rot90": ("augment.rot90", "90-degree-turn probability per image (direction random)"),
    "brightness-contrast": ("augment.brightness_contrast", "brightness/contrast-change probability per image"),
    "noise": ("augment.noise", "Gaussian-noise probability per image"),
    "noise-variance": ("augment.noise_variance", "noise variance as a fraction of the max pixel value"),
}
FLAGS.update(TRAIN_FLAGS)  # epochs, batch size, optimizer, ... shared with every workload


SUITE_LIST_KEY = "settings"  # suite.json lists the settings' runs under this key
PRESET_HELP = ("lab: the lab protocol (default); quick: a small synthetic set and few epochs; synthetic: the lab's "
               "backbone on fresh synthetic images every epoch; free: our own architecture on fresh synthetic images "
               "every epoch (docs/gsn.md)")


def add_run_flags(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()) -> None:
    add_config_flags(parser, {k: v for k, v in FLAGS.items() if k not in skip}, preset("lab"), "lab")


def apply_run_flags(cfg: GSNRunConfig, args: argparse.Namespace) -> GSNRunConfig:
    return apply_config_flags(cfg, args, FLAGS)


def _add_common(parser: argparse.ArgumentParser, skip: tuple[str, ...]) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="lab", help=PRESET_HELP)
    parser.add_argument("--synth", action="store_true", help="train on synthetic data (ignores --data)")
    parser.add_argument("--config", help="a config.json (e.g. from an earlier run) instead of a preset")
    add_run_flags(parser, skip=skip)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lab28 train gsn` (one setting); the engine adds --out, --name, --overwrite, --resume."""
    _add_common(parser, skip=())


def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lab28 suite gsn`: the three settings on one data set, then report.md."""
    _add_common(parser, skip=("setting",))
    parser.set_defaults(setting=None)


def config_from_args(args: argparse.Namespace, dataset: str = "gsn") -> GSNRunConfig:
    """Preset (or --config file), then every flag the user gave; Lab28Error for a bad combination."""
    if getattr(args, "config", None):
        cfg = load_config_file(args.config, config_from_dict)
    else:
        cfg = preset(args.preset, args.setting or "joint")
    cfg = apply_run_flags(cfg, args)
    if args.synth:
        cfg.data.path = ""
    elif args.preset in PRESETS_NEEDING_DATA and not cfg.data.path and not args.config:
        raise Lab28Error(f"the {args.preset} preset needs --data DIR (a GSN folder) or --synth for synthetic data")
    return checked(cfg)


def default_run_name(config: GSNRunConfig) -> str:
    return config.task.setting



def suite_runs(args: argparse.Namespace, config: GSNRunConfig) -> list[tuple[str, GSNRunConfig]]:
    """The three settings, each with its own early-stopping monitor."""
    from lab28.workloads.gsn.suite import SUITE_SETTINGS, setting_config

    return [(setting, setting_config(config, setting)) for setting in SUITE_SETTINGS]


def summary_line(final: dict) -> str:
    """The line `lab28 train` prints about a finished run."""
    val = final["val"]
    return f"validation top-1 {val['accuracy']:.4f}, macro F1 {val['macro_f1']:.4f}, RMSE {val['rmse']:.4f}"
