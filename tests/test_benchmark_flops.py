"""The benchmarks' FLOP count of a training step, checked by hand on a tiny model."""

import importlib.util
from pathlib import Path

import torch
import torch.nn as nn

COMMON = Path(__file__).resolve().parents[1] / "benchmarks" / "common.py"


def load_common():
    # Loaded by path: benchmarks/ is a folder of scripts, not a package on the path.
    spec = importlib.util.spec_from_file_location("lab28_benchmarks_common", COMMON)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_flops_per_image_counts_the_real_backward():
    # conv 1->2 (3x3, padding 1) on 4x4: 2 * 16 * 9 = 288 multiply-adds; Linear 32 -> 3: 96. Forward 2 * 384 = 768.
    # Backward: the Linear's input and weight gradients (96 + 96), the conv's weight gradient only (288: the image
    # needs no gradient): 2 * 480 = 960, so the step is 1728 FLOPs, not 3 * 768.
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, bias=False), nn.Flatten(), nn.Linear(32, 3, bias=False))
    flops = load_common().step_flops_per_image(model, torch.randn(5, 1, 4, 4), lambda out: out.sum())
    assert (flops["forward"], flops["train"]) == (768, 1728)
    # Each conv pass 2 * 288 (forward; weight gradient), the three matrix products of the Linear 2 * 3 * 96.
    assert flops["train_by_op"] == {"aten::convolution": 576, "aten::convolution_backward": 576, "aten::mm": 576}
    assert all(p.grad is None for p in model.parameters())
