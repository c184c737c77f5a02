"""Stripe Checkout Sessions as stripe-python calls them, with Stripe's idempotency.

A repeat replays the stored answer, 5xx included (docs.stripe.com/api/idempotent_requests; docs/tools.md).
"""

import hashlib
import hmac
import html
import json
import os
import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

import requests

from ..faults import Fault
from ..idempotency import IdempotencyStore
from ..messages import SandboxRequest, SandboxResponse
from .base import Provider, basic_credentials, bearer_token
from .stripe_prices import SANDBOX_CURRENCY, SANDBOX_UNIT_AMOUNT
from .stripe_subscriptions import SUBSCRIPTIONS_PATH, Subscriptions

SESSIONS_PATH = "/v1/checkout/sessions"
_SESSION_PATH = re.compile(r"^/v1/checkout/sessions/(cs_test_[A-Za-z0-9]+)$")
_PAY_PAGE = re.compile(r"^/c/pay/(cs_test_[A-Za-z0-9]+)$")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
# Where the pay page's button sends the signed checkout.session.completed (set by `make up`).
WEBHOOK_URL_ENV = "SANDBOX_STRIPE_WEBHOOK_URL"
WEBHOOK_SECRET_ENV = "STRIPE_WEBHOOK_SECRET"
API_VERSION = "2025-08-27.basil"
MODES = ("payment", "setup", "subscription")
_ALPHABET = string.ascii_letters + string.digits


def _random_id(prefix: str, length: int) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


