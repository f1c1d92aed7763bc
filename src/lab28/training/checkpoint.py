"""Checkpoint contents: everything needed to continue a run exactly where it stopped.

`last.pt` (written atomically after every epoch, in the background: CheckpointWriter) holds model, optimizer,
scheduler, grad-scaler, early-stopping state, the metrics history, and every random state that drives the run
(torch CPU, the device generator used for shuffling and augmentation, CUDA, numpy, python). Resuming from it on
the same machine and thread count gives the same weights and metrics as a run that was never interrupted.
"""

from __future__ import annotations

import random
import sys
import threading
from pathlib import Path

import numpy as np
import torch

from lab28.errors import Lab28Error
from lab28.io_utils import atomic_torch_save

# 2: random states stored as tensors and plain numbers, so that last.pt loads with weights_only=True.
CHECKPOINT_FORMAT = 2

# Format 1 stored numpy's random state as a numpy array. Unpickling a plain numeric array runs no code, so these
# few globals (and nothing else) are allowed when reading a checkpoint: older runs still resume.
_NUMPY_ARRAY_GLOBALS = [np.ndarray, np.dtype, type(np.dtype(np.uint32)),
                        getattr(np, "_core", getattr(np, "core", None)).multiarray._reconstruct]


def rng_state(generator: torch.Generator) -> dict:
    """Every random state that drives a run, as tensors and plain numbers (loadable with weights_only=True)."""
    kind, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    numpy_state = state["numpy"]
    if isinstance(numpy_state, dict):
        numpy_state = (numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                       numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    np.random.set_state(numpy_state)
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path, device: torch.device | str = "cpu", resumable: bool = False) -> dict:
    """Read a lab28 checkpoint with one-line errors for truncated, foreign, malformed or too-new files.

    Every checkpoint is loaded with weights_only=True: run folders get shared, and a pickle from elsewhere must
    never run code. resumable=True also checks that the file holds everything `fit` needs to continue (last.pt).
    """
    path = Path(path)
    if not path.is_file():
        raise Lab28Error(f"{path}: checkpoint not found")
    try:
        with torch.serialization.safe_globals(_NUMPY_ARRAY_GLOBALS):
            state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises many types for damaged or refused files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if "Unsupported operand" in str(exc):  # bytes that are no pickle at all (a text file, say): nothing refused
            raise Lab28Error(f"{path}: not a lab28 checkpoint (not a file torch.save wrote)") from None
        if "weights_only" in str(exc) or "Unsupported global" in str(exc):
            raise Lab28Error(f"{path}: refused checkpoint: it holds Python objects other than tensors and plain "
                             f"data ({first_line[:120]}); lab28 never loads those") from None
        raise Lab28Error(f"{path}: unreadable checkpoint ({type(exc).__name__}: {first_line})") from None
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise Lab28Error(f"{path}: not a lab28 checkpoint")
    version = state.get("format", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise Lab28Error(f"{path}: not a lab28 checkpoint (format {version!r} is not a version number)")
    if version > CHECKPOINT_FORMAT:
        raise Lab28Error(f"{path}: checkpoint format {version} is newer than this lab28 understands "
                         f"({CHECKPOINT_FORMAT}); upgrade lab28")
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state["model"].items()):
        raise Lab28Error(f"{path}: not a lab28 checkpoint (its model entry is not a dict of tensors)")
    if resumable:
        _check_resumable(path, state)
    return state


# What `fit` reads from last.pt to continue a run, and the type each entry must have.
_RESUME_ENTRIES = {"optimizer": dict, "early_stopping": dict, "rng": dict, "epoch": int, "history": list,
                   "stopped": bool, "stop_reason": str}


def _check_resumable(path: Path, state: dict) -> None:
    for key, kind in _RESUME_ENTRIES.items():
        value = state.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise Lab28Error(f"{path}: damaged checkpoint: entry {key!r} is missing or not of type {kind.__name__}")
    if state["epoch"] < 0 or len(state["history"]) != state["epoch"]:
        raise Lab28Error(f"{path}: damaged checkpoint: epoch {state['epoch']} but {len(state['history'])} history rows")
    if not all(isinstance(row, dict) for row in state["history"]):
        raise Lab28Error(f"{path}: damaged checkpoint: history rows are not records")
    rng = state["rng"]
    if not all(isinstance(rng.get(key), torch.Tensor) for key in ("torch", "generator")) or "numpy" not in rng \
            or "python" not in rng:
        raise Lab28Error(f"{path}: damaged checkpoint: incomplete random states")
    if not all(k in state["early_stopping"] for k in ("best", "best_epoch", "bad_epochs")):
        raise Lab28Error(f"{path}: damaged checkpoint: incomplete early-stopping state")


def cpu_copy(obj, memo: dict[int, object] | None = None):
    """A copy of a (nested) checkpoint dict whose tensors live in fresh CPU memory, detached from training.

    `memo` (id -> copy) lets several checkpoints that hold the same objects (best.pt and last.pt share the model's
    state dict) share one copy of them, as torch.save would share them within one file.
    """
    memo = {} if memo is None else memo
    if id(obj) in memo:
        return memo[id(obj)]
    if isinstance(obj, torch.Tensor):
        copy = obj.detach().to("cpu", copy=True)
    elif isinstance(obj, dict):
        copy = {key: cpu_copy(value, memo) for key, value in obj.items()}
    elif isinstance(obj, (list, tuple)):
        copy = type(obj)(cpu_copy(value, memo) for value in obj)
    else:
        return obj
    memo[id(obj)] = copy
    return copy


class CheckpointWriter:
    """Writes an epoch's checkpoints in a background thread, so the next epoch trains while the files are written.

    Why: last.pt holds the model and Adam's two moment buffers (~150 MB for the GSN model); writing and fsyncing it
    takes ~0.5 s, a few percent of a CPU epoch but about as long as a whole GPU epoch. The states are copied to CPU
    memory first (tens of milliseconds), so training can go on changing the live tensors. At most one epoch's files
    are in flight: `write` and `wait` wait for the previous write, and re-raise its error. Each file is still written
    atomically, so after a crash last.pt is the previous or the newest complete epoch, never half of one.
    """

    def __init__(self):
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, files: list[tuple[dict, Path]]) -> None:
        """Write each (state, path) in order, in the background."""
        self.wait()
        memo: dict[int, object] = {}  # the objects in `files` stay alive meanwhile, so their ids stay unique
        snapshots = [(cpu_copy(state, memo), Path(path)) for state, path in files]

        def work() -> None:
            try:
                for state, path in snapshots:
                    atomic_torch_save(state, path)
            except BaseException as exc:  # handed to the training thread by wait()
                self._error = exc

        thread = threading.Thread(target=work, name="lab28-checkpoint-writer")
        thread.start()
        # Kept only once started: a Ctrl-C between creating and starting it would otherwise leave wait() joining a
        # thread that never started, and its RuntimeError would replace the interrupt.
        self._thread = thread

    def wait(self, raise_error: bool = True, warn: bool = True) -> None:
        """Block until the write in flight (if any) is on disk; re-raise its error (or, with raise_error=False,
        only report it if `warn`: used while another error is already on its way up, which must not be replaced)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            if raise_error:
                raise error
            if warn:
                print(f"lab28: warning: a checkpoint write failed: {error}", file=sys.stderr)
