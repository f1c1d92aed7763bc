"""The engine's outer loop, for every workload: run folders (folder: names, locks, replacement), their plain files
(files), the run lifecycle (lifecycle), suites (suite) and their report page (report), finished runs (model:
loading, evaluation; predict: predictions on image files), and what every run config shares (config)."""
