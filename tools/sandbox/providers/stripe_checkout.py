"""Stripe Checkout in the sandbox: Checkout Sessions and the hosted pay page, whose button does what Stripe
does when the customer pays.

A session expires 24 h after creation (docs/tools.md).
"""

import html
import json
import re
from typing import Any

from ..messages import SandboxRequest, SandboxResponse
from . import stripe_objects as objects
from . import stripe_webhook
from .stripe_billing import Billing
from .stripe_events import EventLog, Origin
from .stripe_lists import StripeRequestError, in_range, no_such, page, query_of
from .stripe_prices import SANDBOX_CURRENCY, SANDBOX_UNIT_AMOUNT
from .stripe_resources import Call

SESSIONS_PATH = "/v1/checkout/sessions"
_SESSION_PATH = re.compile(r"^/v1/checkout/sessions/(cs_[A-Za-z0-9_]+)$")
PAY_PAGE = re.compile(r"^/c/pay/(cs_(?:test|live)_[A-Za-z0-9]+)$")
SESSION_LIFETIME_SECONDS = 24 * 3600
MODES = ("payment", "setup", "subscription")


class Checkout:
    def __init__(self, billing: Billing, events: EventLog) -> None:
        self.billing = billing
        self.events = events
        self.sessions: dict[str, dict[str, Any]] = {}
        self._orders: dict[str, dict[str, Any]] = {}  # the create params a session's completion needs

    def owns(self, path: str) -> bool:
        return path == SESSIONS_PATH or bool(_SESSION_PATH.match(path))

    def all(self) -> list[dict[str, Any]]:
        return [self._current(session) for session in self.sessions.values()]

    def handle(self, request: SandboxRequest, call: Call) -> SandboxResponse:
        """Raises StripeRequestError for what Stripe refuses."""
        match = _SESSION_PATH.match(request.path)
        if request.method == "GET" and match:
            session = self.sessions.get(match.group(1))
            if session is None or session["livemode"] != call.livemode:
                raise no_such("checkout.session", match.group(1), "session")
            return call.ok(self._current(session))
        if request.method == "GET" and request.path == SESSIONS_PATH:
            return call.ok(self._list(query_of(request), call))
        if request.method == "POST" and request.path == SESSIONS_PATH:
            return call.ok(self._create(request, call))
        raise StripeRequestError(f"Unrecognized request URL ({request.method}: {request.path}).", status=404)

    def _current(self, session: dict[str, Any]) -> dict[str, Any]:
        """The session as of the sandbox clock: an open session past `expires_at` has expired."""
        if session["status"] == "open" and self.billing.now() >= session["expires_at"]:
            session.update(status="expired", url=None)
        return session

    def _list(self, query: dict[str, Any], call: Call) -> dict[str, Any]:
        sessions = sorted(
            (self._current(s) for s in self.sessions.values() if s["livemode"] == call.livemode),
            key=lambda s: (s["created"], s["id"]),
            reverse=True,
        )
        found = [
            s
            for s in sessions
            if in_range(s["created"], query.get("created"))
            and all(
                query.get(name) in (None, s[name])
                for name in ("status", "customer", "subscription", "payment_intent")
            )
        ]
        return page(found, query, SESSIONS_PATH, "checkout.session")

    def _create(self, request: SandboxRequest, call: Call) -> dict[str, Any]:
        params = request.body if isinstance(request.body, dict) else {}
        _validate(params)
        mode = params["mode"]
        line_items = [
            (item["price"], int(item.get("quantity") or 1)) for item in params.get("line_items") or []
        ]
        if params.get("customer"):
            self.billing.named_customer(str(params["customer"]), call.livemode)
        amount = sum(SANDBOX_UNIT_AMOUNT * quantity for _, quantity in line_items)
        created = int(self.billing.now())
        session_id = objects.new_id("cs_live_a1" if call.livemode else "cs_test_a1", 56)
        session = _session(
            session_id,
            params,
            mode=mode,
            amount=amount if line_items else None,
            created=created,
            livemode=call.livemode,
            url=f"{call.base_url}/c/pay/{session_id}",
        )
        self.sessions[session_id] = session
        subscription_data = params.get("subscription_data")
        metadata = subscription_data.get("metadata") if isinstance(subscription_data, dict) else None
        self._orders[session_id] = {
            "line_items": line_items,
            "subscription_metadata": metadata if isinstance(metadata, dict) else {},
        }
        return session

    # ---- the hosted pay page ------------------------------------------------------------------

    def pay_page(self, session_id: str) -> SandboxResponse:
        session = self.sessions.get(session_id)
        if session is None:
            return SandboxResponse(404, "<h1>Checkout session not found</h1>", content_type="text/html")
        session = self._current(session)
        page_html = (
            "<!doctype html><title>Sandbox Checkout</title>"
            f"<h1>Sandbox Checkout</h1><p>Session <code>{html.escape(session_id)}</code> "
            f"({html.escape(session['mode'])}, {session['amount_total']} {session['currency']}) "
            f"for <code>{html.escape(str(session['client_reference_id']))}</code>.</p>"
            f"<p>Status: <b>{html.escape(session['status'])}</b>, payment "
            f"<b>{html.escape(session['payment_status'])}</b>.</p>"
            "<p>No payment is taken here. The button completes the session as Stripe does when the "
            "customer pays, and sends the signed <code>checkout.session.completed</code> event to the "
            "local webhook.</p>"
            f'<form method="post" action="/c/pay/{html.escape(session_id)}">'
            '<button type="submit">Pay (sandbox)</button></form>'
        )
        return SandboxResponse(200, page_html, content_type="text/html; charset=utf-8")

    def pay(self, session_id: str, request: SandboxRequest) -> SandboxResponse:
        """Complete the session (status complete, payment paid, its customer, and in subscription mode
        its subscription) and send the signed checkout.session.completed to the local webhook. Answers
        JSON ({session, event, webhook_status, webhook_answer}) when asked with Accept:
        application/json, else a page saying what happened."""
        session = self.sessions.get(session_id)
        if session is None:
            return SandboxResponse(404, "<h1>Checkout session not found</h1>", content_type="text/html")
        session = self._current(session)
        if session["status"] == "expired":
            return SandboxResponse(
                410, "<h1>This Checkout Session has expired</h1>", content_type="text/html"
            )
        if session["status"] == "open":
            event = self._complete(session)
            outcome = self.events.flush().get(event["id"])
        else:  # pressed again: the completion's event is sent again, as a resend from the Dashboard would
            event = self._completion_event(session)
            outcome = self.events.deliver(event["id"])
        webhook_status, webhook_answer = outcome or (None, stripe_webhook.why_not_sent(event["type"]))
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
        said = (
            f"the webhook answered {webhook_status}: {html.escape(json.dumps(webhook_answer))}"
            if webhook_status
            else html.escape(str(webhook_answer))
        )
        page_html = (
            "<!doctype html><title>Sandbox Checkout</title><h1>Paid (sandbox)</h1>"
            f"<p>Session <code>{html.escape(session_id)}</code> is complete and paid. Sent "
            f"<code>{event['id']}</code> (checkout.session.completed); {said}.</p>"
        )
        return SandboxResponse(200, page_html, content_type="text/html; charset=utf-8")

    def _complete(self, session: dict[str, Any]) -> dict[str, Any]:
        origin = Origin()  # the customer's browser, not an API request
        order = self._orders[session["id"]]
        customer = (
            self.billing.named_customer(session["customer"], session["livemode"])
            if session["customer"]
            else self.billing.create_customer(
                origin, livemode=session["livemode"], email=session["customer_email"]
            )
        )
        session.update(
            status="complete",
            url=None,
            customer=customer["id"],
            customer_details={
                "address": None,
                "business_name": None,
                "email": customer["email"] or session["customer_email"],
                "individual_name": None,
                "name": customer["name"],
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            },
        )
        if session["mode"] == "subscription":
            subscription = self.billing.subscribe(
                customer,
                [(price, quantity, {}) for price, quantity in order["line_items"]],
                origin,
                metadata=order["subscription_metadata"],
            )
            session.update(
                subscription=subscription["id"], invoice=subscription["latest_invoice"], payment_status="paid"
            )
        elif session["mode"] == "payment":
            charge = self.billing.one_off_charge(customer, session["amount_total"] or 0, origin)
            session.update(payment_intent=charge["payment_intent"], payment_status="paid")
        else:
            session["setup_intent"] = objects.new_id("seti_")
        return self.events.record("checkout.session.completed", session, origin)

    def _completion_event(self, session: dict[str, Any]) -> dict[str, Any]:
        """The checkout.session.completed the session's completion recorded."""
        return next(
            event
            for event in reversed(self.events.all())
            if event["type"] == "checkout.session.completed"
            and event["data"]["object"]["id"] == session["id"]
        )


