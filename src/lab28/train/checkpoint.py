"""Checkpoint contents: everything needed to continue a run exactly where it stopped.

`last.pt` (written atomically after every epoch) holds model, optimizer, scheduler, grad-scaler, early-stopping
state, the metrics history, and every random state that drives the run (torch CPU, the device generator used for
shuffling and augmentation, CUDA, numpy, python). Resuming from it on the same machine and thread count gives the
same weights and metrics as a run that was never interrupted.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch

from lab28.errors import Lab28Error

CHECKPOINT_FORMAT = 1


def rng_state(generator: torch.Generator) -> dict:
    state = {
        "torch": torch.get_rng_state(),
        "generator": generator.get_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    generator.set_state(state["generator"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: Path, device: torch.device | str = "cpu", weights_only: bool = False) -> dict:
    """Read a lab28 checkpoint with one-line errors for truncated, foreign or too-new files.

    weights_only=True (tensors and plain containers only) for files that may come from elsewhere, such as a
    best.pt handed to `eval`/`predict`; last.pt also holds numpy/python RNG states and needs False.
    """
    path = Path(path)
    if not path.is_file():
        raise Lab28Error(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=device, weights_only=weights_only)
    except Exception as exc:  # torch raises many types for damaged files
        raise Lab28Error(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise Lab28Error(f"{path}: not a lab28 checkpoint")
    version = state.get("format", CHECKPOINT_FORMAT)
    if version > CHECKPOINT_FORMAT:
        raise Lab28Error(f"{path}: checkpoint format {version} is newer than this lab28 understands "
                         f"({CHECKPOINT_FORMAT}); upgrade lab28")
    return state
