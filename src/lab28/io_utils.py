"""Atomic writes and run-folder creation: an output either appears complete or not at all."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from lab28.errors import Lab28Error


def user_cache_dir() -> Path:
    """Where lab28 keeps downloads and caches: $LAB28_DATA, else ~/.cache/lab28."""
    return Path(os.environ.get("LAB28_DATA") or Path.home() / ".cache" / "lab28").expanduser()


def _atomic_write(path: Path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    _atomic_write(Path(path), lambda fh: torch.save(obj, fh))


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> None:
    """Save a matplotlib figure atomically (format taken from the final suffix)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    _atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **kwargs))


def new_run_dir(parent: str | os.PathLike, name: str, overwrite: bool = False) -> Path:
    """Create parent/name; if it exists, parent/name-2, -3, ... unless `overwrite` (then reuse it, emptied).

    A run folder is never silently overwritten: without `overwrite`, a new suffixed folder is made and returned.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    candidate = parent / name
    if overwrite and candidate.exists():
        import shutil

        if not candidate.is_dir():
            raise Lab28Error(f"{candidate}: exists and is not a folder")
        shutil.rmtree(candidate)
    suffix = 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = parent / f"{name}-{suffix}"


def _json_default(obj: Any):
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
