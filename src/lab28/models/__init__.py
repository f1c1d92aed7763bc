"""Model registry and the models lab28 ships. Importing this package registers them all."""

from lab28.models.registry import available_models, create_model, register_model
from lab28.models import shape_classifier as _shape_classifier  # noqa: F401  (registers its models)
from lab28.models import fashion_cnns as _fashion_cnns  # noqa: F401  (registers simple-cnn, spatial-attention-cnn, gated-cnn)

__all__ = ["available_models", "create_model", "register_model"]
