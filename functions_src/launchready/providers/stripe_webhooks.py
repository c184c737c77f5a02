"""Stripe webhook deliveries: the `Stripe-Signature` check and the event's shape, before anything is
written. A delivery passes only with a valid HMAC under one of the active signing secrets (several
while a secret is rolled) and a timestamp within SIGNATURE_TOLERANCE_SECONDS."""

import json
import time
from dataclasses import dataclass
from typing import Any

import stripe

from launchready.platform.web import HttpError

SIGNATURE_TOLERANCE_SECONDS = 300


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: int
    livemode: bool
    payload: dict[str, Any]  # the full event JSON as Stripe sent it

    @property
    def ledger_key(self) -> str:
        return f"stripe:{self.id}"


def signing_secrets(raw: str) -> list[str]:
    """STRIPE_WEBHOOK_SECRET holds one or more comma-separated `whsec_` secrets (old and new while
    rolling)."""
    return [part.strip() for part in raw.split(",") if part.strip()]


def _signed_timestamp(header: str) -> int | None:
    for item in header.split(","):
        name, _, value = item.strip().partition("=")
        if name == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def verify_signature(payload: str, header: str | None, secrets: list[str], *,
                     tolerance: int = SIGNATURE_TOLERANCE_SECONDS, now: float | None = None) -> None:
    """Raise a 400 HttpError unless `header` is a valid, recent Stripe-Signature for `payload`.

    stripe-python checks the HMAC; the age is checked here so that a replayed old delivery gets
    its own error code instead of a generic signature failure."""
    if not header:
        raise HttpError(400, "missing_signature", "the Stripe-Signature header is required")
    if not any(_matches(payload, header, secret) for secret in secrets):
        raise HttpError(400, "invalid_signature", "no valid signature for any active webhook signing secret")
    timestamp = _signed_timestamp(header)
    current = time.time() if now is None else now
    if timestamp is None or abs(current - timestamp) > tolerance:
        # A future timestamp beyond the tolerance is as suspect as an old one (clock skew aside).
        raise HttpError(400, "stale_timestamp",
                        f"the signature timestamp is outside the {tolerance} s tolerance")


def _matches(payload: str, header: str, secret: str) -> bool:
    try:
        # tolerance=None: only the HMAC here; verify_signature reports the age separately.
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=None)
    except stripe.SignatureVerificationError:
        return False
    return True


def parse_event(payload: str) -> StripeEvent:
    """The verified body as a Stripe event (a signed body that is not one is still rejected)."""
    try:
        body = json.loads(payload)
    except json.JSONDecodeError as exc:
        raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict) or body.get("object") != "event":
        raise HttpError(400, "invalid_event", "body is not a Stripe event object")
    event_id, event_type, created = body.get("id"), body.get("type"), body.get("created")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or "/" in event_id:
        raise HttpError(400, "invalid_event", "event id must be a Stripe event id (evt_...)")
    if not isinstance(event_type, str) or not event_type:
        raise HttpError(400, "invalid_event", "event type is missing")
    if not isinstance(created, int) or isinstance(created, bool):
        raise HttpError(400, "invalid_event", "event created must be a unix timestamp")
    if not isinstance(body.get("data"), dict) or not isinstance(body["data"].get("object"), dict):
        raise HttpError(400, "invalid_event", "event data.object is missing")
    return StripeEvent(id=event_id, type=event_type, created=created, livemode=bool(body.get("livemode")),
                       payload=body)


def decode_payload(body: bytes) -> str:
    # Stripe signs the UTF-8 text of the body; anything else cannot be a genuine delivery.
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HttpError(400, "malformed_body", "body is not UTF-8 text") from exc
