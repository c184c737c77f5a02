"""Benchmarks of the local stack: start-up and the event pipeline (medians and p95)."""
