"""Task-agnostic training engine: config, early stopping, device/precision, the loop.

The package is also the API's verb: `lab28.train(dataset, preset=None, out="runs", name=None, **overrides)` calls
lab28.api.train (see there). Python sets `lab28.train` to this package whenever one of its modules is imported,
so the package itself must answer the call; both `import lab28.train.trainer` and `lab28.train("gsn")` work.
"""

import sys
import types


class _TrainPackage(types.ModuleType):
    def __call__(self, *args, **kwargs):
        from lab28.api import train

        return train(*args, **kwargs)

    @property
    def __signature__(self):  # inspect.signature(lab28.train) and IDEs show the API's parameters
        import inspect

        from lab28.api import train

        return inspect.signature(train)


sys.modules[__name__].__class__ = _TrainPackage
