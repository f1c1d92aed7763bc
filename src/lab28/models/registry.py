"""One registry maps model names to constructors (timm style)."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from lab28.errors import Lab28Error

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_WORKLOAD: dict[str, str] = {}  # model name -> the workload whose outputs it produces ("gsn", "classify")


def register_model(name: str, workload: str):
    """Decorator: `@register_model("shape-classifier", workload="gsn")` on a constructor. Duplicate names are
    refused; a model belongs to one workload, whose output contract it follows."""

    def decorator(fn: Callable[..., nn.Module]):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        _WORKLOAD[name] = workload
        return fn

    return decorator


def _builtin_models() -> None:
    # The workloads table is the plug-in point: the registry asks it to register its models, never a workload.
    from lab28.workloads import import_models

    import_models()


def available_models(workload: str | None = None) -> list[str]:
    _builtin_models()
    return sorted(name for name in _REGISTRY if workload is None or _WORKLOAD[name] == workload)


def create_model(name: str, workload: str | None = None, **kwargs) -> nn.Module:
    """Build a registered model; with `workload`, only one of that workload's (a one-line error otherwise)."""
    _builtin_models()
    choices = ", ".join(available_models(workload))
    if name not in _REGISTRY:
        raise Lab28Error(f"unknown model {name!r}; choose one of: {choices}")
    if workload is not None and _WORKLOAD[name] != workload:
        raise Lab28Error(f"model {name!r} (a {_WORKLOAD[name]} model) is not a {workload} model; "
                         f"choose one of: {choices}")
    return _REGISTRY[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
