"""Stripe's API through stripe-python: the client, Checkout Sessions, subscription cancellation, and the
one failure table (`FAILURES`) that classifies every Stripe error for the endpoints and the workers.

Each call goes to STRIPE_API_BASE with STRIPE_API_KEY; a failure is transient or permanent only as
Stripe's own pages define it (each row cites one).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import stripe

from launchready.platform import log
from launchready.platform.config import secret, settings
from launchready.platform.errors import PermanentError, TransientError
from launchready.platform.web import HttpError
from launchready.providers.http import Failure, Rule

# The SDK's names the handlers catch and annotate with, so they need no second Stripe import. Its
# resource classes load on first use (stripe-python imports them lazily), so they are named for type
# checking only and a cold start does not pay for them.
StripeError = stripe.StripeError
IdempotencyError = stripe.IdempotencyError
if TYPE_CHECKING:
    from stripe import Subscription
    from stripe.checkout import Session as CheckoutSession

T = TypeVar("T")

# The SDK's own retries reuse the idempotency key; one is enough while a user or a trigger is waiting.
NETWORK_RETRIES = 1
# Look for a session created by an earlier attempt from a little before that attempt: clocks differ.
LOOKUP_SLACK_SECONDS = 300
PAGE_SIZE = 100
LIVE_KEY_PREFIXES = ("sk_live_", "rk_live_")

ERRORS_DOC = "https://docs.stripe.com/error-handling"
RATE_LIMITS_DOC = "https://docs.stripe.com/rate-limits"
IDEMPOTENCY_DOC = "https://docs.stripe.com/api/idempotent_requests"
# What each of stripe-python's errors means, as Stripe's error-handling, rate-limit and idempotency pages
# define it.
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


@functools.cache
def _client(api_key: str, api_base: str, timeout: float) -> stripe.StripeClient:
    return stripe.StripeClient(api_key, base_addresses={"api": api_base},
                               max_network_retries=NETWORK_RETRIES,
                               http_client=stripe.RequestsClient(timeout=timeout))


def client() -> stripe.StripeClient:
    """The process's client for the current key, base URL and timeout. Raises MissingSetting without
    STRIPE_API_KEY."""
    config = settings()
    return _client(secret("STRIPE_API_KEY"), config.stripe_api_base, config.provider_timeout_seconds)


def live_key() -> bool:
    """Whether STRIPE_API_KEY is a live-mode key: `sk_live_` or `rk_live_`; test-mode and sandbox keys
    are `sk_test_`/`rk_test_` (https://docs.stripe.com/keys). Every Stripe object and event carries the
    mode it exists in as `livemode`. Raises MissingSetting without the key."""
    return secret("STRIPE_API_KEY").startswith(LIVE_KEY_PREFIXES)


def failure_rule(exc: stripe.StripeError) -> Rule:
    """The row of FAILURES for `exc` (its most specific class); unknown errors count as transient."""
    for cls in type(exc).__mro__:
        rule = FAILURES.get(cls)
        if rule is not None:
            return rule
    return Rule(Failure.TRANSIENT, ERRORS_DOC)


# ---- failures as the callers answer them ---------------------------------------------------------


def http_error(exc: stripe.StripeError) -> HttpError:
    """Stripe's failure as an endpoint's 409/502 answer: the app only needs to know whether a retry
    (with the same request id) can help."""
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


def classified(call: Callable[[], T]) -> T:
    """`call()`, a Stripe failure raised as the worker's TransientError or PermanentError (FAILURES)."""
    try:
        return call()
    except stripe.StripeError as exc:
        if failure_rule(exc).failure == Failure.PERMANENT:
            raise PermanentError(str(exc.code or type(exc).__name__), str(exc.user_message or exc),
                                 provider="stripe", status=exc.http_status) from exc
        raise TransientError(f"stripe: {type(exc).__name__}: {exc.user_message}") from exc


# ---- Checkout Sessions (https://docs.stripe.com/api/checkout/sessions) ---------------------------


def create_checkout_session(params: dict[str, Any], *, idempotency_key: str) -> CheckoutSession:
    """POST /v1/checkout/sessions under `idempotency_key`. Raises the SDK's StripeError."""
    return client().v1.checkout.sessions.create(
        params=params,  # type: ignore[arg-type]  # a plain dict of the SDK's TypedDict shape
        options={"idempotency_key": idempotency_key})


def checkout_session(session_id: str) -> CheckoutSession:
    """GET /v1/checkout/sessions/{id}. Raises the SDK's StripeError."""
    return client().v1.checkout.sessions.retrieve(session_id)


def find_checkout_session(*, client_reference_id: str, client_request_id: str,
                          created_since: datetime) -> CheckoutSession | None:
    """A session that is not expired, created since `created_since` (less LOOKUP_SLACK_SECONDS) for
    this client_reference_id and `metadata.client_request_id`, or None. Checkout Sessions have no search
    by metadata, so those created since are listed. Raises the SDK's StripeError."""
    params: dict[str, Any] = {"created": {"gte": int(created_since.timestamp()) - LOOKUP_SLACK_SECONDS},
                              "limit": PAGE_SIZE}
    page = client().v1.checkout.sessions.list(params=params)  # type: ignore[arg-type]
    for session in page.auto_paging_iter():
        metadata = session.metadata.to_dict() if session.metadata else {}
        if (session.client_reference_id == client_reference_id
                and metadata.get("client_request_id") == client_request_id and session.status != "expired"):
            return session
    return None


# ---- subscriptions (https://docs.stripe.com/api/subscriptions) -----------------------------------


def subscriptions(customer: str) -> Iterator[Subscription]:
    """Every subscription of the customer, whatever its status. Raises TransientError /
    PermanentError (`classified`)."""
    listed = classified(lambda: client().v1.subscriptions.list(
        params={"customer": customer, "status": "all", "limit": PAGE_SIZE}))
    yield from listed.auto_paging_iter()


def cancel_subscription(subscription_id: str) -> str:
    """End the subscription now (DELETE /v1/subscriptions/{id}, https://docs.stripe.com/api/subscriptions/cancel):
    "canceled", or "already_canceled" when it ended meanwhile. DELETE is idempotent by definition and
    Stripe ignores idempotency keys on it."""
    return _ended_already_or(lambda: client().v1.subscriptions.cancel(subscription_id), "canceled")


def cancel_at_period_end(subscription_id: str, *, idempotency_key: str) -> str:
    """Let the subscription run out (`cancel_at_period_end=true`,
    https://docs.stripe.com/api/subscriptions/update#update_subscription-cancel_at_period_end):
    "cancel_at_period_end", or "already_canceled" when it ended meanwhile."""
    return _ended_already_or(lambda: client().v1.subscriptions.update(
        subscription_id, params={"cancel_at_period_end": True},
        options={"idempotency_key": idempotency_key}), "cancel_at_period_end")


def _ended_already_or(call: Callable[[], Any], action: str) -> str:
    """Run `call`; a subscription that ended since it was listed answers 404 (cancel) or 400 (update),
    which means the work is done (stripe/stripe-go#1887, BasedHardware/omi#11289)."""
    try:
        classified(call)
    except PermanentError as exc:
        if exc.code == "resource_missing" or "canceled subscription" in exc.detail:
            return "already_canceled"
        raise
    return action
