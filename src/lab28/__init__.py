"""lab28: deep-learning experiments on 28x28 images (GSN shape counting, Fashion-MNIST).

Python API (lab28.api; docs/api.md): lab28.train(dataset, ...) -> run folder, lab28.load(run_dir) -> Model with
.predict(images), lab28.evaluate(run_dir, data) -> metrics, lab28.sweep(dataset, space, trials) -> sweep folder,
lab28.list_models(), lab28.datasets(). Loaded on first
use, so `import lab28` does not import torch.
"""

__version__ = "0.1.0"
__all__ = ["Model", "__version__", "datasets", "evaluate", "list_models", "load", "sweep", "train"]

_API = ("Model", "datasets", "evaluate", "list_models", "load", "sweep", "train")


def __getattr__(name: str):
    if name in _API:
        from lab28 import api

        return getattr(api, name)
    raise AttributeError(f"module 'lab28' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
