"""Device and numeric precision choice: fast where the hardware supports it, plain fp32 elsewhere."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path

import torch

from lab28.errors import Lab28Error

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICE_TYPES = ("cpu", "cuda", "mps")
DEVICE_NAMES = ("auto", "cpu", "cuda", "cuda:N", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a device setting; `auto` picks the best this machine has.

    An explicit device the machine lacks is refused here, in one line, rather than by the first tensor sent to it.
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        device = None
    if device is None or device.type not in DEVICE_TYPES:
        raise Lab28Error(f"unknown device {name!r}; use one of {', '.join(DEVICE_NAMES)}")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise Lab28Error(f"device {name!r} requested but CUDA is not available on this machine "
                             "(use device auto or cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise Lab28Error(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                             "device(s)")
    if device.type == "mps" and not _mps_available():
        raise Lab28Error(f"device {name!r} requested but MPS (Apple GPU) is not available on this machine "
                         "(use device auto or cpu)")
    return device


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix units (AMX or AVX512-BF16); elsewhere bf16 is emulated and slow."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("amx_bf16", "avx512_bf16"))


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` -> bf16 on CUDA with bf16 support and on CPUs with native bf16, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ValueError("fp16 autocast is not supported for training on the CPU; use bf16 or fp32")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_fast_bf16():
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str, cache: bool = True):
    """Mixed-precision context for `precision` (a no-op for fp32). `cache=False` for CUDA-graph capture."""
    if precision == "fp32":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype, cache_enabled=cache)


def to_channels_last(x: torch.Tensor) -> torch.Tensor:
    """x with channels_last strides. For a batch of one-channel images both layouts count as contiguous, so
    `x.contiguous(memory_format=torch.channels_last)` keeps the NCHW strides; from those, a first convolution whose
    weight is built in the step (a group convolution's, with NCHW strides) writes NCHW, and every layer that keeps
    its input's layout stays in it (on a 2-core CPU that made the GSN free model's training step about 1.15x as
    long as on true channels_last strides: docs/benchmarks.md)."""
    return x.to(memory_format=torch.channels_last)
