"""`create_checkout`: a Stripe Checkout Session for the signed-in user, created server-side so the app
never holds a Stripe key. The session carries the uid (client_reference_id and metadata), which is how
billing_worker maps the payment back to the user. The Stripe idempotency key is derived from the
uid and the app's client_request_id, so a retried tap returns the same session instead of a second one.
"""

import functools
import uuid
from typing import Any

import flask
import stripe

from . import log
from .auth import User, require_user
from .clients import db
from .config import secret, settings
from .validation import RequestValidator
from .web import HttpError, endpoint, json_response, parse_json_object, read_body

FUNCTION = "create_checkout"
MAX_BODY_BYTES = 8 * 1024
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# The SDK's own retries reuse the idempotency key; one is enough while the user is waiting.
STRIPE_NETWORK_RETRIES = 1

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


def idempotency_key(uid: str, client_request_id: str) -> str:
    return f"checkout:{uid}:{client_request_id}"


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


@functools.cache
def _stripe(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": api_base},
                               max_network_retries=STRIPE_NETWORK_RETRIES,
                               http_client=stripe.RequestsClient(timeout=timeout))


def stripe_client() -> stripe.StripeClient:
    config = settings()
    return _stripe(secret("STRIPE_API_KEY"), config.stripe_api_base, config.provider_timeout_seconds)


def create_session(user: User, price_id: str, client_request_id: str) -> stripe.checkout.Session:
    params = session_params(user, price_id, client_request_id, existing_customer(user.uid))
    try:
        return stripe_client().v1.checkout.sessions.create(
            params=params,  # type: ignore[arg-type]  # a plain dict of the SDK's TypedDict shape
            options={"idempotency_key": idempotency_key(user.uid, client_request_id)})
    except stripe.StripeError as exc:
        raise provider_error(exc) from exc


def provider_error(exc: stripe.StripeError) -> HttpError:
    """Stripe's failure as the endpoint's answer; the app only needs to know whether a retry can help."""
    log.warning("stripe rejected checkout", stripe_error=type(exc).__name__, stripe_code=exc.code,
                stripe_status=exc.http_status, stripe_request_id=exc.request_id, reason=exc.user_message)
    if isinstance(exc, stripe.IdempotencyError):
        return HttpError(409, "idempotency_conflict",
                         "this client_request_id was already used for a different checkout; use a new one")
    if isinstance(exc, (stripe.APIConnectionError, stripe.RateLimitError, stripe.APIError)):
        return HttpError(502, "stripe_unavailable", "Stripe is unavailable, retry shortly", retryable=True)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return HttpError(502, "stripe_misconfigured", "checkout is misconfigured on the server",
                         retryable=False)
    return HttpError(502, "stripe_rejected", "Stripe rejected the checkout", retryable=False,
                     stripe_code=exc.code)
