"""The model registry. Each workload registers its own models (lab28.workloads.<name>.models)."""

from lab28.models.registry import available_models, create_model, register_model

__all__ = ["available_models", "create_model", "register_model"]
