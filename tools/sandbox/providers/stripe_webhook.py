"""The local Stripe webhook endpoint the sandbox delivers events to, configured from the environment.

Every active signing secret signs each payload, as Stripe does during a rotation (docs/tools.md).
"""

import hashlib
import hmac
import json
import os
import time
from typing import Any

import requests

WEBHOOK_URL_ENV = "SANDBOX_STRIPE_WEBHOOK_URL"
WEBHOOK_SECRET_ENV = "STRIPE_WEBHOOK_SECRET"  # pragma: allowlist secret (a variable name)
WEBHOOK_EVENTS_ENV = "SANDBOX_STRIPE_WEBHOOK_EVENTS"
DEFAULT_ENABLED_EVENTS = "checkout.session.completed"
DELIVERY_TIMEOUT_SECONDS = 10


def configured() -> bool:
    """Whether there is an endpoint: a URL and at least one signing secret."""
    return bool(os.environ.get(WEBHOOK_URL_ENV) and _secrets())


def enabled(event_type: str) -> bool:
    """Whether there is an endpoint and it is enabled for `event_type`."""
    wanted = {part.strip() for part in os.environ.get(WEBHOOK_EVENTS_ENV, DEFAULT_ENABLED_EVENTS).split(",")}
    return configured() and ("*" in wanted or event_type in wanted)


def why_not_sent(event_type: str) -> str:
    """Why an event of `event_type` was not sent on its own."""
    if not configured():
        return (
            f"not sent: the sandbox was started without {WEBHOOK_URL_ENV} and {WEBHOOK_SECRET_ENV} "
            "(`make up` sets both)"
        )
    return f"not sent: the local endpoint is not enabled for {event_type} ({WEBHOOK_EVENTS_ENV})"


def _secrets() -> list[str]:
    return [part.strip() for part in os.environ.get(WEBHOOK_SECRET_ENV, "").split(",") if part.strip()]


def signature(payload: bytes, secrets: list[str], timestamp: int) -> str:
    signed = f"{timestamp}.".encode() + payload
    return ",".join(
        [
            f"t={timestamp}",
            *("v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest() for secret in secrets),
        ]
    )


def send(event: dict[str, Any]) -> tuple[int | None, Any]:
    """POST the event, signed, to the endpoint: (status, answer), or (None, why not) when it was not
    sent or nobody answered."""
    url, secrets = os.environ.get(WEBHOOK_URL_ENV, ""), _secrets()
    if not url or not secrets:
        return None, why_not_sent(event["type"])
    payload = json.dumps(event).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        "Stripe-Signature": signature(payload, secrets, int(time.time())),
    }
    try:
        response = requests.post(url, data=payload, timeout=DELIVERY_TIMEOUT_SECONDS, headers=headers)
    except requests.RequestException as exc:
        return None, f"not delivered: the webhook at {url} does not answer ({type(exc).__name__})"
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:200]
