"""The engine's outer loop, for every workload: run folders (folder), their plain files (files), the run
lifecycle (lifecycle) and suites (suite)."""
