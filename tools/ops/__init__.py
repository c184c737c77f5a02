"""Commands that act on a deployed environment: Secret Manager values, dead-letter replay."""