def _session(
    session_id: str,
    params: dict[str, Any],
    *,
    mode: str,
    amount: int | None,
    created: int,
    livemode: bool,
    url: str,
) -> dict[str, Any]:
    """A new open Checkout Session (https://docs.stripe.com/api/checkout/sessions/object)."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "adaptive_pricing": {"enabled": False},
        "after_expiration": None,
        "allow_promotion_codes": params.get("allow_promotion_codes") == "true" or None,
        "allowed_payment_method_types": None,
        "amount_subtotal": amount,
        "amount_total": amount,
        "automatic_tax": {"enabled": False, "liability": None, "provider": None, "status": None},
        "billing_address_collection": params.get("billing_address_collection"),
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "client_secret": None,
        "collected_information": None,
        "consent": None,
        "consent_collection": None,
        "created": created,
        "currency": SANDBOX_CURRENCY if amount is not None else None,
        "currency_conversion": None,
        "custom_fields": [],
        "custom_text": {
            "after_submit": None,
            "shipping_address": None,
            "submit": None,
            "terms_of_service_acceptance": None,
        },
        "customer": params.get("customer"),
        "customer_account": None,
        "customer_creation": None if mode == "subscription" or params.get("customer") else "if_required",
        "customer_details": None,
        "customer_email": params.get("customer_email"),
        "discounts": [],
        "expires_at": created + SESSION_LIFETIME_SECONDS,
        "integration_identifier": None,
        "invoice": None,
        "invoice_creation": None,
        "livemode": livemode,
        "locale": params.get("locale"),
        "managed_payments": None,
        "metadata": params.get("metadata") or {},
        "mode": mode,
        "origin_context": None,
        "payment_intent": None,
        "payment_link": None,
        "payment_method_collection": "always" if mode != "payment" else None,
        "payment_method_configuration_details": None,
        "payment_method_options": {},
        "payment_method_types": ["card"],
        "payment_status": "no_payment_required" if mode == "setup" else "unpaid",
        "permissions": None,
        "phone_number_collection": {"enabled": False},
        "recovered_from": None,
        "saved_payment_method_options": None,
        "setup_intent": None,
        "shipping_address_collection": None,
        "shipping_cost": None,
        "shipping_options": [],
        "status": "open",
        "submit_type": None,
        "subscription": None,
        "success_url": params.get("success_url"),
        "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
        "ui_mode": params.get("ui_mode") or "hosted_page",
        "url": url,
        "wallet_options": None,
    }


def _validate(params: dict[str, Any]) -> None:
    """Raise StripeRequestError for the first problem, in Stripe's words."""
    mode = params.get("mode")
    if not mode:
        raise StripeRequestError("Missing required param: mode.", "mode", "parameter_missing")
    if mode not in MODES:
        raise StripeRequestError(
            f"Invalid mode: must be one of {', '.join(MODES[:-1])}, or {MODES[-1]}", "mode"
        )
    line_items = params.get("line_items")
    if mode != "setup" and not line_items:
        raise StripeRequestError("Missing required param: line_items.", "line_items", "parameter_missing")
    if line_items is not None and not isinstance(line_items, list):
        raise StripeRequestError("Invalid array", "line_items")
    for index, item in enumerate(line_items or []):
        price = item.get("price") if isinstance(item, dict) else None
        if not isinstance(price, str) or not price.startswith("price_"):
            raise StripeRequestError(
                f"No such price: '{price}'", f"line_items[{index}][price]", "resource_missing"
            )
        quantity = str(item.get("quantity") or "1")
        if not quantity.isdigit() or int(quantity) < 1:
            raise StripeRequestError("Invalid positive integer", f"line_items[{index}][quantity]")
    reference = params.get("client_reference_id")
    if reference is not None and len(str(reference)) > 200:
        raise StripeRequestError("Invalid string: must be at most 200 characters", "client_reference_id")
    metadata = params.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > 50:
        raise StripeRequestError("Invalid metadata: at most 50 keys", "metadata")
    for key, value in metadata.items():
        if len(key) > 40 or len(str(value)) > 500:
            raise StripeRequestError(
                "Metadata keys are limited to 40 characters and values to 500", f"metadata[{key}]"
            )
