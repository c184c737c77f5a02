"""The providers' published OpenAPI documents the sandbox holds itself to (provenance: README.md here)."""
