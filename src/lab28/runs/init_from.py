"""`train.init_from`: a run that starts from the weights of an earlier one (fine-tuning), for every workload.

Only the model's weights are taken; the optimizer, the schedule, early stopping and the epochs start afresh, as in
any new run. A run folder gives its best.pt: the weights that run evaluated and kept (its moving average of the
weights where it used one). A .pt file gives the weights it holds; from a last.pt that is the average too where there
is one, so that a folder and its files agree on what "the run's weights" are.

The file is read by the engine's checkpoint reader (weights_only: nothing read from disk runs code) and checked
against this run's model before the run folder exists. A resumed run continues from its own last.pt and never reads
init_from again: the source may have changed or gone since.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lab28.errors import Lab28Error
from lab28.training.checkpoint import load_checkpoint


def init_checkpoint(source: str | Path) -> Path:
    """The checkpoint `init_from` names: a run folder's best.pt, or the file itself."""
    path = Path(source)
    if not path.is_dir():
        return path  # a missing file is load_checkpoint's one-line error
    if not (path / "best.pt").is_file():
        raise Lab28Error(f"{path}: no best.pt to start from (init_from takes a run folder or a .pt checkpoint)")
    return path / "best.pt"


def _is_weights(value) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                           for k, v in value.items())


def _model_words(model: dict, other: dict) -> str:
    """`'name' (field value, ...)`: the model's name and the fields of its config section that differ in `other`."""
    words = [f"{key} {value if isinstance(value, str) else json.dumps(value)}" for key, value in model.items()
             if key != "name" and other.get(key) != value]
    return f"{model.get('name')!r}" + (f" ({', '.join(words)})" if words else "")


def _fit_problem(model: torch.nn.Module, weights: dict[str, torch.Tensor]) -> str:
    """What keeps `weights` from loading into `model` exactly ("" when they fit)."""
    own = model.state_dict()
    missing = [key for key in own if key not in weights]
    unexpected = [key for key in weights if key not in own]
    if missing or unexpected:
        parts = ([f"{len(missing)} tensors missing (first {missing[0]!r})"] if missing else []) + \
                ([f"{len(unexpected)} it has no place for (first {unexpected[0]!r})"] if unexpected else [])
        return "; ".join(parts)
    for key, value in own.items():
        if value.shape != weights[key].shape:
            shape = "x".join(map(str, weights[key].shape)) or "scalar"
            return f"{key!r} is {shape} in the file, {'x'.join(map(str, value.shape)) or 'scalar'} in this model"
    return ""


def start_from_weights(config, model: torch.nn.Module) -> Path:
    """Replace `model`'s start weights by those `config.train.init_from` names; the checkpoint read. One-line
    Lab28Error naming the file for one that is missing, foreign, damaged, or of another model than this run's."""
    from lab28.workloads import workload_name_of_config

    path = init_checkpoint(config.train.init_from)
    state = load_checkpoint(path, "cpu")
    average = state.get("average")
    weights = average["weights"] if isinstance(average, dict) and _is_weights(average.get("weights")) \
        else state["model"]
    ours = config.to_dict()
    theirs = state.get("config") if isinstance(state.get("config"), dict) else {}  # absent: judged by weights alone
    workload = workload_name_of_config(theirs) if theirs else None
    if workload is not None and workload != ours["workload"]:
        raise Lab28Error(f"{path}: the weights of a {workload} run; this run is a {ours['workload']} one")
    their_model = theirs.get("model") if isinstance(theirs.get("model"), dict) else None
    problem = _fit_problem(model, weights)
    if their_model is not None and their_model != ours["model"] and (
            problem or their_model.get("name") != ours["model"]["name"]):
        raise Lab28Error(f"{path}: its model is {_model_words(their_model, ours['model'])}, this run's is "
                         f"{_model_words(ours['model'], their_model)}")
    if problem:
        raise Lab28Error(f"{path}: its weights do not fit this run's model {ours['model']['name']!r}: {problem}")
    model.load_state_dict(weights)
    return path


def check_init_from(workload, config) -> None:
    """Refuse, before a suite's or sweep's folder exists, an init_from its runs could not start from (the model is
    built on the side; the global random state is left as it was)."""
    if not config.train.init_from:
        return
    with torch.random.fork_rng(devices=[]):
        try:
            model = workload.build_model(config)
        except ValueError as exc:
            raise Lab28Error(f"bad configuration: {exc}") from None
        start_from_weights(config, model)
