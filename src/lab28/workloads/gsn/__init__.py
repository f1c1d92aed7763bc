"""The GSN (Geometric Shape Numbers) workload: labels, data, augmentation, task."""
