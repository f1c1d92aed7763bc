"""Readers and writers of the plain files in a run folder (metrics.csv, confusion matrices).

Figures and reports read only these files, never a live model: a figure can always be redrawn from the folder.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_write_text


def read_metrics_csv(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {key: np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])
            for key in (rows[0] if rows else {})}


def read_matrix(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)


def write_matrix(path: Path, matrix: np.ndarray) -> None:
    atomic_write_text(path, "\n".join(",".join(str(int(v)) for v in row) for row in matrix) + "\n")


def read_run_json(path: Path) -> dict:
    """A JSON file of a run folder, with one-line errors for a missing or damaged file."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise Lab28Error(f"{Path(path).parent}: not a run folder (no {Path(path).name})") from None
    except (OSError, ValueError) as exc:
        raise Lab28Error(f"{path}: unreadable ({exc})") from None


def read_unfinished_run(run_dir: Path, build_config):
    """(config, last.pt state) of a run that can be resumed; one-line errors for finished or damaged folders."""
    from lab28.train.checkpoint import load_checkpoint
    from lab28.train.device import resolve_device

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
    return config, load_checkpoint(run_dir / "last.pt", device)


def diverged_message(run_dir: Path, reason) -> str:
    """The line for a run whose loss became non-finite, naming only the checkpoints its folder really has (a run
    that diverges in its first epoch has none)."""
    run_dir = Path(run_dir)
    kept = [text for name, text in (("best.pt", "best.pt holds the best epoch so far"),
                                    ("last.pt", "last.pt holds the last complete epoch")) if (run_dir / name).is_file()]
    where = " and ".join(kept) if kept else "no epoch completed, so no checkpoint was written"
    return f"{run_dir}: training stopped: {reason}; {where}"


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
    """The line a report prints about where its runs came from (a run's env.json, lab28.runinfo.environment)."""
    return (f"lab28 {env.get('lab28_version')} (git {env.get('git_hash')}), torch {env.get('torch_version')}, "
            f"device {env.get('device')}, precision {env.get('precision')}, "
            f"CPU threads per run: {env.get('torch_threads')}.")
