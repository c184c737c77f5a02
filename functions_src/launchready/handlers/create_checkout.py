"""`create_checkout`: a Stripe Checkout Session for the signed-in user, created server-side (the app never
holds a Stripe key) with the uid as client_reference_id and metadata.

One usable checkout per (uid, client_request_id) however often the app retries: the request's record in
`checkout_requests/` and a new idempotency key per failed attempt (docs/architecture.md, "Checkout").
"""

from __future__ import annotations

import uuid
from typing import Any

import flask
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from launchready.platform import log
from launchready.platform.auth import User, require_user
from launchready.platform.clients import db
from launchready.platform.config import settings
from launchready.platform.ledger import doc_id, now
from launchready.platform.validation import RequestValidator
from launchready.platform.web import HttpError, endpoint, json_response, parse_json_object, read_body
from launchready.providers import stripe
from launchready.records.tombstones import account_deleted

CHECKOUT_REQUESTS = "checkout_requests"

FUNCTION = "create_checkout"
MAX_BODY_BYTES = 8 * 1024
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["client_request_id"],
    "properties": {
        "client_request_id": {"type": "string", "pattern": UUID_PATTERN,
                              "description": "a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"},
        "price_id": {"type": "string", "pattern": "^price_[A-Za-z0-9_]{1,200}$",
                     "description": "a Stripe price id (price_ followed by up to 200 letters, digits or _)"},
    },
}
_validator = RequestValidator(REQUEST_SCHEMA, "checkout request")


@endpoint(FUNCTION)
def create_checkout(request: flask.Request) -> flask.Response:
    user = require_user(request)
    if account_deleted(user.uid):
        # Its subscriptions were just ended: a new one would bill an account nobody can use.
        raise HttpError(403, "account_deleted", "this account was deleted")
    body = validate(parse_json_object(read_body(request, max_bytes=MAX_BODY_BYTES)))
    price_id = allowed_price(body.get("price_id"))
    client_request_id = str(uuid.UUID(body["client_request_id"]))
    log.bind(uid=user.uid, client_request_id=client_request_id, price_id=price_id)
    session = create_session(user, price_id, client_request_id)
    log.info("checkout session created", checkout_session_id=session.id)
    return json_response({"id": session.id, "url": session.url})


def validate(body: dict[str, Any]) -> dict[str, Any]:
    return _validator.check(body)


def allowed_prices() -> list[str]:
    """STRIPE_PRICE_ID: the prices the app may offer, comma-separated; the first is the default."""
    return [price.strip() for price in settings().stripe_price_id.split(",") if price.strip()]


def allowed_price(requested: str | None) -> str:
    prices = allowed_prices()
    if not prices:
        # Without an allow-list any price in the account could be bought through this endpoint.
        raise HttpError(503, "checkout_not_configured",
                        "no price is configured for checkout (STRIPE_PRICE_ID)")
    if requested is None:
        return prices[0]
    if requested not in prices:
        raise HttpError(400, "price_not_allowed", "price_id is not a price this app offers",
                        price_id=requested)
    return requested


def idempotency_key(uid: str, client_request_id: str, attempt: int = 1) -> str:
    """Stripe's key for one attempt at one request: a new attempt (after a failure whose answer Stripe
    may have saved) gets a new key."""
    base = f"checkout:{uid}:{client_request_id}"
    return base if attempt <= 1 else f"{base}:{attempt}"


def session_params(user: User, price_id: str, client_request_id: str,
                   customer_id: str | None) -> dict[str, Any]:
    app_url = settings().app_url
    params: dict[str, Any] = {
        "mode": "subscription",
        "line_items": [{"price": price_id, "quantity": 1}],
        "client_reference_id": user.uid,
        "metadata": {"uid": user.uid, "client_request_id": client_request_id},
        # Subscription events do not carry the session's metadata; copy the uid onto the subscription.
        "subscription_data": {"metadata": {"uid": user.uid}},
        "success_url": f"{app_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"{app_url}/billing/cancel",
    }
    # A returning customer pays on their existing Stripe customer (one customer per user); Stripe
    # accepts either `customer` or `customer_email`, not both.
    if customer_id:
        params["customer"] = customer_id
    elif user.email:
        params["customer_email"] = user.email
    return params


def existing_customer(uid: str) -> str | None:
    snapshot = db().collection("users").document(uid).get()
    billing = (snapshot.to_dict() or {}).get("billing") if snapshot.exists else None
    customer = billing.get("customer_id") if isinstance(billing, dict) else None
    return customer if isinstance(customer, str) and customer.startswith("cus_") else None


def create_session(user: User, price_id: str, client_request_id: str) -> stripe.CheckoutSession:
    """The request's usable session: the one recorded, one an earlier failed attempt created, or a new
    one. Raises HttpError (409 for a reused client_request_id, 502 for Stripe's failures)."""
    customer = existing_customer(user.uid)
    ref = db().collection(CHECKOUT_REQUESTS).document(doc_id(f"{user.uid}:{client_request_id}"))
    request = _claim(ref, user.uid, client_request_id, price_id)
    try:
        session = _usable_session(request, user.uid, client_request_id)
        if session is None:
            session = stripe.create_checkout_session(
                session_params(user, price_id, client_request_id, customer),
                idempotency_key=idempotency_key(user.uid, client_request_id, int(request["attempt"])))
    except stripe.StripeError as exc:
        if not isinstance(exc, stripe.IdempotencyError):
            # Whatever Stripe did, the next retry looks first, then uses a fresh key.
            ref.update({"attempt": firestore.Increment(1), "last_error": type(exc).__name__,
                        "failed_at": now()})
        raise stripe.http_error(exc) from exc
    ref.update({"session_id": session.id, "session_at": now()})
    return session


def _claim(ref: firestore.DocumentReference, uid: str, client_request_id: str,
           price_id: str) -> dict[str, Any]:
    """The request's record, created on its first attempt; a different price under the same
    client_request_id is refused before Stripe is called."""
    snapshot = ref.get()
    if not snapshot.exists:
        record = {"uid": uid, "client_request_id": client_request_id, "price_id": price_id, "attempt": 1,
                  "session_id": None, "created_at": now()}
        try:
            ref.create(record)
            return record
        except AlreadyExists:  # a concurrent first attempt; use what it wrote
            snapshot = ref.get()
    record = snapshot.to_dict() or {}
    if record.get("price_id") != price_id:
        raise HttpError(409, "idempotency_conflict",
                        "this client_request_id was already used for a different checkout; use a new one")
    return record


def _usable_session(request: dict[str, Any], uid: str,
                    client_request_id: str) -> stripe.CheckoutSession | None:
    """The session this request already has (open or complete), found by its record or, after a failed
    attempt, by looking it up at Stripe; None when a new one must be created."""
    if request.get("session_id"):
        session = stripe.checkout_session(str(request["session_id"]))
        return session if session.status != "expired" else None
    if int(request.get("attempt", 1)) <= 1:
        return None
    session = stripe.find_checkout_session(client_reference_id=uid, client_request_id=client_request_id,
                                           created_since=request["created_at"])
    if session is not None:
        log.warning("an earlier failed attempt had created the session; returning it",
                    checkout_session_id=session.id)
    return session
