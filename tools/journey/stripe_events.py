"""Stripe webhook deliveries as Stripe sends them: the signed header and the event objects the journey posts.

The signature is Stripe's scheme (https://docs.stripe.com/webhooks#verify-manually); the objects follow the
API version pinned on the endpoint (STRIPE_API_VERSION).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

STRIPE_API_VERSION = "2025-08-27.basil"


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends: HMAC-SHA256 of "<timestamp>.<payload>" with the
    endpoint's whsec_ secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(
    event_type: str, data_object: dict[str, Any], *, event_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """An event in the shape Stripe delivers it (API version pinned on the endpoint)."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_session_completed(
    session_id: str, uid: str, email: str, customer: str, subscription: str
) -> dict[str, Any]:
    """The Checkout Session of a paid subscription checkout, as in checkout.session.completed."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "paid",
        "client_reference_id": uid,
        "customer": customer,
        "customer_details": {"email": email},
        "customer_email": None,
        "subscription": subscription,
        "amount_total": 1900,
        "currency": "usd",
        "livemode": False,
        "metadata": {"uid": uid},
    }


def failed_invoice(
    invoice_id: str, customer: str, subscription: str, email: str, price_id: str
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "customer_email": email,
        "billing_reason": "subscription_cycle",
        "status": "open",
        "paid": False,
        "attempt_count": 1,
        "amount_due": 1900,
        "amount_paid": 0,
        "currency": "usd",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription}},
        "subscription": subscription,
        "lines": {
            "object": "list",
            "data": [
                {
                    "object": "line_item",
                    "amount": 1900,
                    "currency": "usd",
                    # The line a subscription item generated (API 2025-03-31.basil and later).
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "subscription": subscription,
                            "proration": False,
                            "invoice_item": None,
                        },
                    },
                    "period": {"start": now, "end": now + 30 * 86400},
                    "pricing": {"type": "price_details", "price_details": {"price": price_id}},
                }
            ],
        },
        "next_payment_attempt": now + 3 * 86400,
    }

