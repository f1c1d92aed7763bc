"""Task-agnostic training engine: config, early stopping, device/precision, checkpoints, the loop."""
