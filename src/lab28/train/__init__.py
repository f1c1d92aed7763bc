"""Task-agnostic training engine: config, early stopping, device/precision, the loop."""
