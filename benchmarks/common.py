"""Helpers shared by the benchmarks: peak memory, a GSN folder to read, FLOPs of a training step, JSON results."""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

import torch

from lab28.runinfo import peak_memory_mb

RESULTS = Path(__file__).resolve().parent / "results"


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (MB)."""
    return peak_memory_mb()["peak_rss_mb"]


def gpu_peak_mb() -> float | None:
    """Peak GPU memory torch allocated in this process (MB), None without CUDA."""
    return peak_memory_mb().get("gpu_peak_mb")


def machine() -> dict:
    info = {"platform": platform.platform(), "cpu": _cpu_name(), "cores": os.cpu_count(),
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def gsn_folder(data: str | None, n: int) -> Path:
    """The given GSN folder, or a synthetic one of n images written to a temporary folder (PNG files on disk)."""
    if data:
        return Path(data)
    from lab28.workloads.gsn.synth import synth_gsn

    root = Path(tempfile.mkdtemp(prefix="lab28-bench-"))
    synth_gsn(root, n=n, seed=0)
    return root / "data"


def result_name(name: str) -> str:
    """Results of a GPU machine are kept beside the CPU ones, not over them: `<name>-cuda.json`."""
    return f"{name}-cuda" if torch.cuda.is_available() else name


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so that a timer read after it measures the work, not its launch."""
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_flops_per_image(model: torch.nn.Module, x: torch.Tensor, loss_fn) -> dict[str, float]:
    """FLOPs per image of the forward pass and of forward + backward for the batch `x` (2 FLOPs per multiply-add),
    as PyTorch's FlopCounterMode counts the matrix products and convolutions the step really runs: the backward
    is counted, not assumed to be 2x the forward (a first layer needs no input gradient); `train_by_op` splits it by
    operator. `loss_fn(outputs)` gives the scalar loss; element-wise work (activations, the optimizer) is not
    counted."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as forward:
        model(x)
    with FlopCounterMode(display=False) as step:
        loss_fn(model(x)).backward()
    model.zero_grad(set_to_none=True)
    # By operator, named as the profiler names it (aten::mm), so a profile's time per operator gives its FLOP rate.
    by_op = {str(op).replace(".", "::", 1): n / len(x) for op, n in step.get_flop_counts()["Global"].items()}
    return {"forward": forward.get_total_flops() / len(x), "train": step.get_total_flops() / len(x),
            "train_by_op": by_op}


def save_result(name: str, result: dict) -> Path:
    from lab28.io_utils import atomic_write_json

    path = RESULTS / f"{result_name(name)}.json"
    atomic_write_json(path, {"benchmark": name, "machine": machine(), **result})
    print(f"results: {path}")
    return path
