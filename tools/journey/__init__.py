"""The founder's journey and its targets (the local stack, a deployed one): demo, smoke, benchmarks, e2e."""
