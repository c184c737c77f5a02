"""What the two app stores the sandbox plays (App Store, Google Play) share beyond a provider's API: control
endpoints under /_sandbox/<store>/ that change a subscription the way its customer or the store would, and
push what the store pushes about it. Invariant: a control request changes the store's state under the
sandbox's lock and pushes the notification after releasing it, so a receiver that calls the store's API
back while handling the push (re-reading the truth) is answered instead of waiting on the lock.
"""

from __future__ import annotations

import abc
import re
import sys
import threading
from typing import Any

from ..messages import SandboxRequest, SandboxResponse
from .base import Provider


class ControlError(Exception):
    """A control request the store cannot carry out: `status` 400 (malformed), 404 (no such subscription)
    or 409 (not possible in the subscription's state)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> SandboxResponse:
        return SandboxResponse(self.status, {"error": "invalid_control", "message": str(self)})


_ACTION = re.compile(r"^/subscriptions/([^/]+)/([a-z_]+)$")


class StoreProvider(Provider):
    @property
    def control_prefix(self) -> str:
        return f"/_sandbox/{self.name}"

    def owns_control(self, path: str) -> bool:
        return path == self.control_prefix or path.startswith(self.control_prefix + "/")

    def action_of(self, route: str) -> tuple[str, str]:
        """(subscription id, action) of a control route /subscriptions/{id}/{action}; 404 otherwise."""
        match = _ACTION.match(route)
        if match is None:
            raise ControlError(404, f"no route POST {self.control_prefix}{route}")
        return match.group(1), match.group(2)

    @abc.abstractmethod
    def control(self, request: SandboxRequest, lock: threading.RLock) -> SandboxResponse:
        """Answer a request under `control_prefix`; take `lock` only while reading or changing state."""


def body_of(request: SandboxRequest) -> dict[str, Any]:
    """The control request's JSON object (an empty body is an empty object)."""
    if request.body is None:
        return {}
    if request.body_error or not isinstance(request.body, dict):
        raise ControlError(400, request.body_error or "expected a JSON object")
    return request.body


def option(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    """`body[name]` checked to be a `kind` (bool is not an int here), or `default` when absent."""
    value = body.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ControlError(400, f"{name}: expected {kind.__name__}, got {value!r}")
    return value


def sandbox_bug(store: str, what: str, problems: list[str]) -> SandboxResponse:
    """The loud 500 the sandbox answers when its own answer breaks the store's contract (the same shape as
    `conformance.Conformance.vouch` gives for the OpenAPI-held providers)."""
    sys.stderr.write(f"SANDBOX BUG: {store} {what} breaks the store's contract:\n"
                     + "".join(f"  - {problem}\n" for problem in problems))
    sys.stderr.flush()
    return SandboxResponse(500, {"error": "sandbox_contract_violation",
                                 "message": f"the sandbox's {store} {what} breaks the store's contract",
                                 "problems": problems})
