"""Readers and writers of the plain files in a run folder (metrics.csv, confusion matrices).

Figures and reports read only these files, never a live model: a figure can always be redrawn from the folder.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_text


def read_metrics_csv(path: Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """metrics.csv as one float array per column (a blank cell, such as a column added mid-run, is NaN).

    One-line Lab28Error naming the file for a value that is not a number, a row longer than the header, no rows,
    or a missing column among `required`.
    """
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise Lab28Error(f"{path}: unreadable ({exc})") from None
    if required and not rows:
        raise Lab28Error(f"{path}: no epochs recorded")
    columns = list(rows[0]) if rows else []
    missing = [c for c in required if c not in columns]
    if missing:
        raise Lab28Error(f"{path}: missing column {', '.join(repr(c) for c in missing)}")
    table = {key: np.empty(len(rows)) for key in columns if key is not None}
    for number, row in enumerate(rows, start=2):  # row 1 is the header
        if None in row:
            raise Lab28Error(f"{path}, row {number}: more values than columns")
        for key, cell in row.items():
            try:
                table[key][number - 2] = float(cell) if cell not in (None, "") else np.nan
            except ValueError:
                raise Lab28Error(f"{path}, row {number}: {key} is not a number: {cell!r}") from None
    return table


def read_matrix(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)


def write_matrix(path: Path, matrix: np.ndarray) -> None:
    atomic_write_text(path, "\n".join(",".join(str(int(v)) for v in row) for row in matrix) + "\n")


def read_run_json(path: Path) -> dict:
    """A JSON file of a run folder (always an object), with one-line errors for a missing or damaged file."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Lab28Error(f"{Path(path).parent}: not a run folder (no {Path(path).name})") from None
    except (OSError, ValueError) as exc:
        raise Lab28Error(f"{path}: unreadable ({exc})") from None
    if not isinstance(data, dict):
        raise Lab28Error(f"{path}: expected a JSON object, found {_json_kind(data)}")
    return data


