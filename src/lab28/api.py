"""The Python API: train, load, predict and evaluate with the same engine as the command line.

    import lab28
    run = lab28.train("gsn", preset="quick", synth=True, epochs=1)   # -> the run folder (a Path)
    model = lab28.load(run)
    model.predict(images)               # tensor/array N x 28 x 28 (0..255) or PNG paths -> one dict per image
    lab28.evaluate(run, "some/gsn/folder")["metrics"]["accuracy"]

Every function takes str or Path for folders. Errors a user can fix are one-line lab28.errors.Lab28Error. This
module imports only the standard library at load time, so `import lab28` stays fast; torch comes with the calls.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Any

__all__ = ["Model", "datasets", "evaluate", "list_models", "load", "sweep", "train"]


def datasets() -> list[str]:
    """The data sets lab28.train knows, e.g. ['gsn', 'fashion-mnist']."""
    from lab28.workloads import DATASETS

    return list(DATASETS)


def list_models(workload: str | None = None) -> list[str]:
    """Registered model names; only those of one workload ("gsn", "classify") or data set ("fashion-mnist")."""
    from lab28.errors import Lab28Error
    from lab28.models import available_models
    from lab28.workloads import DATASETS, WORKLOAD_MODULES

    if workload is None:
        return available_models()
    if workload in WORKLOAD_MODULES:
        return available_models(workload)
    if workload in DATASETS:
        return available_models(DATASETS[workload][0])
    raise Lab28Error(f"unknown workload or data set {workload!r}; choose one of: "
                     f"{', '.join([*WORKLOAD_MODULES, *DATASETS])}")


# -- training --------------------------------------------------------------------------------------------------
def _leaf_paths(tree: dict, prefix: str = "") -> list[str]:
    """Dotted paths of every value of a config dict that is not itself a section."""
    paths = []
    for key, value in tree.items():
        if isinstance(value, dict):
            paths += _leaf_paths(value, f"{prefix}{key}.")
        elif f"{prefix}{key}" not in ("workload", "preset"):  # set by the data set and the preset, never overrides
            paths.append(f"{prefix}{key}")
    return paths


# lab28.train's own parameters: a config leaf of the same name (model.name) is reached by its dotted path only.
TRAIN_PARAMETERS = ("dataset", "preset", "out", "name", "data", "synth", "overwrite")


def _valid_keys(paths: list[str], choices: dict[str, str]) -> list[str]:
    """What a user may write: each leaf's own name where it is unique, else its dotted path; the preset choices."""
    leaves = [p.rsplit(".", 1)[-1] for p in paths]
    names = {leaf if leaves.count(leaf) == 1 and leaf not in TRAIN_PARAMETERS else path
             for path, leaf in zip(paths, leaves)}
    return sorted(names | set(choices))


