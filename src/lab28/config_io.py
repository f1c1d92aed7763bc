"""Configs as dataclass trees: strict rebuilding from JSON, dotted-path access for CLI flags, config files."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Callable

from lab28.errors import Lab28Error


def from_dict(cls, data: dict[str, Any]):
    """Rebuild a (nested) config dataclass from a dict, refusing unknown keys, wrong types and non-finite numbers."""
    config = _build(cls, data)
    check_finite(config)
    return config


def _build(cls, data: dict[str, Any]):
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object for {cls.__name__}, found {type(data).__name__}")
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(f"unknown config key {key!r} in {cls.__name__}; known: {', '.join(fields)}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"config key {key!r} must be a mapping")
            value = _build(type(default), value)
        elif isinstance(default, tuple):
            if not (isinstance(value, (list, tuple)) and len(value) == len(default)
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
                raise ValueError(f"config key {key!r} must be a list of {len(default)} numbers, got {value!r}")
            value = tuple(float(v) if isinstance(d, float) else v for v, d in zip(value, default))
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif default is not None and not isinstance(value, type(default)):
            raise ValueError(f"config key {key!r} must be {type(default).__name__}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


def check_finite(config, where: str = "") -> None:
    """Refuse NaN or infinity in any float of a config tree (tuples of floats too).

    A comparison such as `lr > 0` lets infinity through and every comparison is False for NaN, so a per-field range
    check misses them; they then fail deep inside training. JSON can carry them (Python's json reads NaN and
    Infinity) and so can float flags ("inf", "nan").
    """
    for f in dataclasses.fields(config):
        value, name = getattr(config, f.name), f"{where}{f.name}"
        if dataclasses.is_dataclass(value):
            check_finite(value, f"{name}.")
            continue
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"{name} must be a finite number, got {value!r}")


def check_seed(name: str, seed: int) -> None:
    """Seeds go to torch (which takes 0 .. 2**64 - 1) and numpy (which refuses negatives)."""
    if not 0 <= seed < 2**64:
        raise ValueError(f"{name} must be between 0 and 2**64 - 1, got {seed}")


def get_path(cfg, path: str):
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def set_path(cfg, path: str, value) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        cfg = getattr(cfg, part)
    setattr(cfg, leaf, value)


def parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def load_config_file(path: str | Path, build: Callable[[dict[str, Any]], Any]):
    """Read a config.json and rebuild it with `build`; one-line Lab28Error naming the file otherwise."""
    try:
        return build(json.loads(Path(path).read_text()))
    except (OSError, json.JSONDecodeError, ValueError, TypeError) as exc:
        raise Lab28Error(f"{path}: bad config file: {exc}") from None


def add_config_flags(parser: argparse.ArgumentParser, flags: dict[str, tuple[str, str]], reference, label: str) -> None:
    """One --flag per config field, default None (= keep the preset's value); help shows `reference`'s value."""
    group = parser.add_argument_group(f"run configuration (default: the preset's value; shown: {label} preset)")
    for flag, (path, text) in flags.items():
        default = get_path(reference, path)
        kind = parse_bool if isinstance(default, bool) else type(default)
        group.add_argument(f"--{flag}", type=kind, default=None, help=f"{text} [{label}: {default!r}]")


def apply_config_flags(cfg, args: argparse.Namespace, flags: dict[str, tuple[str, str]]):
    """Write every flag the user gave into the config tree."""
    for flag, (path, _) in flags.items():
        value = getattr(args, flag.replace("-", "_"), None)
        if value is not None:
            set_path(cfg, path, value)
    return cfg
