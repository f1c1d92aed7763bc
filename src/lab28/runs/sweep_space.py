"""A sweep's search space: the file a user writes (YAML or JSON) and the Optuna distributions it stands for.

    objective: val_accuracy      # optional: a validation metric the runs report (default: early stopping's monitor)
    direction: maximize          # optional: maximize | minimize (default: from the metric, see default_direction)
    params:                      # config keys (dotted paths, as in config.json) -> distributions
      model.dropout: {type: float, low: 0.0, high: 0.7}
      task.lam: {type: float, low: 0.3, high: 10, log: true}
      train.batch_size: {type: int, low: 32, high: 128, step: 32}
      model.head: {type: categorical, choices: [factored, flat]}

YAML is read with yaml.safe_load (plain data only: no tags that build objects, so reading never runs code).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lab28.errors import Lab28Error

MAX_SPACE_BYTES = 1 << 20  # a search space is a few lines; anything larger is not one
KINDS = ("float", "int", "categorical")
DIRECTIONS = ("maximize", "minimize")
# Metrics where lower is better; every other validation metric (accuracy, F1, ...) is maximised.
LOWER_IS_BETTER = ("loss", "rmse", "mae")


@dataclass(frozen=True)
class Param:
    """One searched config value: a float or int range (log-scaled or stepped) or a list of choices."""

    path: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple | None = None

    def suggest(self, trial):
        """The value Optuna's sampler picks for this trial."""
        if self.kind == "float":
            return trial.suggest_float(self.path, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.path, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_categorical(self.path, list(self.choices))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["choices"] = list(self.choices) if self.choices is not None else None
        return d


@dataclass(frozen=True)
class SearchSpace:
    params: tuple[Param, ...]
    objective: str | None = None
    direction: str | None = None

    def suggest(self, trial) -> dict[str, Any]:
        """The trial's values, config path -> value (Optuna's sampler picks them)."""
        return {p.path: p.suggest(trial) for p in self.params}


def default_direction(objective: str) -> str:
    name = objective.rsplit("_", 1)[-1]
    return "minimize" if name in LOWER_IS_BETTER else "maximize"


def read_space(path: str | Path) -> SearchSpace:
    """The search space in a YAML (.yaml/.yml) or JSON file; a one-line Lab28Error naming the file otherwise."""
    path = Path(path)
    try:
        if not path.is_file():
            raise Lab28Error(f"{path}: no such file (the search space: YAML or JSON)")
        if path.stat().st_size > MAX_SPACE_BYTES:
            raise Lab28Error(f"{path}: larger than {MAX_SPACE_BYTES} bytes; not a search space")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Lab28Error(f"{path}: unreadable ({exc})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # yaml.YAMLError, json.JSONDecodeError: the parser's own words, one line
        raise Lab28Error(f"{path}: not valid {'YAML' if path.suffix.lower() in ('.yaml', '.yml') else 'JSON'} "
                         f"({' '.join(str(exc).split())[:200]})") from None
    return space_from_dict(data, str(path))


def space_from_dict(data: Any, where: str) -> SearchSpace:
    """A SearchSpace from the parsed file (or a dict given to lab28.sweep); errors name `where`."""
    if not isinstance(data, dict):
        raise Lab28Error(f"{where}: expected a mapping with 'params', found {type(data).__name__}")
    unknown = set(data) - {"params", "objective", "direction"}
    if unknown:
        raise Lab28Error(f"{where}: unknown entries {sorted(unknown)}; a search space has params, objective, "
                         "direction")
    params = data.get("params")
    if not isinstance(params, dict) or not params:
        raise Lab28Error(f"{where}: 'params' must map config keys (e.g. model.dropout) to distributions")
    objective = data.get("objective")
    if objective is not None and (not isinstance(objective, str) or not objective.startswith("val_")):
        raise Lab28Error(f"{where}: objective must be a validation metric such as val_accuracy, got {objective!r}")
    direction = data.get("direction")
    if direction is not None and direction not in DIRECTIONS:
        raise Lab28Error(f"{where}: direction must be maximize or minimize, got {direction!r}")
    return SearchSpace(tuple(_param(key, spec, where) for key, spec in params.items()), objective, direction)


def param_from_record(record: Any, where: str) -> Param:
    """A Param from its record in sweep.json (Param.to_dict()), checked as the space file's entry is."""
    if not isinstance(record, dict) or not isinstance(record.get("path"), str):
        raise Lab28Error(f"{where}: expected an object with a path (a config key)")
    spec: dict[str, Any] = {"type": record.get("kind")}
    if record.get("kind") == "categorical":
        spec["choices"] = record.get("choices")
    else:
        spec.update({key: record[key] for key in ("low", "high") if key in record})
        spec.update({key: record[key] for key in ("log", "step") if record.get(key) not in (None, False)})
    return _param(record["path"], spec, where)


def _number(value, what: str, where: str) -> float:
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot) as text; it means the number
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise Lab28Error(f"{where}: {what} must be a finite number, got {value!r}")
    return value


def _param(key: Any, spec: Any, where: str) -> Param:
    if not isinstance(key, str) or not key or any(not part.isidentifier() for part in key.split(".")):
        raise Lab28Error(f"{where}: {key!r} is not a config key (a dotted path such as model.dropout)")
    if not isinstance(spec, dict):
        raise Lab28Error(f"{where}: {key}: expected a mapping such as {{type: float, low: 0, high: 1}}")
    at = f"{where}: {key}"
    kind = spec.get("type")
    if kind not in KINDS:
        raise Lab28Error(f"{at}: type must be one of {', '.join(KINDS)}, got {kind!r}")
    allowed = {"type", "choices"} if kind == "categorical" else {"type", "low", "high", "log", "step"}
    extra = set(spec) - allowed
    if extra:
        raise Lab28Error(f"{at}: {sorted(extra)} do not apply to a {kind} (use {', '.join(sorted(allowed))})")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise Lab28Error(f"{at}: choices must be a non-empty list")
        if any(not isinstance(c, (str, int, float, bool)) for c in choices) or len(set(map(repr, choices))) != len(choices):
            raise Lab28Error(f"{at}: choices must be distinct plain values (text, numbers, true/false)")
        return Param(key, kind, choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise Lab28Error(f"{at}: a {kind} range needs low and high")
    low, high = _number(spec["low"], "low", at), _number(spec["high"], "high", at)
    step = _number(spec["step"], "step", at) if spec.get("step") is not None else None
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise Lab28Error(f"{at}: log must be true or false, got {log!r}")
    if step is not None and step <= 0:
        raise Lab28Error(f"{at}: step must be > 0, got {step!r}")
    if kind == "int" and any(isinstance(v, float) and not v.is_integer() for v in (low, high, step or 1)):
        raise Lab28Error(f"{at}: an int range needs whole numbers")
    if low >= high:
        raise Lab28Error(f"{at}: low ({low}) must be below high ({high})")
    if log and (low <= 0 or step is not None):
        raise Lab28Error(f"{at}: a log range needs low > 0 and no step")
    return Param(key, kind, low=low, high=high, log=log, step=step)
