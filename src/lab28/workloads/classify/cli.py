"""CLI pieces of the image-classification workload (`lab28 train|suite fashion-mnist|mnist|kmnist`): its flags.

lab28.cli wires these into sub-commands. Every run flag maps to one config field, defaults to None ("take the
preset's value") and shows the `best` preset's value and the unit in --help.
"""

from __future__ import annotations

import argparse

from lab28.errors import Lab28Error
from lab28.workloads.classify.config import PRESETS, FashionRunConfig, config_from_dict, preset
from lab28.runs.config import checked
from lab28.augment_ops import AUGMENT_FLAGS
from lab28.config_io import add_config_flags, apply_config_flags, load_config_file
from lab28.models import available_models
from lab28.workloads.classify.models import FASHION_MODELS
from lab28.training.config import TRAIN_FLAGS

# flag -> (config path, help text with unit)
FLAGS: dict[str, tuple[str, str]] = {
    "data": ("data.path", "folder with the data set's IDX files, raw or .gz (default: its lab28 cache folder)"),
    "val-size": ("data.val_size", "validation images carved from train, stratified (images)"),
    "split-seed": ("data.split_seed", "seed of the train/validation split"),
    "train-size": ("data.train_size", "train on at most N images, 0 = all (images)"),
    "test-size": ("data.test_size", "evaluate on the first N test images, 0 = all (images)"),
    "evaluate-test": ("data.evaluate_test", "evaluate on t10k when present (true/false)"),
    "dropout": ("model.dropout", "dropout before the last layer (probability)"),
    "label-smoothing": ("task.label_smoothing", "CrossEntropy label smoothing (0..1)"),
    **AUGMENT_FLAGS,  # hflip, vflip, erase
    "rotate": ("augment.rotate", "rotation probability per image"),
    "rotate-degrees": ("augment.rotate_degrees", "max rotation angle (degrees)"),
    "translate": ("augment.translate", "shift probability per image"),
    "translate-pixels": ("augment.translate_pixels", "max shift per axis (pixels)"),
    "cutmix": ("augment.cutmix", "CutMix probability per image: a rectangle of another image, labels mixed by area"),
    "tensorboard": ("tensorboard", "write TensorBoard event files into RUN/tensorboard (true/false)"),
}
FLAGS.update(TRAIN_FLAGS)  # epochs, batch size, optimizer, ... shared with every workload
PRESET_HELP = ("seed: the seed report's recipe; best: our recipe (default); quick: 300 images, 2 epochs; "
               "small-resnet: the small-resnet model for 100 epochs")


SUITE_LIST_KEY = "runs"  # suite.json lists the models' runs under this key


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESETS, default="best", help=PRESET_HELP)
    parser.add_argument("--config", help="a config.json (e.g. from an earlier run) instead of a preset")
    add_config_flags(parser, FLAGS, preset("best"), "best")


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lab28 train fashion-mnist` (one model); the engine adds --out, --name, --overwrite, --resume."""
    parser.add_argument("--model", help=f"model from the registry ({', '.join(available_models('classify'))}) "
                                         "[default: the preset's (simple-cnn; small-resnet for --preset "
                                         "small-resnet), or the --config file's]")
    _add_common(parser)


def add_suite_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of `lab28 suite fashion-mnist`: several models with one recipe, then report.md."""
    parser.add_argument("--models", help="comma-separated models to compare (default: the preset's own model for "
                        f"a preset made for one, else the seed's three: {','.join(FASHION_MODELS)})")
    _add_common(parser)


def config_from_args(args: argparse.Namespace, dataset: str) -> FashionRunConfig:
    """Preset (or --config file), then every flag the user gave; Lab28Error for a bad combination."""
    if getattr(args, "config", None):
        cfg = load_config_file(args.config, config_from_dict)
    else:
        cfg = preset(args.preset)
    cfg.data.dataset = dataset  # the data set is the command's: `lab28 train kmnist`
    if getattr(args, "model", None) is not None:
        cfg.model.name = args.model
    apply_config_flags(cfg, args, FLAGS)
    return checked(cfg)


def default_run_name(config: FashionRunConfig) -> str:
    return config.model.name



def suite_runs(args: argparse.Namespace, config: FashionRunConfig) -> list[tuple[str, FashionRunConfig]]:
    """One (run name, config) per model of --models, each the suite's config with that model."""
    import copy

    from lab28.models import available_models

    from lab28.workloads.classify.config import PRESET_MODELS

    # A preset made for one model (small-resnet) compares that model; the others compare the seed's three.
    chosen = args.models if args.models is not None else ",".join(
        [PRESET_MODELS[args.preset]] if getattr(args, "preset", None) in PRESET_MODELS else FASHION_MODELS)
    models = [m.strip() for m in chosen.split(",") if m.strip()]
    unknown = [m for m in models if m not in available_models("classify")]
    if not models or unknown:
        raise Lab28Error(f"--models: unknown {', '.join(unknown) or '(none given)'}; "
                         f"choose from {', '.join(available_models('classify'))}")
    runs = []
    for model in models:
        run_config = copy.deepcopy(config)
        run_config.model.name = model
        runs.append((model, run_config))
    return runs


def summary_line(final: dict) -> str:
    """The line `lab28 train` prints about a finished run."""
    v, t = final["val"], final["test"]
    text = f"validation accuracy {v['accuracy']:.4f}, macro F1 {v['macro_f1']:.4f}"
    if t is not None:
        return text + f"; test accuracy {t['accuracy']:.4f}, macro F1 {t['macro_f1']:.4f}"
    return text + f"; no test result ({final['test_note']})"
