"""The kinds of failure every worker distinguishes (see docs/architecture.md, Failure rule)."""


class TransientError(Exception):
    """Worth retrying: timeout, connection error, 429, 5xx or a provider code its docs call temporary.
    The push handler answers 500 so Pub/Sub redelivers with the subscription's exponential backoff.

    `retry_after` (seconds) is the provider's own "not before": its Retry-After header, or the wait its
    docs prescribe (HubSpot's 423 lock lasts 2 s). The ledger records it on the step and defers every
    redelivery that arrives earlier, so the provider is never called sooner than it asked."""

    def __init__(self, message: str, *, retry_after: float | None = None, provider: str = "",
                 status: int | None = None, code: str = ""):
        super().__init__(message)
        self.retry_after = retry_after
        self.provider = provider
        self.status = status
        self.code = code


class QuotaExhausted(TransientError):
    """A quota that lasts hours is used up (Resend's daily or monthly email quota, HubSpot's daily API
    limit, or any provider asking to wait longer than the subscription's retry policy spans).

    Retrying within minutes cannot help and would only spend calls: the push handler records it in
    `sync_failures` (code `quota_exhausted`, which the digest and the ERROR-log alert pick up), and the
    step is deferred until `retry_after` has passed, so the redeliveries Pub/Sub still makes call nothing;
    once its attempts are spent the message waits in `<topic>-dlq` for a replay after the quota resets."""


class PermanentError(Exception):
    """Retrying cannot help (a 4xx validation error). Recorded in `sync_failures` and acknowledged."""

    def __init__(self, code: str, detail: str, *, provider: str = "", status: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.provider = provider
        self.status = status
