"""The sandbox's clock: real time plus an offset a test can move forward, so time-bound provider rules
(idempotency windows: Stripe 24 h, Resend 24 h, Zendesk 2 h) can be exercised without waiting."""

import time
from datetime import UTC, datetime


class SandboxClock:
    def __init__(self) -> None:
        self.offset_seconds = 0.0

    def now(self) -> float:
        """Unix seconds as the providers see them."""
        return time.time() + self.offset_seconds

    def iso_now(self) -> str:
        return datetime.fromtimestamp(self.now(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset_seconds += seconds

    def reset(self) -> None:
        self.offset_seconds = 0.0

    def as_dict(self) -> dict[str, float | str]:
        return {"now": self.now(), "iso": self.iso_now(), "offset_seconds": self.offset_seconds}
