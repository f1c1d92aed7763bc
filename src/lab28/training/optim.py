"""The optimizer and the learning-rate schedule the trainer steps (lab28.training.trainer)."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from lab28.training.config import TrainConfig


def parameter_groups(model: nn.Module, lr: float) -> list[dict[str, Any]]:
    """The optimizer's parameter groups: the parameters at `lr`, then one group per multiple the model asks for.

    A model may name submodules whose parameters train at a multiple of the rate: `model.lr_scales`, a dict from a
    submodule's name (as in named_parameters) to the multiple; where names nest, the longest one decides. The
    schedule scales every group alike, and the logs report the first group's rate: the model's own, unless every
    parameter is scaled."""
    scales: dict[str, float] = getattr(model, "lr_scales", None) or {}
    named = list(model.named_parameters())
    for prefix in scales:
        if not any(name.startswith(prefix + ".") for name, _ in named):
            raise ValueError(f"lr_scales names {prefix!r}, which holds no parameters of this model")
    by_scale: dict[float, list[nn.Parameter]] = {1.0: []}
    for name, parameter in named:
        matches = [prefix for prefix in scales if name.startswith(prefix + ".")]
        scale = scales[max(matches, key=len)] if matches else 1.0
        by_scale.setdefault(scale, []).append(parameter)
    return [{"params": params, "lr": lr * scale} for scale, params in by_scale.items() if params]


def make_optimizer(model: nn.Module, config: TrainConfig, device: torch.device,
                   capturable: bool = False) -> torch.optim.Optimizer:
    """Adam/AdamW as configured, with the model's parameter groups (see parameter_groups). `capturable`: steppable
    inside a CUDA graph (see lab28.training.step)."""
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    groups = parameter_groups(model, config.lr)
    kwargs: dict[str, Any] = {"lr": config.lr, "weight_decay": config.weight_decay}
    # Fused kernels cut the optimizer step to a few launches; CPU support arrived in torch 2.4.
    if device.type in ("cuda", "cpu"):
        kwargs["fused"] = True
    if capturable:
        kwargs["capturable"] = True
    try:
        optimizer = cls(groups, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        kwargs.pop("fused", None)
        optimizer = cls(groups, **kwargs)
    set_graph_mode(optimizer, capturable, device)
    return optimizer


def set_graph_mode(optimizer: torch.optim.Optimizer, capturable: bool, device: torch.device) -> None:
    """(Re)apply the settings a CUDA-graph step needs, also after loading a state saved by another run.

    Inside a graph the learning rate must be a device tensor (a float would be frozen into the graph at capture);
    `initial_lr` stays a float so that a scheduler fills that tensor without reading it back from the device.
    """
    for group in optimizer.param_groups:
        lr = float(group["lr"])
        group["capturable"] = capturable
        group["lr"] = torch.tensor(lr, device=device) if capturable else lr
        if "initial_lr" in group:
            group["initial_lr"] = float(group["initial_lr"])
        else:
            group["initial_lr"] = lr


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    return float(optimizer.param_groups[0]["lr"])


def make_scheduler(optimizer, config: TrainConfig, steps_per_epoch: int):
    """Per-step learning-rate schedule (None for a constant rate)."""
    if config.scheduler == "none" and config.warmup_epochs == 0:
        return None
    total = max(1, config.epochs * steps_per_epoch)
    warm = int(config.warmup_epochs * steps_per_epoch)

    def factor(step: int) -> float:
        if step < warm:
            return 0.1 + 0.9 * step / warm
        if config.scheduler == "none":
            return 1.0
        progress = min(1.0, (step - warm) / max(1, total - warm))
        if config.scheduler == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        # onecycle-like: linear rise to the peak over the first 30 %, cosine down to ~0 after
        if progress < 0.3:
            return 0.1 + 0.9 * progress / 0.3
        return 0.5 * (1 + math.cos(math.pi * (progress - 0.3) / 0.7))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