class Stripe(Provider):
    name = "stripe"
    path_prefixes = ("/v1/", "/c/pay/")

    def reset(self) -> None:
        self._sessions: dict[str, dict[str, Any]] = {}
        self._idempotency = IdempotencyStore(IDEMPOTENCY_TTL_SECONDS, self.clock.now)
        self._subscriptions = Subscriptions(self.clock.now)

    @property
    def idempotency(self) -> IdempotencyStore:
        return self._idempotency

    def fault_response(self, request: SandboxRequest, fault: Fault) -> SandboxResponse:
        response = super().fault_response(request, fault)
        if fault.status >= 500 and request.method == "POST":
            # "Retries with the same key return the saved response, including 500 errors."
            self._idempotency.store_answer(request, response)
        return response

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {"checkout_sessions": list(self._sessions.values()),
                "subscriptions": self._subscriptions.all()}

    def error(self, status: int, code: str = "", message: str = "", param: str = "") -> SandboxResponse:
        error_type = "api_error" if status >= 500 else "invalid_request_error"
        if status == 400 and code == "idempotency_error":
            error_type, code = "idempotency_error", ""
        if status == 409 and code == "idempotency_key_in_use":
            error_type = "idempotency_error"
        error: dict[str, Any] = {"message": message or _default_message(status), "type": error_type}
        if status == 429 and not code:
            code = "rate_limit"
        if code:
            error.update(code=code, doc_url=f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}")
        if param:
            error["param"] = param
        headers = {"Request-Id": _random_id("req_", 14)}
        # stripe-python retries only when the server says so or on 409/5xx; say it like Stripe does.
        headers["Stripe-Should-Retry"] = "true" if status == 429 or status >= 500 else "false"
        return SandboxResponse(status, {"error": error}, headers)

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        if _PAY_PAGE.match(request.path):
            return None  # the hosted page is opened by the customer's browser, not with a secret key
        basic = basic_credentials(request)
        key = bearer_token(request) or (basic[0] if basic else "")
        if not key:
            return self.error(
                401,
                message="You did not provide an API key. You need to provide your API key in the "
                "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
            )
        # Only test-mode keys: a live key in a local configuration is a mistake worth stopping loudly.
        if not key.startswith(("sk_test_", "rk_test_")):
            return self.error(401, message=f"Invalid API Key provided: {key[:8]}****{key[-4:]}")
        return None

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        pay = _PAY_PAGE.match(request.path)
        if request.method == "GET" and pay:
            return self._pay_page(pay.group(1))
        if request.method == "POST" and pay:
            return self._pay(pay.group(1), request)
        if request.path == SUBSCRIPTIONS_PATH or request.path.startswith(SUBSCRIPTIONS_PATH + "/"):
            if request.method != "POST":  # GET and DELETE are idempotent by definition; keys do nothing
                return self._subscriptions.handle(request, self.error)
            return self._once(request, lambda: self._subscriptions.handle(request, self.error))
        session_match = _SESSION_PATH.match(request.path)
        if request.method == "GET" and session_match:
            session = self._sessions.get(session_match.group(1))
            if session is None:
                return self.error(
                    404,
                    "resource_missing",
                    f"No such checkout.session: '{session_match.group(1)}'",
                    "session",
                )
            return self._ok(self._current(session))
        if request.method == "GET" and request.path == SESSIONS_PATH:
            return self._list(request)
        if request.method != "POST" or request.path != SESSIONS_PATH:
            return self.error(404, message=f"Unrecognized request URL ({request.method}: {request.path}).")
        return self._once(request, lambda: self._create(request))

    def _once(self, request: SandboxRequest, execute: Callable[[], SandboxResponse]) -> SandboxResponse:
        """A POST under Stripe's idempotency rules (every POST accepts an Idempotency-Key)."""
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

    def _current(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as of the sandbox clock: an open session past `expires_at` has expired."""
        if session["status"] == "open" and self.clock.now() >= session["expires_at"]:
            session.update(status="expired", url=None)
        return session

    def _list(self, request: SandboxRequest) -> SandboxResponse:
        """GET /v1/checkout/sessions: newest first, `limit` (1-100, default 10), `starting_after`,
        `created[gt|gte|lt|lte]`, `status` and `customer` filters, as the List endpoint documents."""
        query = {name: values[-1] for name, values in request.query.items()}
        try:
            limit = int(query.get("limit", "10"))
            bounds = {op: int(query[f"created[{op}]"]) for op in ("gt", "gte", "lt", "lte")
                      if f"created[{op}]" in query}
        except ValueError:
            return self.error(400, "", "Invalid integer", "limit")
        if not 1 <= limit <= 100:
            return self.error(400, "", "Invalid limit: must be between 1 and 100", "limit")
        sessions = sorted((self._current(s) for s in self._sessions.values()),
                          key=lambda s: (s["created"], s["id"]), reverse=True)
        checks = {"gt": lambda c, v: c > v, "gte": lambda c, v: c >= v, "lt": lambda c, v: c < v,
                  "lte": lambda c, v: c <= v}
        sessions = [s for s in sessions if all(checks[op](s["created"], v) for op, v in bounds.items())
                    and query.get("status") in (None, s["status"])
                    and query.get("customer") in (None, s["customer"])]
        after = query.get("starting_after")
        if after:
            ids = [s["id"] for s in sessions]
            sessions = sessions[ids.index(after) + 1:] if after in ids else []
        page = sessions[:limit]
        return self._ok({"object": "list", "data": page, "has_more": len(sessions) > limit,
                         "url": SESSIONS_PATH})

    def _ok(self, body: dict[str, Any]) -> SandboxResponse:
        return SandboxResponse(200, body, {"Request-Id": _random_id("req_", 14)})

    def _create(self, request: SandboxRequest) -> SandboxResponse:
        params = request.body if isinstance(request.body, dict) else {}
        problem = _validate(params)
        if problem:
            return self.error(400, *problem)
        line_items = params.get("line_items") or []
        amount = sum(SANDBOX_UNIT_AMOUNT * int(item.get("quantity") or 1) for item in line_items)
        created = int(self.clock.now())
        session_id = _random_id("cs_test_a1", 56)
        mode = params["mode"]
        session = {
            "id": session_id,
            "object": "checkout.session",
            "after_expiration": None,
            "allow_promotion_codes": params.get("allow_promotion_codes") == "true" or None,
            "amount_subtotal": amount if line_items else None,
            "amount_total": amount if line_items else None,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_address_collection": params.get("billing_address_collection"),
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": params.get("client_reference_id"),
            "client_secret": None,
            "created": created,
            "currency": SANDBOX_CURRENCY if line_items else None,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": params.get("customer"),
            "customer_creation": None if mode == "subscription" or params.get("customer") else "if_required",
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": created + 24 * 3600,
            "invoice": None,
            "livemode": False,
            "locale": params.get("locale"),
            "metadata": params.get("metadata") or {},
            "mode": mode,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "always" if mode != "payment" else None,
            "payment_method_types": ["card"],
            "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": params.get("ui_mode") or "hosted",
            "url": f"{request.base_url}/c/pay/{session_id}",
        }
        self._sessions[session_id] = session
        return self._ok(session)

    def _pay_page(self, session_id: str) -> SandboxResponse:
        session = self._sessions.get(session_id)
        if session is None:
            return SandboxResponse(404, "<h1>Checkout session not found</h1>", content_type="text/html")
        page = (
            "<!doctype html><title>Sandbox Checkout</title>"
            f"<h1>Sandbox Checkout</h1><p>Session <code>{html.escape(session_id)}</code> "
            f"({html.escape(session['mode'])}, {session['amount_total']} {session['currency']}) "
            f"for <code>{html.escape(str(session['client_reference_id']))}</code>.</p>"
            f"<p>Status: <b>{html.escape(session['status'])}</b>, payment "
            f"<b>{html.escape(session['payment_status'])}</b>.</p>"
            "<p>No payment is taken here. The button completes the session and sends the signed "
            "<code>checkout.session.completed</code> event to the local webhook, as Stripe would.</p>"
            f'<form method="post" action="/c/pay/{html.escape(session_id)}">'
            '<button type="submit">Pay (sandbox)</button></form>'
        )
        return SandboxResponse(200, page, content_type="text/html; charset=utf-8")

    def _pay(self, session_id: str, request: SandboxRequest) -> SandboxResponse:
        """Complete the session (status complete, payment paid, a customer and subscription) and send
        the signed checkout.session.completed to the webhook named by SANDBOX_STRIPE_WEBHOOK_URL.
        Answers JSON ({session, event, webhook_status, webhook_answer}) when asked with Accept:
        application/json, else a page saying what happened."""
        session = self._sessions.get(session_id)
        if session is None:
            return SandboxResponse(404, "<h1>Checkout session not found</h1>", content_type="text/html")
        if session["status"] != "complete":
            session.update(
                status="complete",
                payment_status="paid",
                customer=session.get("customer") or _random_id("cus_", 14),
                subscription=_random_id("sub_", 24) if session["mode"] == "subscription" else None,
                customer_details={"email": session.get("customer_email")},
                url=None,
            )
        event = {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self.clock.now()),
            "data": {"object": dict(session)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": "checkout.session.completed",
        }
        webhook_status, webhook_answer = _send_signed(event)
        if "application/json" in request.header("Accept"):
            return SandboxResponse(
                200,
                {
                    "session": session,
                    "event": event,
                    "webhook_status": webhook_status,
                    "webhook_answer": webhook_answer,
                },
            )
        outcome = (
            f"the webhook answered {webhook_status}: {html.escape(json.dumps(webhook_answer))}"
            if webhook_status
            else html.escape(str(webhook_answer))
        )
        page = (
            "<!doctype html><title>Sandbox Checkout</title><h1>Paid (sandbox)</h1>"
            f"<p>Session <code>{html.escape(session_id)}</code> is complete and paid. Sent "
            f"<code>{event['id']}</code> (checkout.session.completed); {outcome}.</p>"
        )
        return SandboxResponse(200, page, content_type="text/html; charset=utf-8")


def _send_signed(event: dict[str, Any]) -> tuple[int | None, Any]:
    """POST the event to the configured webhook with a Stripe-Signature (HMAC-SHA256 of
    "<timestamp>.<payload>", https://docs.stripe.com/webhooks#verify-manually); (status, answer), or
    (None, why not) when it was not sent."""
    url, secret = os.environ.get(WEBHOOK_URL_ENV, ""), os.environ.get(WEBHOOK_SECRET_ENV, "")
    if not url or not secret:
        return None, (
            f"not sent: the sandbox was started without {WEBHOOK_URL_ENV} and {WEBHOOK_SECRET_ENV} "
            "(`make up` sets both)"
        )
    payload = json.dumps(event).encode()
    timestamp = int(time.time())  # real time, not the sandbox clock: the webhook checks it against its own
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    try:
        response = requests.post(
            url,
            data=payload,
            timeout=10,
            headers={"Content-Type": "application/json", "Stripe-Signature": f"t={timestamp},v1={digest}"},
        )
    except requests.RequestException as exc:
        return None, f"not delivered: the webhook at {url} does not answer ({type(exc).__name__})"
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text[:200]


def _validate(params: dict[str, Any]) -> tuple[str, str, str] | None:
    """(code, message, param) of the first problem, in Stripe's words."""
    mode = params.get("mode")
    if not mode:
        return "parameter_missing", "Missing required param: mode.", "mode"
    if mode not in MODES:
        return "", f"Invalid mode: must be one of {', '.join(MODES[:-1])}, or {MODES[-1]}", "mode"
    line_items = params.get("line_items")
    if mode != "setup" and not line_items:
        return "parameter_missing", "Missing required param: line_items.", "line_items"
    if line_items is not None and not isinstance(line_items, list):
        return "", "Invalid array", "line_items"
    for index, item in enumerate(line_items or []):
        price = item.get("price") if isinstance(item, dict) else None
        if not isinstance(price, str) or not price.startswith("price_"):
            return "resource_missing", f"No such price: '{price}'", f"line_items[{index}][price]"
        quantity = str(item.get("quantity") or "1")
        if not quantity.isdigit() or int(quantity) < 1:
            return "", "Invalid positive integer", f"line_items[{index}][quantity]"
    reference = params.get("client_reference_id")
    if reference is not None and len(str(reference)) > 200:
        return "", "Invalid string: must be at most 200 characters", "client_reference_id"
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > 50:
        return "", "Invalid metadata: at most 50 keys", "metadata"
    for key, value in metadata.items():
        if len(key) > 40 or len(str(value)) > 500:
            return "", "Metadata keys are limited to 40 characters and values to 500", f"metadata[{key}]"
    return None


def _default_message(status: int) -> str:
    if status == 429:
        return (
            "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests."
        )
    if status >= 500:
        return "An unknown error occurred"
    return "Invalid request"
