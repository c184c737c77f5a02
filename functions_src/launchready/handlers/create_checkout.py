"""`create_checkout`: a Stripe Checkout Session for the signed-in user, created server-side so the app
never holds a Stripe key. The session carries the uid (client_reference_id and metadata), which is how
billing_worker maps the payment back to the user.

One checkout per (uid, client_request_id), however often the app retries, and a working one after any
failure. Stripe's idempotency key alone cannot give both: Stripe saves the answer of a request that
began executing, INCLUDING a 500, and replays it for 24 hours
(https://docs.stripe.com/api/idempotent_requests), so a retry with the same key fails the same way;
and after 24 hours the key is forgotten. So `checkout_requests/{uid}:{client_request_id}` records each
request: the session it got (a retry returns it while it is usable), and the attempt number. A failed
attempt (5xx, timeout, anything) moves the request to the next attempt; the next retry first looks up a
session that the failed attempt may have created anyway (Checkout Sessions list, matched on
metadata.client_request_id and client_reference_id) and only if there is none creates one under a new
key derived from the attempt number (`checkout:{uid}:{client_request_id}` for the first,
`...:{n}` after). Two paid sessions for one request would need a session that both the record and the
lookup miss.
"""

import functools
import uuid
from datetime import datetime
from typing import Any

import flask
import stripe
from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from launchready.platform import log
from launchready.platform.auth import User, require_user
from launchready.platform.clients import db
from launchready.platform.config import secret, settings
from launchready.platform.ledger import doc_id, now
from launchready.platform.validation import RequestValidator
from launchready.platform.web import HttpError, endpoint, json_response, parse_json_object, read_body
from launchready.providers.http import Failure, Rule
from launchready.records.tombstones import account_deleted

CHECKOUT_REQUESTS = "checkout_requests"
# Look for a session created by an earlier attempt from a little before that attempt: clocks differ.
LOOKUP_SLACK_SECONDS = 300
LOOKUP_PAGE = 100

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


@functools.cache
def _stripe(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": api_base},
                               max_network_retries=STRIPE_NETWORK_RETRIES,
                               http_client=stripe.RequestsClient(timeout=timeout))


def stripe_client() -> stripe.StripeClient:
    config = settings()
    return _stripe(secret("STRIPE_API_KEY"), config.stripe_api_base, config.provider_timeout_seconds)


def create_session(user: User, price_id: str, client_request_id: str) -> stripe.checkout.Session:
    """The request's usable session: the one recorded, one an earlier failed attempt created, or a new
    one. Raises HttpError (409 for a reused client_request_id, 502 for Stripe's failures)."""
    customer = existing_customer(user.uid)
    ref = db().collection(CHECKOUT_REQUESTS).document(doc_id(f"{user.uid}:{client_request_id}"))
    request = _claim(ref, user.uid, client_request_id, price_id)
    try:
        session = _usable_session(request, user.uid, client_request_id)
        if session is None:
            params = session_params(user, price_id, client_request_id, customer)
            session = stripe_client().v1.checkout.sessions.create(
                params=params,  # type: ignore[arg-type]  # a plain dict of the SDK's TypedDict shape
                options={"idempotency_key": idempotency_key(user.uid, client_request_id,
                                                            int(request["attempt"]))})
    except stripe.StripeError as exc:
        if not isinstance(exc, stripe.IdempotencyError):
            # Whatever Stripe did, the next retry looks first, then uses a fresh key.
            ref.update({"attempt": firestore.Increment(1), "last_error": type(exc).__name__,
                        "failed_at": now()})
        raise provider_error(exc) from exc
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
                    client_request_id: str) -> stripe.checkout.Session | None:
    """The session this request already has (open or complete), found by its record or, after a failed
    attempt, by looking it up at Stripe; None when a new one must be created."""
    client = stripe_client()
    if request.get("session_id"):
        session = client.v1.checkout.sessions.retrieve(str(request["session_id"]))
        return session if session.status != "expired" else None
    if int(request.get("attempt", 1)) <= 1:
        return None
    since: datetime = request["created_at"]
    # Checkout Sessions have no search by metadata: list those created since the first attempt.
    params: dict[str, Any] = {"created": {"gte": int(since.timestamp()) - LOOKUP_SLACK_SECONDS},
                              "limit": LOOKUP_PAGE}
    page = client.v1.checkout.sessions.list(params=params)  # type: ignore[arg-type]
    for session in page.auto_paging_iter():
        metadata = session.metadata.to_dict() if session.metadata else {}
        if (session.client_reference_id == uid and metadata.get("client_request_id") == client_request_id
                and session.status != "expired"):
            log.warning("an earlier failed attempt had created the session; returning it",
                        checkout_session_id=session.id)
            return session
    return None


ERRORS_DOC = "https://docs.stripe.com/error-handling"
RATE_LIMITS_DOC = "https://docs.stripe.com/rate-limits"
IDEMPOTENCY_DOC = "https://docs.stripe.com/api/idempotent_requests"
# What each of stripe-python's errors means, as Stripe's error-handling, rate-limit and idempotency pages
# define it. Transient ones answer 502 `retryable: true`: the app retries with the same
# client_request_id, and create_session makes that retry safe and useful.
FAILURES: dict[type[stripe.StripeError], Rule] = {
    stripe.APIConnectionError: Rule(Failure.TRANSIENT, ERRORS_DOC),  # network: the outcome is unknown
    stripe.RateLimitError: Rule(Failure.TRANSIENT, RATE_LIMITS_DOC),  # 429, incl. lock_timeout
    stripe.APIError: Rule(Failure.TRANSIENT, ERRORS_DOC),  # 5xx (saved under the key), 409 key in use
    stripe.IdempotencyError: Rule(Failure.PERMANENT, IDEMPOTENCY_DOC),  # the key with other params
    stripe.AuthenticationError: Rule(Failure.PERMANENT, ERRORS_DOC),  # 401: the key is wrong
    stripe.PermissionError: Rule(Failure.PERMANENT, ERRORS_DOC),  # 403: a restricted key lacks a right
    stripe.InvalidRequestError: Rule(Failure.PERMANENT, ERRORS_DOC),  # 400/404, e.g. a deleted price
    stripe.CardError: Rule(Failure.PERMANENT, ERRORS_DOC),  # 402
}


def failure_rule(exc: stripe.StripeError) -> Rule:
    """The row of FAILURES for `exc` (its most specific class); unknown errors count as transient."""
    for cls in type(exc).__mro__:
        rule = FAILURES.get(cls)
        if rule is not None:
            return rule
    return Rule(Failure.TRANSIENT, ERRORS_DOC)


def provider_error(exc: stripe.StripeError) -> HttpError:
    """Stripe's failure as the endpoint's answer; the app only needs to know whether a retry can help."""
    log.warning("stripe rejected checkout", stripe_error=type(exc).__name__, stripe_code=exc.code,
                stripe_status=exc.http_status, stripe_request_id=exc.request_id, reason=exc.user_message)
    if isinstance(exc, stripe.IdempotencyError):
        return HttpError(409, "idempotency_conflict",
                         "this client_request_id was already used for a different checkout; use a new one")
    if failure_rule(exc).failure == Failure.TRANSIENT:
        return HttpError(502, "stripe_unavailable", "Stripe is unavailable, retry shortly", retryable=True)
    if isinstance(exc, (stripe.AuthenticationError, stripe.PermissionError)):
        return HttpError(502, "stripe_misconfigured", "checkout is misconfigured on the server",
                         retryable=False)
    return HttpError(502, "stripe_rejected", "Stripe rejected the checkout", retryable=False,
                     stripe_code=exc.code)
