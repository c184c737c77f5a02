"""Stripe in the sandbox as stripe-python 16.1.0 calls it, with Stripe's error shape, idempotency and modes.

A test key sees only test-mode objects and the one live key only live-mode ones; a repeat replays the stored
answer, 5xx included (docs/tools.md).
"""

import os
from collections.abc import Callable
from typing import Any

from ..faults import Fault
from ..idempotency import IdempotencyStore
from ..messages import SandboxRequest, SandboxResponse
from .base import Provider, basic_credentials, bearer_token
from .stripe_billing import Billing
from .stripe_checkout import PAY_PAGE, Checkout
from .stripe_control import StripeControl
from .stripe_events import EventLog, Origin
from .stripe_lists import StripeRequestError
from .stripe_objects import new_id
from .stripe_resources import Call, StripeApi

IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# The latency a benchmark states for a Stripe API call (POST /_sandbox/conditions {"latency_ms": ...}):
# the server-side part of a measured GET (curl: time_starttransfer 1.486 s - time_appconnect 1.145 s,
# https://github.com/stripe/stripe-php/issues/171). Stripe publishes no figure ("we don't have a document
# referencing the average response times", https://github.com/stripe/stripe-java/issues/570).
REAL_WORLD_LATENCY_MS = 340
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
LIVE_KEY_ENV = "SANDBOX_STRIPE_LIVE_KEY"
# Stripe's words for these errors. lock_timeout: as Stripe answers it (quoted in stripe/stripe-node#2056);
# rate limits: https://docs.stripe.com/rate-limits.
MESSAGES = {
    "lock_timeout": "This object cannot be accessed right now because another API request or Stripe "
    "process is currently accessing it. If you see this error intermittently, retry the request. If you see "
    "this error frequently and are making multiple concurrent requests to a single object, make "
    "your requests serially or at a lower rate.",
    "rate_limit": "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
}


class Stripe(Provider):
    name = "stripe"
    path_prefixes = ("/v1/", "/c/pay/")

    def reset(self) -> None:
        self._idempotency = IdempotencyStore(IDEMPOTENCY_TTL_SECONDS, self.clock.now)
        self.events = EventLog(self.clock.now)
        self.billing = Billing(self.clock.now, self.events)
        self.checkout = Checkout(self.billing, self.events)
        self.api = StripeApi(self.billing, self.events)
        self.control = StripeControl(self.billing, self.events)

    @property
    def idempotency(self) -> IdempotencyStore:
        return self._idempotency

    def clock_moved(self) -> None:
        """Stripe's billing catches up with the clock: renewals, trial ends, scheduled cancellations."""
        self.billing.settle()
        self.events.flush()

    def fault_response(self, request: SandboxRequest, fault: Fault) -> SandboxResponse:
        response = super().fault_response(request, fault)
        if fault.status >= 500 and request.method == "POST":
            # "Retries with the same key return the saved response, including 500 errors."
            self._idempotency.store_answer(request, response)
        return response

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "checkout_sessions": self.checkout.all(),
            "subscriptions": list(self.billing.subscriptions.values()),
            "customers": list(self.billing.customers.values()),
            "invoices": list(self.billing.invoices.values()),
            "charges": list(self.billing.charges.values()),
            "stripe_events": self.events.all(),
        }

    def error(self, status: int, code: str = "", message: str = "", param: str = "") -> SandboxResponse:
        """Stripe's error body, with `Stripe-Should-Retry` as stripe-python reads it
        (stripe/_http_client.py `_should_retry`): true for a 5xx and for a lock timeout; absent on a rate
        limit, which Stripe's libraries do not retry ("we don't retry real rate limits",
        stripe/stripe-dotnet#1886); false otherwise."""
        error_type = "api_error" if status >= 500 else "invalid_request_error"
        if status == 400 and code == "idempotency_error":
            error_type, code = "idempotency_error", ""
        if status == 409 and code == "idempotency_key_in_use":
            error_type = "idempotency_error"
        if status == 429 and not code:
            code = "rate_limit"
        error: dict[str, Any] = {
            "message": message or MESSAGES.get(code) or _default_message(status),
            "type": error_type,
        }
        if code:
            error.update(code=code, doc_url=f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}")
        if param:
            error["param"] = param
        headers = {"Request-Id": new_id("req_", 14)}
        if status >= 500 or code == "lock_timeout":
            headers["Stripe-Should-Retry"] = "true"
        elif code != "rate_limit":
            headers["Stripe-Should-Retry"] = "false"
        return SandboxResponse(status, {"error": error}, headers)

    def _key(self, request: SandboxRequest) -> str:
        basic = basic_credentials(request)
        return bearer_token(request) or (basic[0] if basic else "")

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        if PAY_PAGE.match(request.path):
            return None  # the hosted page is opened by the customer's browser, not with a secret key
        key = self._key(request)
        if not key:
            return self.error(
                401,
                message="You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        live_key = os.environ.get(LIVE_KEY_ENV, "")
        if not key.startswith(TEST_KEY_PREFIXES) and not (live_key and key == live_key):
            return self.error(401, message=f"Invalid API Key provided: {key[:8]}****{key[-4:]}")
        return None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        pay = PAY_PAGE.match(request.path)
        self.billing.settle()
        try:
            if pay and request.method == "GET":
                return self.checkout.pay_page(pay.group(1))
            if pay and request.method == "POST":
                return self.checkout.pay(pay.group(1), request)
            call = Call(
                livemode=not self._key(request).startswith(TEST_KEY_PREFIXES),
                origin=Origin(request_id=new_id("req_", 14), idempotency_key=request.idempotency_key or None),
                base_url=request.base_url,
            )
            if request.method == "POST":  # every POST accepts an Idempotency-Key
                return self._once(request, lambda: self._route(request, call))
            return self._route(request, call)  # GET and DELETE are idempotent by definition
        finally:
            self.events.flush()

    def handle_control(self, request: SandboxRequest) -> SandboxResponse:
        """A /_sandbox/stripe/ request (`stripe_control.py`)."""
        return self.control.handle(request)

    def _route(self, request: SandboxRequest, call: Call) -> SandboxResponse:
        try:
            if self.checkout.owns(request.path):
                return self.checkout.handle(request, call)
            if self.api.owns(request.path):
                return self.api.handle(request, call)
            raise StripeRequestError(
                f"Unrecognized request URL ({request.method}: {request.path}).", status=404
            )
        except StripeRequestError as exc:
            return self.error(exc.status, exc.code, exc.message, exc.param)

    def _once(self, request: SandboxRequest, execute: Callable[[], SandboxResponse]) -> SandboxResponse:
        """A POST under Stripe's idempotency rules."""
        key = request.idempotency_key
        return self._idempotency.answer_once(
            request,
            execute,
            lambda: self.error(
                400,
                "idempotency_error",
                "Keys for idempotent requests can only be used with the same parameters they were first "
                f"used with. Try using a key other than '{key}' if you meant to execute a different "
                "request.",
            ),
            # Stripe saves a result only once the endpoint started executing, not for rejected params.
            stored_status=200,
            replay_headers={"Idempotent-Replayed": "true"},
            in_flight=lambda: self.error(
                409,
                "idempotency_key_in_use",
                "There is currently another in-progress request using this Idempotent Key (that probably "
                f"means you submitted twice, and the other request is still going through): {key}. "
                "Please try again later.",
            ),
        )


def _default_message(status: int) -> str:
    if status >= 500:
        return "An unknown error occurred"
    return "Invalid request"
