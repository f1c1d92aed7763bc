"""What every run folder records about where it came from: versions, git hash, machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import torch

import lab28


def git_hash() -> str | None:
    """The commit of the lab28 checkout (None for an installed package outside git)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def use_threads(threads: int) -> int:
    """Set torch's CPU thread count; 0 leaves torch's default. Returns the count asked for, capped at the cores.

    A run calls it before writing env.json, so that env.json records the threads the run really used (a suite
    worker gets its share of the cores). More threads than cores only make them wait for each other (a 6-second run
    took minutes with 999): the count is capped, with a warning; the run keeps the capped count in its config.
    """
    if not threads:
        return threads
    cores = os.cpu_count() or 1
    if threads > cores:
        print(f"lab28: warning: threads {threads} is more than the {cores} CPU cores here; using {cores}",
              file=sys.stderr, flush=True)
        threads = cores
    torch.set_num_threads(threads)
    return threads


def environment(device: str = "", precision: str = "") -> dict:
    info = {
        "lab28_version": lab28.__version__,
        "git_hash": git_hash(),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "precision": precision,
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def peak_memory_mb() -> dict[str, float]:
    """Peak memory of this process so far: resident set (RSS) and, on CUDA, what torch allocated on the GPU (MB).

    Recorded with every run (final_metrics.json), so a suite's memory is known per run even when the runs live in
    worker processes. RSS is a whole-process high-water mark: data loading counts too.
    """
    import resource
    import sys

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB, macOS: bytes
    info = {"peak_rss_mb": peak / 1024 / (1024 if sys.platform == "darwin" else 1)}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        info["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return info
