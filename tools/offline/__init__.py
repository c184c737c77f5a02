"""Offline verification of the Pulumi program: mocks, contracts, the plan (no CLI, no credentials)."""
