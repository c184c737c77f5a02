"""The two kinds of failure every worker distinguishes (see docs/architecture.md, Failure rule)."""


class TransientError(Exception):
    """Worth retrying: timeout, connection error, 429 or 5xx. The push handler answers 500 so
    Pub/Sub redelivers with the subscription's exponential backoff."""


class PermanentError(Exception):
    """Retrying cannot help (a 4xx validation error). Recorded in `sync_failures` and acknowledged."""

    def __init__(self, code: str, detail: str, *, provider: str = "", status: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.provider = provider
        self.status = status
