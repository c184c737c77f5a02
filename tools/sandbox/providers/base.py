"""What the sandbox server needs from each provider: which paths it owns, its auth check, its error
shape, its endpoints and its inspectable state."""

import abc
import base64
import binascii
from datetime import UTC, datetime
from typing import Any

from ..clock import SandboxClock
from ..faults import Fault
from ..idempotency import IdempotencyStore
from ..messages import SandboxRequest, SandboxResponse


class Provider(abc.ABC):
    name: str
    path_prefixes: tuple[str, ...]

    def __init__(self, clock: SandboxClock | None = None) -> None:
        self.clock = clock or SandboxClock()
        self.reset()

    @property
    def idempotency(self) -> IdempotencyStore | None:
        """The provider's idempotency-key store, if it honours Idempotency-Key."""
        return None

    def fault_response(self, request: SandboxRequest, fault: Fault) -> SandboxResponse:
        """The answer to a `status` fault: the provider's error shape, plus Retry-After when the fault
        gives one. Providers that keep error answers under an idempotency key (Stripe) override this."""
        response = self.error(fault.status, fault.code, fault.message)
        if fault.retry_after is not None:
            response.headers["Retry-After"] = str(int(fault.retry_after))
        return response

    def clock_moved(self) -> None:
        """The sandbox clock moved forward: do what the provider does on its own by then (Stripe renews)."""
        return None

    def owns(self, path: str) -> bool:
        return path.startswith(self.path_prefixes)

    @abc.abstractmethod
    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        """None when the credentials are acceptable, else the provider's 401 answer."""

    @abc.abstractmethod
    def error(self, status: int, code: str = "", message: str = "") -> SandboxResponse:
        """An error answer in the provider's own shape (also used by injected faults)."""

    @abc.abstractmethod
    def handle(self, request: SandboxRequest) -> SandboxResponse: ...

    @abc.abstractmethod
    def state(self) -> dict[str, list[dict[str, Any]]]: ...

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget everything: called on construction and by the sandbox's reset endpoint."""


def bearer_token(request: SandboxRequest) -> str:
    scheme, _, token = request.header("Authorization").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def basic_credentials(request: SandboxRequest) -> tuple[str, str] | None:
    scheme, _, encoded = request.header("Authorization").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep else None


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
