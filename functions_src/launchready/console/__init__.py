"""The ops console: a server-rendered page over the records the pipeline writes (see docs/operations.md)."""
