"""Configs as dataclass trees: strict rebuilding from JSON, dotted-path access for CLI flags, config files."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any, Callable

from lab28.errors import Lab28Error


def from_dict(cls, data: dict[str, Any]):
    """Rebuild a (nested) config dataclass from a dict, refusing unknown keys and wrong types."""
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in data.items():
        if key not in fields:
            raise ValueError(f"unknown config key {key!r} in {cls.__name__}; known: {', '.join(fields)}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise ValueError(f"config key {key!r} must be a mapping")
            value = from_dict(type(default), value)
        elif isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        elif isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"config key {key!r} must be true or false, got {value!r}")
        elif isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        elif default is not None and not isinstance(value, type(default)):
            raise ValueError(f"config key {key!r} must be {type(default).__name__}, got {value!r}")
        kwargs[key] = value
    return cls(**kwargs)


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
