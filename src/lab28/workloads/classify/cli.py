"""CLI pieces for Fashion-MNIST (`train` one model, `suite` of three): flags and the calls behind them.

lab28.cli wires these into sub-commands. Every run flag maps to one config field, defaults to None ("take the
preset's value") and shows the `best` preset's value and the unit in --help.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lab28.errors import Lab28Error
from lab28.workloads.classify.config import PRESETS, FashionRunConfig, config_from_dict, preset
from lab28.data.specs import IDX_DATASETS
from lab28.config_io import add_config_flags, apply_config_flags, load_config_file
from lab28.workloads.classify.models import FASHION_MODELS
from lab28.train.config import TRAIN_FLAGS

# flag -> (config path, help text with unit)
FLAGS: dict[str, tuple[str, str]] = {
    "dataset": ("data.dataset", f"IDX data set: {' | '.join(IDX_DATASETS)}"),
    "data": ("data.path", "folder with the data set's IDX files, raw or .gz (default: its lab28 cache folder)"),
    "val-size": ("data.val_size", "validation images carved from train, stratified (images)"),
    "split-seed": ("data.split_seed", "seed of the train/validation split"),
    "train-size": ("data.train_size", "train on at most N images, 0 = all (images)"),
    "test-size": ("data.test_size", "evaluate on the first N test images, 0 = all (images)"),
    "evaluate-test": ("data.evaluate_test", "evaluate on t10k when present (true/false)"),
    "dropout": ("model.dropout", "dropout before the last layer (probability)"),
    "label-smoothing": ("task.label_smoothing", "CrossEntropy label smoothing (0..1)"),
    "hflip": ("augment.hflip", "horizontal-flip probability per image"),
    "vflip": ("augment.vflip", "vertical-flip probability per image"),
    "rotate": ("augment.rotate", "rotation probability per image"),
    "rotate-degrees": ("augment.rotate_degrees", "max rotation angle (degrees)"),
    "translate": ("augment.translate", "shift probability per image"),
    "translate-pixels": ("augment.translate_pixels", "max shift per axis (pixels)"),
    "erase": ("augment.erase", "random-erasing probability per image"),
    "tensorboard": ("tensorboard", "write TensorBoard event files into RUN/tensorboard (true/false)"),
}
FLAGS.update(TRAIN_FLAGS)  # epochs, batch size, optimizer, ... shared with every workload
PRESET_HELP = "seed: the seed report's recipe; best: our recipe (default); quick: 300 images, 2 epochs"


def _add_common(parser: argparse.ArgumentParser, default_name: str) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="best", help=PRESET_HELP)
    parser.add_argument("--config", help="a config.json (e.g. from an earlier run) instead of a preset")
    parser.add_argument("--out", default="runs", help="parent folder of run folders")
    parser.add_argument("--name", help=f"run folder name (default: {default_name})")
    add_config_flags(parser, FLAGS, preset("best"), "best")


def add_fashion_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `train` for one Fashion-MNIST model."""
    parser.add_argument("--model", help=f"model from the registry ({', '.join(FASHION_MODELS)}) "
                                         "[default: simple-cnn, or the --config file's]")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of that name")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run (other flags ignored)")
    _add_common(parser, "the model name")


def add_fashion_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `suite`: the three models with one recipe, then report.md."""
    parser.add_argument("--models", default=",".join(FASHION_MODELS), help="comma-separated models to compare")
    _add_common(parser, "fashion-suite-<preset>")


def config_from_args(args: argparse.Namespace, model: str | None = None) -> FashionRunConfig:
    """Preset (or --config file), then every flag the user gave; Lab28Error for a bad combination."""
    if getattr(args, "config", None):
        cfg = load_config_file(args.config, config_from_dict)
    else:
        cfg = preset(args.preset)
    if model is not None:
        cfg.model.name = model
    apply_config_flags(cfg, args, FLAGS)
    try:
        cfg.validate()
    except ValueError as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    return cfg


def _summary(final: dict) -> str:
    v, t = final["val"], final["test"]
    text = f"validation accuracy {v['accuracy']:.4f}, macro F1 {v['macro_f1']:.4f}"
    if t is not None:
        return text + f"; test accuracy {t['accuracy']:.4f}, macro F1 {t['macro_f1']:.4f}"
    return text + f"; no test result ({final['test_note']})"


def run_fashion_train_from_args(args: argparse.Namespace) -> Path:
    from lab28.workloads.classify.experiment import run_fashion
    from lab28.models import available_models

    if args.resume:
        from lab28.workloads.classify.experiment import resume_fashion

        run_dir = resume_fashion(args.resume)
    else:
        cfg = config_from_args(args, model=args.model)
        if cfg.model.name not in available_models("classify"):
            choices = ", ".join(available_models("classify"))
            raise Lab28Error(f"unknown model {cfg.model.name!r}; choose one of: {choices}")
        name = args.name if args.name is not None else cfg.model.name
        run_dir = run_fashion(cfg, args.out, name, overwrite=args.overwrite)
    final = json.loads((run_dir / "final_metrics.json").read_text())
    print(f"run folder: {run_dir}\n{_summary(final)}")
    return run_dir


def run_fashion_suite_from_args(args: argparse.Namespace) -> Path:
    from lab28.workloads.classify.suite import run_fashion_suite
    from lab28.models import available_models

    models = tuple(m.strip() for m in args.models.split(",") if m.strip())
    unknown = [m for m in models if m not in available_models("classify")]
    if not models or unknown:
        raise Lab28Error(f"--models: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(FASHION_MODELS)}")
    cfg = config_from_args(args)
    suite_dir = run_fashion_suite(cfg, args.out, name=args.name if args.name is not None else f"fashion-suite-{args.preset}",
                                  models=models,
                                  jobs=getattr(args, "jobs", 1))
    print(f"suite folder: {suite_dir}\nreport: {suite_dir / 'report.md'}")
    return suite_dir