def _resolve_key(key: str, paths: list[str], choices: dict[str, str], dataset: str) -> str:
    """The dotted config path an override key names: a path itself, or a leaf name unique in the config."""
    from lab28.errors import Lab28Error

    if key in choices:
        return choices[key]
    if key in paths:
        return key
    matches = [p for p in paths if p.rsplit(".", 1)[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise Lab28Error(f"config key {key!r} is ambiguous for {dataset}; use one of: {', '.join(matches)}")
    valid = _valid_keys(paths, choices)
    close = difflib.get_close_matches(key, valid + paths, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise Lab28Error(f"unknown config key {key!r} for {dataset}{hint}; valid keys: {', '.join(valid)} "
                     "(or a dotted path such as train.epochs)")


def _set_path(tree: dict, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        tree = tree[part]
    tree[leaf] = os.fspath(value) if isinstance(value, os.PathLike) else value


def train_config(dataset: str, preset: str | None = None, data: str | os.PathLike | None = None, synth: bool = False,
                 **overrides):
    """(workload, config, preset name) lab28.train would run, built and checked but not run.

    Overrides are config keys: a leaf's own name where it is unique (epochs, lr, synth_n, hflip, ...) or its
    dotted path ("train.epochs"); a preset's own choices (GSN: setting; classification: model) shape the preset.
    """
    from lab28.errors import Lab28Error
    from lab28.workloads import dataset_workload, get_workload

    workload_name, selected = dataset_workload(dataset)
    workload = get_workload(workload_name)
    preset = workload.main_preset if preset is None else preset
    defaults = workload.preset(preset)  # an unknown preset is refused before any key is looked at
    paths = _leaf_paths(defaults.to_dict())
    choice_of_path = {path: choice for choice, path in workload.preset_choices.items()}
    choices: dict[str, Any] = {}
    values: dict[str, Any] = {}
    for key, value in {**selected, **overrides}.items():
        path = _resolve_key(key, paths, workload.preset_choices, dataset)
        if path in choice_of_path:
            choices[choice_of_path[path]] = value
        else:
            values[path] = value
    if "data.path" in values:  # data=DIR by another name
        if data is not None:
            raise Lab28Error("give the data folder once: data=DIR or path=DIR, not both")
        data = values.pop("data.path")
    config = workload.preset(preset, **choices)
    workload.use_data(config, preset, data=Path(data) if data is not None else None, synth=synth)
    tree = config.to_dict()
    for path, value in values.items():
        _set_path(tree, path, value)
    try:
        config = workload.config_from_dict(tree)
    except (ValueError, TypeError) as exc:
        raise Lab28Error(f"bad configuration: {exc}") from None
    workload.check_config(config)  # every value, before lab28.train loads data or makes a folder
    return workload, config, preset


def train(dataset: str, preset: str | None = None, out: str | os.PathLike = "runs", name: str | None = None, *,
          data: str | os.PathLike | None = None, synth: bool = False, overwrite: bool = False, **overrides) -> Path:
    """Train one model on a data set (see datasets()) and return its run folder (out/name, or name-2, ... if taken).

    preset: the workload's presets (GSN: lab, quick, synthetic, free; classification: best, seed, quick,
    small-resnet); default its main one (GSN lab, classification best). data: the data folder (GSN: a folder in the
    official layout; classification: the IDX files; default: the preset's, i.e. the cache for Fashion-MNIST).
    synth=True: GSN's generated images (the lab, synthetic and free presets need data or synth). name: default
    "<dataset>-<preset>". overrides: config keys, e.g. epochs=2, lr=1e-3, synth_n=200, setting="reg",
    model="gated-cnn", or dotted paths via **{"train.epochs": 2}; an unknown key is a one-line Lab28Error listing
    the valid ones.
    """
    from lab28.runs.lifecycle import train_run

    workload, config, preset = train_config(dataset, preset, data=data, synth=synth, **overrides)
    return train_run(workload, config, out, name if name is not None else f"{dataset}-{preset}", overwrite=overwrite)


def sweep(dataset: str, space, trials: int, preset: str | None = None, out: str | os.PathLike = "runs", *,
          study: str | None = None, storage: str | None = None, jobs: int = 1, pruner: str = "median",
          repeat_best: int = 0, seeds: tuple[int, ...] = (1, 2, 3), data: str | os.PathLike | None = None,
          synth: bool = False, **overrides) -> Path:
    """A hyper-parameter search (lab28 sweep) on Optuna; returns the sweep folder (out/study).

    space: a YAML or JSON file, or the same as a dict ({"params": {"model.dropout": {"type": "float", "low": 0,
    "high": 0.7}}, "objective": ..., "direction": ...}; see docs/sweeps.md). trials: how many trials the study
    holds when done (a re-run continues it). storage: an SQLAlchemy URL shared by every worker (default: SQLite in
    the sweep folder, or $LAB28_STORAGE). jobs: worker processes here. pruner: median | halving | none.
    repeat_best: re-run that many best configurations and the preset over `seeds`. overrides: config keys fixed
    for every trial, as for lab28.train (epochs=3, ...).
    """
    from lab28.runs.sweep import run_sweep
    from lab28.runs.sweep_space import read_space, space_from_dict

    workload, config, _ = train_config(dataset, preset, data=data, synth=synth, **overrides)
    search = space_from_dict(space, "space") if isinstance(space, dict) else read_space(space)
    return run_sweep(workload, dataset, config, search, trials, out, study=study, storage=storage, pruner=pruner,
                     jobs=jobs, repeat_best=repeat_best, seeds=tuple(seeds),
                     command=f"lab28.sweep({dataset!r}, ..., trials={trials})")


# -- using a finished run --------------------------------------------------------------------------------------
class Model:
    """A finished run's best weights (lab28.load). `predict` answers for new images; `torch` is the nn.Module,
    `config` the run's config, `workload` its workload's name, `run_dir` its folder."""

    def __init__(self, predictor, run_dir: Path, workload: str):
        self._predictor = predictor
        self.run_dir = run_dir
        self.workload = workload

    @property
    def torch(self):
        return self._predictor.model

    @property
    def config(self):
        return self._predictor.config

    @property
    def columns(self) -> list[str]:
        """The CSV columns `lab28 predict` writes after `file` (the same records, as cells)."""
        return self._predictor.columns

    def predict(self, images) -> list[dict]:
        """One record (dict) per image, in input order.

        images: a torch tensor or NumPy array N x 28 x 28 or N x 1 x 28 x 28 (uint8, or float with the same
        0..255 values); a list of PNG paths (str or Path; a single path also works); or a list of 28 x 28 arrays.
        Records: GSN {class, class_name, pair, counts, counts_from, top_k}; classification {class, class_name,
        probability, top_k} (see lab28.workloads.<workload>.predict).
        """
        import numpy as np

        from lab28.errors import Lab28Error

        if isinstance(images, (str, os.PathLike)):
            images = [images]
        if isinstance(images, (list, tuple)):
            if not images:
                return []
            if all(isinstance(p, (str, os.PathLike)) for p in images):
                images = np.stack([self._predictor.read_png(Path(p)) for p in images])
            elif not any(isinstance(p, (str, os.PathLike)) for p in images):
                images = np.stack([np.asarray(image) for image in images])
            else:
                raise Lab28Error("give either PNG paths or images, not a mix of both")
        return self._predictor.predict(images)

    def __repr__(self) -> str:
        return f"lab28.Model({str(self.run_dir)!r}, workload={self.workload!r})"


def load(run_dir: str | os.PathLike, device: str = "auto") -> Model:
    """A finished run's best weights (best.pt) as a Model on `device` ("auto": the best this machine has)."""
    from lab28.runs.model import finished_run_workload

    run_dir = Path(run_dir)
    workload = finished_run_workload(run_dir)
    return Model(workload.load_predictor(run_dir, device=device), run_dir, workload.name)


def evaluate(run_dir: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike | None = None,
             device: str = "auto", tta: bool = False) -> dict:
    """Evaluate a finished run's best weights on a labelled data folder of its workload (GSN folder; IDX files:
    t10k if present, else train). Returns what the JSON (out, default RUN_DIR/eval-<data>.json) holds: `metrics`
    (accuracy, macro_f1, ...; per class/pair with a '/'), `images`, and with tta=True `metrics_tta`."""
    from lab28.runs.model import evaluate_run

    return evaluate_run(Path(run_dir), Path(data), out_path=out, device=device, tta=tta)[1]
