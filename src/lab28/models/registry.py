"""One registry maps model names to constructors (timm style)."""

from __future__ import annotations

from typing import Callable

import torch.nn as nn

from lab28.errors import Lab28Error

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: `@register_model("shape-classifier")` on a constructor. Duplicate names are refused."""

    def decorator(fn: Callable[..., nn.Module]):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = fn
        return fn

    return decorator


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise Lab28Error(f"unknown model {name!r}; choose one of: {', '.join(available_models())}")
    return _REGISTRY[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
