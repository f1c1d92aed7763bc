"""A run folder's place on disk: a safe name, a lock held while a run is active, and a replacement that destroys
nothing until the new run has finished.

- A run name is one plain path component: `--name ..` or `--name a/b` can never reach outside `--out`.
- An active run (new, resumed or finishing) holds an exclusive `flock` on its folder. The kernel drops the lock
  when the process ends, however it ends, so a crashed run never holds its name forever.
- `--overwrite` builds the new run beside the old one (as `name-2`, ...), holding the old folder's lock too, and
  swaps it into place only once it has finished. If the new run fails, the old one is untouched and the failed
  one stays as `name-N` with its status and reason. status.json's `replaces` entry remembers the swap, so a
  resumed run still does it when it finishes.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from contextlib import contextmanager

from lab28.errors import Lab28Error, describe_os_error
from lab28.io_utils import atomic_write_json, ensure_folder, replace_folder

try:  # POSIX; without it (Windows) runs are not locked against each other
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

MAX_NAME_BYTES = 255


def check_run_name(name: str, flag: str = "--name") -> str:
    """`name` if it is one plain folder name, else a one-line error saying why not."""
    problem = None
    if not isinstance(name, str) or not name.strip():
        problem = "is empty"
    elif name in (".", "..") or "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        problem = "must be a single folder name, not a path"
    elif name.startswith("."):
        problem = "must not start with '.' (hidden names are reserved for lab28's own temporary folders)"
    elif any(ord(c) < 32 or ord(c) == 127 for c in name):
        problem = "contains control characters"
    elif len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
        problem = f"is longer than {MAX_NAME_BYTES} bytes"
    if problem:
        raise Lab28Error(f"{flag} {name!r} {problem}")
    return name


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive lock on the folder `path`; None when another process holds it."""
    fd = os.open(path, os.O_RDONLY)
    if fcntl is None:
        return fd
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:  # e.g. ENOLCK on a file system without locks
        os.close(fd)
        raise
    return fd


def _looks_like_run(path: Path) -> bool:
    """A real folder (not a link) that a lab28 run wrote: the only kind --overwrite may replace."""
    return path.is_dir() and not path.is_symlink() and any((path / f).is_file() for f in ("config.json", "status.json"))


def _identity(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_dev, st.st_ino]


def _held_error(path: Path) -> Lab28Error:
    return Lab28Error(f"{path}: another lab28 process is training in this run folder right now; wait for it to "
                      f"end or choose another --name")


