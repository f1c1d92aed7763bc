"""lab28: deep-learning experiments on 28x28 images (GSN shape counting, Fashion-MNIST)."""

__version__ = "0.1.0"
