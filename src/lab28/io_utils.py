"""Atomic writes and folder replacement: an output either appears complete or not at all."""

from __future__ import annotations

import io
import json
import os
import shutil
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
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise Lab28Error(f"{path.parent}: is not a folder, so {path.name} cannot be written there") from None
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())  # mkstemp makes 0600; a shared run folder must stay readable
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _current_umask() -> int:
    """The process umask, read without changing it (os.umask can only be read by setting it, which would race
    with the background checkpoint writer); the set-and-restore fallback is for systems without /proc."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    # Serialised in memory first: torch's own writer turns a failed write into a RuntimeError ("enforce fail at
    # inline_container.cc"), while a plain write of the bytes raises the OSError that says what went wrong.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(Path(path), lambda fh: fh.write(buffer.getbuffer()))


def atomic_savefig(fig, path: str | os.PathLike, **kwargs) -> None:
    """Save a matplotlib figure atomically (format taken from the final suffix)."""
    path = Path(path)
    fmt = path.suffix.lstrip(".") or "png"
    _atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, **kwargs))


def ensure_folder(path: str | os.PathLike, flag: str = "--out") -> Path:
    """Create the output folder `path` (and its parents); a one-line error when something else is in the way."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise Lab28Error(f"{path}: exists and is not a folder ({flag} must name a folder)") from None
    return path


def replace_folder(new: Path, target: Path) -> None:
    """Put the complete folder `new` in place of `target`, deleting the old `target` only once `new` is there.

    Two renames within one parent folder: after a crash between them the old folder is still there, hidden, and
    never half of either.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.replaced-", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except OSError:
        os.rename(old, target)  # put the previous folder back rather than leave nothing
        raise
    shutil.rmtree(old, ignore_errors=True)


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
