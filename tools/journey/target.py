"""What the founder's journey needs of its target, and the waits and reads every target shares.

A target (`LocalStack`, `DeployedStack`) raises `NotChecked` for an outcome it cannot read; the journey
reports it as not checked, never as passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import requests

T = TypeVar("T")


class WaitTimeout(AssertionError):
    pass


class NotChecked(Exception):
    """An outcome this target cannot read (e.g. a provider's API without credentials): reported as not
    checked, never as passed. The message says what is missing."""


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 30, interval: float = 0.25, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; that value is returned. The last exception
    raised by `check` (if any) is kept in the timeout message."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, KeyError, ValueError, AssertionError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)



@dataclass(frozen=True)
class AuthUser:
    uid: str
    email: str
    password: str
    id_token: str
    refresh_token: str



class JourneyTarget(Protocol):
    """What the founder's journey (tools/journey/steps.py) uses of its target: `LocalStack` here,
    `DeployedStack` (tools/journey/deployed_stack.py). A read the target cannot make raises NotChecked."""

    def sign_up(self, *, display_name: str | None = None) -> AuthUser: ...
    def sign_in(self, user: AuthUser) -> AuthUser: ...
    def custom_claims(self, user: AuthUser) -> dict[str, Any]: ...
    def create_profile(self, user: AuthUser, *, display_name: str = "") -> requests.Response: ...
    def get_document(self, path: str, *, as_user: AuthUser | None = None) -> dict[str, Any] | None: ...
    def call(self, function: str, user: AuthUser, body: dict[str, Any]) -> requests.Response: ...
    def post_stripe_event(self, event: dict[str, Any]) -> requests.Response: ...
    def checkout_session(self, session_id: str) -> dict[str, Any] | None: ...
    def pay(self, session_id: str, user: AuthUser) -> dict[str, Any]: ...
    def contact(self, email: str) -> dict[str, Any] | None: ...
    def emails_to(self, address: str) -> list[dict[str, Any]]: ...
    def tickets(self, external_id: str) -> list[dict[str, Any]]: ...
    def provider_call_count(self) -> int: ...



def contact_tags(contact: dict[str, Any]) -> set[str]:
    value = contact["properties"].get("launchready_tags") or ""
    return {tag for tag in value.split(";") if tag}


def email_tags(email: dict[str, Any]) -> dict[str, str]:
    return {tag["name"]: tag["value"] for tag in email.get("tags") or []}