def _json_kind(value) -> str:
    kinds = {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null"}
    return kinds.get(type(value), "a number")


NUMBER, TEXT, LIST = "a number", "text", "a list"


def _matches(value, kind) -> bool:
    if kind is None:
        return value is None
    if isinstance(kind, dict):
        return isinstance(value, dict)
    if kind == NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == LIST:
        return isinstance(value, list)
    return isinstance(value, str)


def check_fields(path: Path, data: dict, spec: dict, where: str = "") -> None:
    """Refuse a JSON object that lacks a key of `spec` or holds the wrong kind of value there, naming the file.

    `spec` maps each key to NUMBER, TEXT, LIST, a nested spec (an object with those keys), or a tuple of those meaning
    "any of them" (None in the tuple allows null).
    """
    for key, kind in spec.items():
        name = f"{where}{key}"
        if key not in data:
            raise Lab28Error(f"{path}: missing key {name!r}")
        value = data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        match = next((k for k in kinds if _matches(value, k)), False)
        if match is False:
            wanted = " or ".join("null" if k is None else "an object" if isinstance(k, dict) else k for k in kinds)
            raise Lab28Error(f"{path}: {name} must be {wanted}, found {_json_kind(value)}")
        if isinstance(match, dict):
            check_fields(path, value, match, f"{name}.")


def check_numbers(path: Path, data: dict, where: str) -> None:
    """Refuse an object (such as a split's metrics, per-class ones included) holding anything but numbers."""
    for key, value in data.items():
        if not _matches(value, NUMBER):
            raise Lab28Error(f"{path}: {where}.{key} must be a number, found {_json_kind(value)}")


def read_unfinished_run(run_dir: Path, build_config):
    """(config, last.pt state) of a run that can be resumed; one-line errors for finished or damaged folders."""
    from lab28.training.checkpoint import load_checkpoint
    from lab28.training.device import resolve_device

    if read_run_json(run_dir / "status.json").get("status") == "finished":
        raise Lab28Error(f"{run_dir}: this run already finished; nothing to resume")
    config_path = run_dir / "config.json"
    try:
        config = build_config(read_run_json(config_path))
        config.validate()
    except (ValueError, TypeError) as exc:
        raise Lab28Error(f"{config_path}: bad config: {exc}") from None
    try:  # the run may come from another machine: its device must exist on this one
        device = resolve_device(config.train.device)
    except Lab28Error as exc:
        raise Lab28Error(f"{config_path}: {exc}") from None
    return config, load_checkpoint(run_dir / "last.pt", device, resumable=True)


def suite_run_names(suite_dir: Path, key: str, marker: str) -> list[str]:
    """The run folders of a suite: the names its suite.json lists under `key`, else (no suite.json, or an empty
    list) the sub-folders that hold a `marker` file. One-line errors for a missing folder or a bad list."""
    suite_dir = Path(suite_dir)
    if not suite_dir.is_dir():
        raise Lab28Error(f"{suite_dir}: {'not a folder' if suite_dir.exists() else 'no such folder'}")
    suite_file = suite_dir / "suite.json"
    names = read_run_json(suite_file).get(key) if suite_file.exists() else None
    if names is not None and not (isinstance(names, list) and all(
            isinstance(n, str) and n == Path(n).name and n not in ("", ".", "..") for n in names)):
        raise Lab28Error(f"{suite_file}: {key!r} must be a list of run folder names")
    names = names or sorted(p.name for p in suite_dir.iterdir() if (p / marker).exists())
    if not names:
        raise Lab28Error(f"{suite_dir}: no run folders found")
    return names


def check_run_folder(run_dir: Path, required: tuple[str, ...]) -> None:
    """Refuse a run folder that lacks any of `required`, saying what is missing."""
    missing = [name for name in required if not (run_dir / name).exists()]
    if missing:
        raise Lab28Error(f"{run_dir}: incomplete run folder, missing {', '.join(missing)}")


def read_run_summary(run_dir: Path) -> dict:
    """The JSON files a report needs from one run folder: final metrics and config (required), env and data."""
    optional = {key: read_run_json(run_dir / f"{key}.json") if (run_dir / f"{key}.json").exists() else {}
                for key in ("env", "data")}
    return {"final": read_run_json(run_dir / "final_metrics.json"), "config": read_run_json(run_dir / "config.json"),
            **optional}


def environment_line(env: dict) -> str:
    """The line a report prints about where a run came from (its env.json, lab28.runinfo.environment)."""
    return (f"lab28 {env.get('lab28_version')} (git {env.get('git_hash')}), torch {env.get('torch_version')}, "
            f"device {env.get('device')}, precision {env.get('precision')}, "
            f"CPU threads per run: {env.get('torch_threads')}.")


def environment_lines(envs: dict[str, dict]) -> list[str]:
    """Where a report's runs (name -> env.json; runs without one are left out) came from: one line when they share
    it, else one line per environment naming its runs, so that no run is credited with another's code or threads."""
    runs_of: dict[str, list[str]] = {}
    for name, env in envs.items():
        if env:
            runs_of.setdefault(environment_line(env), []).append(name)
    if len(runs_of) == 1:
        return list(runs_of)
    return [f"Runs {', '.join(names)}: {line}" for line, names in runs_of.items()]


def figures_folder(run_dir: str | Path) -> tuple[Path, Path, dict]:
    """(run folder, its figures/ folder, made if needed, its final_metrics.json): where a run's figures start."""
    run_dir = Path(run_dir)
    out = run_dir / "figures"
    out.mkdir(exist_ok=True)
    return run_dir, out, read_run_json(run_dir / "final_metrics.json")


@dataclass
class SuiteFiles:
    """Everything a suite report reads, read and checked before anything is written."""

    folder: Path
    runs: list[Path]
    summaries: dict[str, dict]  # run name -> read_run_summary (final, config, env, data)
    metrics: dict[str, dict[str, np.ndarray]]  # run name -> metrics.csv columns

    @property
    def finals(self) -> dict[str, dict]:
        return {name: s["final"] for name, s in self.summaries.items()}

    @property
    def configs(self) -> dict[str, dict]:
        return {name: s["config"] for name, s in self.summaries.items()}


def read_suite(suite_dir: str | Path, find_runs, read_runs) -> SuiteFiles:
    """A suite's runs as the workload's report finds and checks them (find_runs, read_runs); nothing written."""
    suite_dir = Path(suite_dir)
    runs = find_runs(suite_dir)
    summaries, metrics = read_runs(runs)
    return SuiteFiles(suite_dir, runs, summaries, metrics)