class RunFolder:
    """The folder of one active run. Use `create` (new run) or `open_existing` (resume)."""

    def __init__(self, path: Path, lock_fds: list[int], replaces: Path | None = None):
        self.path = path
        self.replaces = replaces
        self.replaces_id: list[int] | None = _identity(replaces) if replaces is not None else None
        self._lock_fds = lock_fds

    @classmethod
    def create(cls, parent: str | os.PathLike, name: str, overwrite: bool = False) -> "RunFolder":
        """A new, empty, locked folder for a run named `name` under `parent`.

        Without `overwrite` an existing `name` is kept and the run goes to `name-2`, `name-3`, ...; with it the
        run still goes there, and replaces `name` when it finishes (refused while `name` is in use).
        """
        check_run_name(name)
        parent = ensure_folder(parent)
        target = parent / name
        folder = cls(parent, [], None)  # filled in below; holds the locks taken so far
        try:
            if overwrite and target.exists():
                if not _looks_like_run(target):
                    raise Lab28Error(f"{target}: exists and is not a lab28 run folder (no config.json or "
                                     f"status.json); --overwrite replaces run folders only")
                fd = _try_lock(target)
                if fd is None:
                    raise _held_error(target)
                folder._lock_fds.append(fd)
                folder.replaces, folder.replaces_id = target, _identity(target)
            folder.path = _make_unique_folder(parent, name)
            fd = _try_lock(folder.path)
            if fd is None:  # only a process racing for this very new folder can hold it
                raise _held_error(folder.path)
            folder._lock_fds.append(fd)
        except BaseException:
            folder.release()
            raise
        return folder

    @classmethod
    def open_existing(cls, path: str | os.PathLike) -> "RunFolder":
        """Lock an existing run folder (to resume or finish it); refused while another process works in it."""
        path = Path(path)
        if not path.is_dir():
            raise Lab28Error(f"{path}: no such run folder")
        fd = _try_lock(path)
        if fd is None:
            raise _held_error(path)
        folder = cls(path, [fd], None)
        try:
            status = json.loads((path / "status.json").read_text())
            # A swap is resumed only for the very folder the run was started to replace (its device and inode),
            # so an edited status.json cannot make a resume delete some other folder.
            if isinstance(status, dict) and isinstance(status.get("replaces"), str) \
                    and isinstance(status.get("replaces_id"), list):
                folder.replaces = path.parent / check_run_name(status["replaces"], "status.json 'replaces'")
                folder.replaces_id = status["replaces_id"]
        except (OSError, ValueError, Lab28Error):
            pass  # status.json is checked by the caller; a missing swap only keeps the old run
        return folder

    def write_status(self, status: str, **info) -> None:
        record = {"status": status, **info}
        if self.replaces is not None:
            record["replaces"], record["replaces_id"] = self.replaces.name, self.replaces_id
        path = self.path / "status.json"
        try:
            atomic_write_json(path, record)
        except OSError:
            # A full disk has no room for a second copy; the old file's own blocks still hold the few bytes.
            with open(path, "r+" if path.exists() else "w") as fh:
                fh.truncate(0)
                fh.write(json.dumps(record, indent=2) + "\n")

    @contextmanager
    def active(self, resume_command: str):
        """Mark the run running for the duration of the block, and map every way it can end to a status and
        (for failures) one Lab28Error line. The lock is released on the way out of a failure."""
        from lab28.training.trainer import TrainingDiverged, TrainingInterrupted

        try:
            self.write_status("running", started=time.time())
            yield
        except BaseException as exc:
            status, message = self._failure(exc, resume_command, (TrainingDiverged, TrainingInterrupted))
            try:
                self.write_status(status, reason=message)
            except OSError as write_error:  # the original failure is the one to report
                print(f"lab28: warning: could not record the {status} status: {describe_os_error(write_error)}",
                      file=sys.stderr)
            self.release()
            if isinstance(exc, Lab28Error) or not isinstance(
                    exc, (OSError, KeyboardInterrupt, TrainingDiverged, TrainingInterrupted)):
                raise  # already one line, or a bug that keeps its traceback (the CLI shows it with --debug)
            if isinstance(exc, OSError):  # the message names the file already
                raise Lab28Error(f"{message} (run {self.path} marked failed)") from None
            raise Lab28Error(f"{self.path}: {message}") from None

    @contextmanager
    def suite(self, info: dict):
        """A suite folder's suite.json: `running` during the block, then `finished` with `info` as the block left
        it, or `failed` with the reason. The lock is released either way."""
        path = self.path / "suite.json"
        try:
            atomic_write_json(path, {**info, "status": "running"})
            yield
        except BaseException as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            try:
                atomic_write_json(path, {**info, "status": "failed", "reason": reason})
            except OSError:
                pass  # the original failure is the one to report
            raise
        else:
            atomic_write_json(path, {**info, "status": "finished"})
        finally:
            self.release()

    def _failure(self, exc: BaseException, resume_command: str, training_errors) -> tuple[str, str]:
        diverged, interrupted = training_errors
        kept = [name for name in ("best.pt", "last.pt") if (self.path / name).is_file()]
        untouched = f"; {self.replaces} (the run it was to replace) is untouched" if self.replaces else ""
        if isinstance(exc, (interrupted, KeyboardInterrupt)):
            text = str(exc) if isinstance(exc, interrupted) else "interrupted"
            if "last.pt" in kept:
                return "interrupted", f"{text}; continue with: {resume_command}{untouched}"
            return "interrupted", f"{text}; no epoch had finished, so there is nothing to resume{untouched}"
        if isinstance(exc, diverged):  # name only the checkpoints there are: a first epoch that diverged left none
            kept_text = " and ".join(
                {"best.pt": "best.pt holds the best epoch so far", "last.pt": "last.pt holds the last complete epoch"}[k]
                for k in kept) or "no epoch completed, so no checkpoint was written"
            return "failed", f"training stopped: {exc}; {kept_text}{untouched}"
        if isinstance(exc, OSError):
            return "failed", f"{describe_os_error(exc)}{untouched}"
        if isinstance(exc, Lab28Error):
            return "failed", f"{exc}{untouched}"
        return "failed", f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"

    def finish(self) -> Path:
        """Mark the run finished; if it replaces an older run, swap it into that run's place. Returns where the
        finished run now lives. Releases the lock."""
        try:
            self.write_status("finished", finished=time.time())
            if self.replaces is None:
                return self.path
            if self.replaces.exists() and not (_looks_like_run(self.replaces)
                                               and _identity(self.replaces) == self.replaces_id):
                print(f"lab28: warning: {self.replaces} is no longer the run this one was to replace; the finished "
                      f"run stays in {self.path}", file=sys.stderr)
                return self.path
            if self.replaces.exists() and len(self._lock_fds) < 2:
                fd = _try_lock(self.replaces)  # a resumed replacement: take the old run's lock now
                if fd is None:
                    print(f"lab28: warning: {self.replaces} is in use; the finished run stays in {self.path}",
                          file=sys.stderr)
                    return self.path
                self._lock_fds.insert(0, fd)
            final = self.replaces
            replace_folder(self.path, final)
            self.path, self.replaces = final, None
            self.write_status("finished", finished=time.time())
            return final
        finally:
            self.release()

    def release(self) -> None:
        for fd in self._lock_fds:
            os.close(fd)
        self._lock_fds = []


def _make_unique_folder(parent: Path, name: str) -> Path:
    candidate, suffix = parent / name, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            suffix += 1
            candidate = parent / f"{name}-{suffix}"

