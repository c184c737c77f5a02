"""Stripe event -> billing state: `transition(billing, event)` is a pure function of the current
`users/{uid}.billing` map and one verified Stripe event, returning what the billing worker writes and
does next.

No I/O, and an event older than what was already applied to a Stripe object it concerns changes nothing
(docs/architecture.md, "Billing state").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

ACCESS_STATUSES = frozenset({"active", "trialing", "past_due"})
BILLING_STATUSES = frozenset({"none", "active", "trialing", "past_due", "payment_failed", "canceled",
                              "unpaid", "incomplete", "paused"})

# Stripe subscription.status -> billing status. incomplete_expired is a subscription Stripe ended
# (its first payment never arrived); paused (a trial that ended without a payment method, or the pause
# endpoint since 2026-09-30.endive: https://docs.stripe.com/changelog/endive/2026-09-30/pause-subscription)
# is neither canceled nor unpaid: it resumes without a new checkout.
SUBSCRIPTION_STATUSES = {
    "active": "active",
    "trialing": "trialing",
    "past_due": "past_due",
    "canceled": "canceled",
    "unpaid": "unpaid",
    "incomplete": "incomplete",
    "incomplete_expired": "canceled",
    "paused": "paused",
}

APPLIED = "applied"
STALE = "stale"
IGNORED = "ignored"

# Notice kinds: what the worker should tell whom after an applied event.
PAYMENT_RECOVERY = "payment_recovery"
OPS_REPEATED_PAYMENT_FAILURE = "ops_repeated_payment_failure"
OPS_DISPUTE = "ops_dispute"
REPEATED_FAILURE_THRESHOLD = 2


def initial_billing() -> dict[str, Any]:
    return {
        "status": "none",
        "plan": None,
        "customer_id": None,
        "subscription_id": None,
        "current_period_end": None,
        "ever_paid": False,
        "payment_failed": False,
        "failed_payment_count": 0,
        "payment_failed_since": None,  # event.created of the first failure of the current streak
        "last_failed_object": None,  # the invoice / payment intent / session that failed last
        "refunded": False,
        "disputed": False,
        "last_payment_intent": None,
        "last_charge": None,
        "applied": {},
    }


@dataclass(frozen=True)
class Notice:
    kind: str
    ref: str  # what the notice is about (invoice, payment intent, dispute, failure streak)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "ref": self.ref, "details": self.details}


@dataclass(frozen=True)
class Transition:
    outcome: str  # applied | stale | ignored
    stage: str  # the payment stage, for logs and the ledger
    reason: str = ""
    billing: dict[str, Any] | None = None  # the complete new billing map, when it changes
    pro: bool = False
    crm_reason: str | None = None
    notices: tuple[Notice, ...] = ()

    def summary(self) -> dict[str, Any]:
        """Firestore-storable result (recorded in the ledger, returned on redelivery)."""
        billing = self.billing or {}
        return {
            "outcome": self.outcome,
            "stage": self.stage,
            "reason": self.reason,
            "status": billing.get("status"),
            "pro": self.pro,
            "failed_payment_count": billing.get("failed_payment_count"),
            "crm_reason": self.crm_reason,
            "notices": [notice.as_dict() for notice in self.notices],
        }


# ---- reading Stripe shapes ---------------------------------------------------------------------


def expandable_id(value: Any) -> str | None:
    """An expandable field is an id string, or the expanded object carrying `id`."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, Mapping) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def event_object(event: Mapping[str, Any]) -> dict[str, Any]:
    return event["data"]["object"]


def invoice_subscription_id(invoice: Mapping[str, Any]) -> str | None:
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return expandable_id(details.get("subscription")) or expandable_id(invoice.get("subscription"))


def metadata_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid create_checkout stamps into Stripe metadata (on the object itself or, for an invoice,
    on the subscription it was generated from)."""
    candidates = [obj.get("metadata") or {}]
    if obj.get("object") == "invoice":
        candidates.append(((obj.get("parent") or {}).get("subscription_details") or {}).get("metadata") or {})
        candidates.append((obj.get("subscription_details") or {}).get("metadata") or {})
    for metadata in candidates:
        uid = metadata.get("uid") if isinstance(metadata, Mapping) else None
        if isinstance(uid, str) and uid:
            return uid
    return None


# ---- payments: the one definition of "a payment happened" ----------------------------------------


class Payment(StrEnum):
    PAID = "paid"  # money was received
    NOT_REQUIRED = "no_payment_required"  # settled without money: trial, 100 % discount, $0 invoice
    PENDING = "pending"  # a delayed method (bank debit) whose funds have not arrived yet
    FAILED = "failed"
    NONE = "none"  # the event is not about a payment


def _amount(obj: Mapping[str, Any], field_name: str) -> int:
    value = obj.get(field_name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def payment_of(event_type: str, obj: Mapping[str, Any]) -> Payment:
    """What an event says about money, per Stripe's own fields:

    - Checkout Session `payment_status`: `paid` (funds available), `unpaid` (not yet: fulfil on
      `checkout.session.async_payment_succeeded`), `no_payment_required` (a trial, a 100 % discount, a
      setup session): https://docs.stripe.com/api/checkout/sessions/object#checkout_session_object-payment_status
      and https://docs.stripe.com/payments/checkout/fulfill-orders
    - Invoice `amount_paid` (what was actually paid; 0 for a trial's or fully discounted invoice, which
      still ends `paid`): https://docs.stripe.com/api/invoices/object#invoice_object-amount_paid
    - PaymentIntent `amount_received`: https://docs.stripe.com/api/payment_intents/object#payment_intent_object-amount_received
    """
    if event_type in ("checkout.session.completed", "checkout.session.async_payment_succeeded"):
        status = obj.get("payment_status")
        if status == "paid":
            # `paid` with nothing charged does not occur; guard anyway so $0 is never a payment.
            total = obj.get("amount_total")
            return Payment.NOT_REQUIRED if isinstance(total, int) and total == 0 else Payment.PAID
        if status == "no_payment_required":
            return Payment.NOT_REQUIRED
        if event_type == "checkout.session.async_payment_succeeded":
            return Payment.PAID  # the event itself is Stripe's word that the delayed payment arrived
        return Payment.PENDING
    if event_type in ("checkout.session.async_payment_failed", "invoice.payment_failed",
                      "payment_intent.payment_failed"):
        return Payment.FAILED
    if event_type == "invoice.paid":
        return Payment.PAID if _amount(obj, "amount_paid") > 0 else Payment.NOT_REQUIRED
    if event_type == "payment_intent.succeeded":
        received = _amount(obj, "amount_received") if "amount_received" in obj else _amount(obj, "amount")
        return Payment.PAID if received > 0 else Payment.NOT_REQUIRED
    return Payment.NONE


def proves_payment(event_type: str, obj: Mapping[str, Any]) -> bool:
    """Money was received: the only thing that makes `ever_paid` true (and the contact a customer)."""
    return payment_of(event_type, obj) is Payment.PAID


# ---- lists without an order: pick the entry, never the position ---------------------------------


def _entries(obj: Mapping[str, Any], list_field: str) -> list[dict[str, Any]]:
    data = (obj.get(list_field) or {}).get("data") or []
    return [entry for entry in data if isinstance(entry, dict)]


@dataclass(frozen=True)
class PlanLine:
    """One subscription item's price and the end of the period it covers."""
    price: str | None
    period_end: int | None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def subscription_item_lines(invoice: Mapping[str, Any]) -> list[PlanLine]:
    """The invoice lines a subscription item generated for its period, prorations and pending invoice
    items left out. Current API: `line.parent.type == "subscription_item_details"` with
    `parent.subscription_item_details.proration` false and the price in `line.pricing.price_details`
    (https://docs.stripe.com/api/invoice-line-item/object#invoice_line_item_object-parent); before
    2025-03-31.basil: `line.type == "subscription"`, `line.proration` false, `line.price`. An event's
    invoice carries only the first page of lines (`lines.has_more`); when the subscription line is not on
    it, plan and period are left to the subscription's own events."""
    subscription = invoice_subscription_id(invoice)
    lines = []
    for line in _entries(invoice, "lines"):
        parent = line.get("parent") or {}
        if parent.get("type") == "subscription_item_details":
            details = parent.get("subscription_item_details") or {}
            if details.get("proration") or (
                    subscription and details.get("subscription") not in (None, subscription)):
                continue
            price = expandable_id(((line.get("pricing") or {}).get("price_details") or {}).get("price"))
        elif line.get("type") == "subscription" and not parent:  # the pre-2025 shape
            if line.get("proration"):
                continue
            price = expandable_id(line.get("price"))
        else:
            continue  # an invoice item (one-off or pending proration), not the plan
        lines.append(PlanLine(price, _int((line.get("period") or {}).get("end"))))
    return lines


def subscription_items(subscription: Mapping[str, Any]) -> list[PlanLine]:
    """The subscription's items with their price and period end (on the item since 2025-03-31.basil,
    https://docs.stripe.com/api/subscription_items/object#subscription_item_object-current_period_end)."""
    return [PlanLine(expandable_id(item.get("price")), _int(item.get("current_period_end")))
            for item in _entries(subscription, "items")]


def plan_of(lines: list[PlanLine]) -> str | None:
    """The plan when every line names the same price; several prices name no single plan (None, so the
    caller keeps what it knew) rather than whichever Stripe happened to list first."""
    prices = {line.price for line in lines if line.price}
    return prices.pop() if len(prices) == 1 else None


def period_end_of(lines: list[PlanLine]) -> int | None:
    """The end of the current period: the earliest end among the lines (the next renewal)."""
    ends = [line.period_end for line in lines if line.period_end is not None]
    return min(ends) if ends else None


def subscription_period_end(subscription: Mapping[str, Any]) -> int | None:
    return _int(subscription.get("current_period_end")) or period_end_of(subscription_items(subscription))


def subscription_price(subscription: Mapping[str, Any]) -> str | None:
    return plan_of(subscription_items(subscription)) or expandable_id(subscription.get("plan"))


def invoice_price(invoice: Mapping[str, Any]) -> str | None:
    return plan_of(subscription_item_lines(invoice))


def invoice_period_end(invoice: Mapping[str, Any]) -> int | None:
    return period_end_of(subscription_item_lines(invoice))


def invoice_payment_intent(invoice: Mapping[str, Any]) -> str | None:
    """The payment intent that paid the invoice: the legacy field, else among `invoice.payments` the
    latest one with status `paid`, else the default payment
    (https://docs.stripe.com/api/invoice-payment/object)."""
    legacy = expandable_id(invoice.get("payment_intent"))
    if legacy:
        return legacy
    payments = _entries(invoice, "payments")
    paid = [payment for payment in payments if payment.get("status") == "paid"]
    if paid:
        chosen = max(paid, key=lambda p: (_int((p.get("status_transitions") or {}).get("paid_at")) or 0,
                                          _int(p.get("created")) or 0, str(p.get("id") or "")))
    else:
        chosen = next((payment for payment in payments if payment.get("is_default")), {})
    return expandable_id((chosen.get("payment") or {}).get("payment_intent"))


def clock_keys(event_type: str, obj: Mapping[str, Any]) -> list[str]:
    """The Stripe objects whose order an event must respect: its own object and, for events that move
    the subscription's state, that subscription."""
    keys = [obj["id"]]
    if payment_of(event_type, obj) is Payment.NOT_REQUIRED:
        # A checkout or invoice that needed no payment says nothing about its subscription's state
        # (trialing or active): the subscription's own events decide it, in whatever order they arrive.
        return keys
    if event_type.startswith("invoice."):
        keys.append(invoice_subscription_id(obj))
    elif event_type.startswith("checkout.session."):
        keys.append(expandable_id(obj.get("subscription")))
    return [key for key in keys if key]


# ---- the transition ----------------------------------------------------------------------------


@dataclass
class _Change:
    stage: str
    crm_reason: str | None = None
    notices: list[Notice] = field(default_factory=list)
    ignored_reason: str = ""  # set when the event turns out not to change billing
    stale_reason: str = ""  # set when a same-second tie must not be applied


State = dict[str, Any]  # a billing map being transitioned (a private copy)
StripeObject = dict[str, Any]  # event.data.object
Handler = Callable[[State, StripeObject, int, bool], _Change]


def normalized(billing: Mapping[str, Any] | None) -> dict[str, Any]:
    state = initial_billing()
    state.update(copy.deepcopy(dict(billing or {})))
    state["applied"] = dict(state.get("applied") or {})
    state.pop("updated_at", None)
    if state["status"] not in BILLING_STATUSES:
        state["status"] = "none"
    return state


def has_access(state: Mapping[str, Any]) -> bool:
    return state.get("status") in ACCESS_STATUSES


def transition(billing: Mapping[str, Any] | None, event: Mapping[str, Any]) -> Transition:
    event_type = str(event.get("type", ""))
    handler = _HANDLERS.get(event_type)
    if handler is None:
        return Transition(IGNORED, stage="unhandled", reason=f"{event_type} does not change billing")
    obj = event_object(event)
    created = int(event["created"])
    state = normalized(billing)
    keys = clock_keys(event_type, obj)
    for key in keys:
        applied_at = state["applied"].get(key)
        if applied_at is not None and applied_at > created:
            return _stale(state, event_type, obj,
                          reason=f"{key} already has an event from {applied_at} (this one: {created})")
    tie = any(state["applied"].get(key) == created for key in keys)
    change = handler(state, obj, created, tie)
    if change.stale_reason:
        return Transition(STALE, stage=change.stage, reason=change.stale_reason)
    if change.ignored_reason:
        return Transition(IGNORED, stage=change.stage, reason=change.ignored_reason)
    for key in keys:
        state["applied"][key] = max(created, int(state["applied"].get(key) or 0))
    return Transition(APPLIED, stage=change.stage, billing=state, pro=has_access(state),
                      crm_reason=change.crm_reason, notices=tuple(change.notices))


def _stage_name(event_type: str) -> str:
    return event_type.replace(".", "_")


def _stale(state: dict[str, Any], event_type: str, obj: Mapping[str, Any], *, reason: str) -> Transition:
    """A stale event changes no state, except the one fact that only ever becomes true: that the user
    paid. A late payment event still makes them a customer (lifecycle), whatever came after it."""
    if proves_payment(event_type, obj) and not state.get("ever_paid"):
        state["ever_paid"] = True
        return Transition(STALE, stage=_stage_name(event_type), reason=reason, billing=state,
                          pro=has_access(state), crm_reason="payment_succeeded")
    return Transition(STALE, stage=_stage_name(event_type), reason=reason)


def _link_customer(state: dict[str, Any], obj: Mapping[str, Any]) -> None:
    customer = expandable_id(obj.get("customer"))
    if customer:
        state["customer_id"] = customer


def _payment_succeeded(state: dict[str, Any], *, paid: bool) -> None:
    """A settled payment (or one that was not needed) ends a failure streak; only money received
    (`paid`, from `proves_payment`) makes the user someone who has paid."""
    if paid:
        state["ever_paid"] = True
    state["payment_failed"] = False
    state["failed_payment_count"] = 0
    state["payment_failed_since"] = None
    state["last_failed_object"] = None


def _payment_failed(state: State, failed_object: str, created: int, obj: Mapping[str, Any]) -> _Change:
    """A failed payment never grants access: a subscriber keeps it as past_due (Stripe retries the card),
    anyone without access stays without it as payment_failed."""
    had_access = has_access(state)
    state["status"] = "past_due" if had_access else "payment_failed"
    state["payment_failed"] = True
    state["failed_payment_count"] = int(state.get("failed_payment_count") or 0) + 1
    if not state.get("payment_failed_since"):
        state["payment_failed_since"] = created
    amount = obj.get("amount_due", obj.get("amount_total", obj.get("amount")))
    details = {"had_access": had_access, "amount": amount, "currency": obj.get("currency"),
               "failed_payment_count": state["failed_payment_count"]}
    notices = []
    if failed_object != state.get("last_failed_object"):
        # Stripe retries a failed invoice several times; the user hears about each payment once.
        notices.append(Notice(PAYMENT_RECOVERY, failed_object, details))
    state["last_failed_object"] = failed_object
    if state["failed_payment_count"] == REPEATED_FAILURE_THRESHOLD:
        # Once per failure streak (the count only returns to 0 when a payment succeeds); the ref names
        # the streak, so even a repeat of this notice is the same email.
        notices.append(Notice(OPS_REPEATED_PAYMENT_FAILURE, str(state["payment_failed_since"]),
                              {**details, "last_failed_object": failed_object}))
    return _Change(stage="", crm_reason="payment_failed", notices=notices)


def _checkout_completed(state: State, session: StripeObject, created: int, tie: bool) -> _Change:
    payment = payment_of("checkout.session.completed", session)
    if session.get("mode") == "setup":
        return _Change(stage="checkout_setup_completed", ignored_reason="a setup session buys nothing")
    _link_customer(state, session)
    subscription = expandable_id(session.get("subscription"))
    known = bool(subscription) and subscription == state.get("subscription_id") and state["status"] != "none"
    if subscription:
        state["subscription_id"] = subscription
    if payment is Payment.PAID:
        state["status"] = "active"
        _payment_succeeded(state, paid=True)
        if session.get("mode") == "payment":
            state["last_payment_intent"] = expandable_id(session.get("payment_intent"))
        return _Change(stage="checkout_completed", crm_reason="checkout_completed")
    if payment is Payment.NOT_REQUIRED:
        # Fulfil (Stripe: fulfil unless `unpaid`), but no money moved: ever_paid stays as it was.
        if not (known or has_access(state)):
            # Until the subscription's own event says trialing or active: nothing due before
            # discounts is a trial, a discount to zero leaves the subscription active.
            state["status"] = "trialing" if session.get("amount_subtotal") == 0 and subscription else "active"
        _payment_succeeded(state, paid=False)
        return _Change(stage="checkout_completed_without_payment", crm_reason="checkout_completed")
    # Delayed payment methods (bank debits): no access until async_payment_succeeded.
    if not has_access(state):
        state["status"] = "incomplete"
    return _Change(stage="checkout_awaiting_payment")


def _async_payment_succeeded(state: State, session: StripeObject, created: int, tie: bool) -> _Change:
    _link_customer(state, session)
    subscription = expandable_id(session.get("subscription"))
    if subscription:
        state["subscription_id"] = subscription
    state["status"] = "active"
    _payment_succeeded(state, paid=proves_payment("checkout.session.async_payment_succeeded", session))
    if session.get("mode") == "payment":
        state["last_payment_intent"] = expandable_id(session.get("payment_intent"))
    return _Change(stage="async_payment_succeeded", crm_reason="payment_succeeded")


def _async_payment_failed(state: State, session: StripeObject, created: int, tie: bool) -> _Change:
    _link_customer(state, session)
    change = _payment_failed(state, session["id"], created, session)
    change.stage = "async_payment_failed"
    return change


def _invoice_paid(state: State, invoice: StripeObject, created: int, tie: bool) -> _Change:
    _link_customer(state, invoice)
    subscription = invoice_subscription_id(invoice)
    if subscription is None:
        # A one-off invoice (`billing_reason: manual`, no `parent.subscription_details`): access follows
        # the subscriptions, so the payment is recorded (the ledger's stage) and nothing else changes.
        return _Change(stage="one_off_invoice_paid")
    if not proves_payment("invoice.paid", invoice):
        return _invoice_settled_without_payment(state, invoice, subscription)
    _payment_succeeded(state, paid=True)
    state["last_payment_intent"] = invoice_payment_intent(invoice) or state.get("last_payment_intent")
    state["plan"] = invoice_price(invoice) or state.get("plan")
    state["current_period_end"] = invoice_period_end(invoice) or state.get("current_period_end")
    if state.get("status") == "canceled" and subscription and subscription == state.get("subscription_id"):
        # Settling a leftover invoice does not bring a canceled subscription back.
        return _Change(stage="invoice_paid_after_cancel", crm_reason="payment_succeeded")
    if subscription:
        state["subscription_id"] = subscription
    state["status"] = "active"
    return _Change(stage="invoice_paid", crm_reason="payment_succeeded")


def _invoice_settled_without_payment(state: State, invoice: StripeObject,
                                     subscription: str | None) -> _Change:
    """A $0 invoice (a trial's, one discounted to zero, one covered by credit) is settled without money.
    Like a checkout that needed no payment it does not say whether the subscription is trialing or
    active, and it does not stamp the subscription's clock: the subscription's own events decide."""
    _payment_succeeded(state, paid=False)
    known = bool(subscription) and subscription == state.get("subscription_id") and state["status"] != "none"
    # Only fills in what is not known yet: this event is not ordered against the subscription's.
    state["plan"] = state.get("plan") or invoice_price(invoice)
    state["current_period_end"] = state.get("current_period_end") or invoice_period_end(invoice)
    if not (known or has_access(state)):
        if subscription:
            state["subscription_id"] = subscription
        # Until the subscription's event arrives: nothing due before discounts is a trial.
        state["status"] = "trialing" if invoice.get("subtotal") == 0 and subscription else "active"
    return _Change(stage="invoice_settled_without_payment", crm_reason="no_payment_required")


def _invoice_payment_failed(state: State, invoice: StripeObject, created: int, tie: bool) -> _Change:
    _link_customer(state, invoice)
    subscription = invoice_subscription_id(invoice)
    if subscription and not state.get("subscription_id"):
        state["subscription_id"] = subscription
    change = _payment_failed(state, invoice["id"], created, invoice)
    change.stage = "invoice_payment_failed"
    return change


def _belongs_to_invoice(state: Mapping[str, Any], intent: Mapping[str, Any]) -> bool:
    """Payment intents of subscription invoices also emit payment_intent.* events; the invoice events
    carry those payments, so counting the intent too would count every failure twice. Current API
    versions drop `payment_intent.invoice`, so a customer with a live subscription counts as well."""
    if intent.get("invoice"):
        return True
    return bool(state.get("subscription_id")) and state.get("status") not in ("none", "canceled")


def _payment_intent_succeeded(state: State, intent: StripeObject, created: int, tie: bool) -> _Change:
    _link_customer(state, intent)
    state["last_payment_intent"] = intent["id"]
    state["last_charge"] = expandable_id(intent.get("latest_charge")) or state.get("last_charge")
    if _belongs_to_invoice(state, intent):
        return _Change(stage="invoice_payment_recorded")
    state["status"] = "active"
    _payment_succeeded(state, paid=proves_payment("payment_intent.succeeded", intent))
    return _Change(stage="payment_succeeded", crm_reason="payment_succeeded")


def _payment_intent_failed(state: State, intent: StripeObject, created: int, tie: bool) -> _Change:
    if _belongs_to_invoice(state, intent):
        return _Change(stage="invoice_payment_intent_failed",
                       ignored_reason="an invoice payment: invoice.payment_failed carries it")
    _link_customer(state, intent)
    change = _payment_failed(state, intent["id"], created, intent)
    change.stage = "payment_failed"
    return change


def _subscription_changed(state: State, subscription: StripeObject, created: int, tie: bool,
                          *, deleted: bool = False) -> _Change:
    stripe_status = "canceled" if deleted else str(subscription.get("status", ""))
    status = SUBSCRIPTION_STATUSES.get(stripe_status)
    stage = f"subscription_{stripe_status or 'unknown'}"
    if status is None:
        return _Change(stage=stage, ignored_reason=f"unknown subscription status {stripe_status!r}")
    if tie and has_access(state) and status == "incomplete":
        # Same second as a payment that granted access: "incomplete" is the earlier state.
        return _Change(stage=stage, stale_reason="same-second incomplete after access was granted")
    current = state.get("subscription_id")
    if current and current != subscription["id"] and has_access(state) and status not in ACCESS_STATUSES:
        # An older subscription ending must not revoke the one that grants access now.
        return _Change(stage=f"other_{stage}", crm_reason=None)
    _link_customer(state, subscription)
    state["subscription_id"] = subscription["id"]
    state["status"] = status
    state["plan"] = subscription_price(subscription) or state.get("plan")
    state["current_period_end"] = subscription_period_end(subscription) or state.get("current_period_end")
    if status in ("active", "trialing"):
        _payment_succeeded(state, paid=False)
    crm_reason = "subscription_canceled" if status in ("canceled", "unpaid") else "subscription_updated"
    return _Change(stage=stage, crm_reason=crm_reason)


def _subscription_created(state: State, subscription: StripeObject, created: int, tie: bool) -> _Change:
    if tie:
        # Creation is a subscription's first event, so anything else from the same second is newer.
        return _Change(stage="subscription_created", stale_reason="same-second creation event")
    return _subscription_changed(state, subscription, created, tie)


def _subscription_updated(state: State, subscription: StripeObject, created: int, tie: bool) -> _Change:
    return _subscription_changed(state, subscription, created, tie)


def _subscription_deleted(state: State, subscription: StripeObject, created: int, tie: bool) -> _Change:
    return _subscription_changed(state, subscription, created, tie, deleted=True)


def _charge_refunded(state: State, charge: StripeObject, created: int, tie: bool) -> _Change:
    _link_customer(state, charge)
    state["refunded"] = True
    captured = int(charge.get("amount_captured") or charge.get("amount") or 0)
    refunded = int(charge.get("amount_refunded") or 0)
    full = bool(charge.get("refunded")) or (captured > 0 and refunded >= captured)
    intent = expandable_id(charge.get("payment_intent"))
    last_payment = (intent is not None and intent == state.get("last_payment_intent")) or (
        charge["id"] == state.get("last_charge"))
    if full and last_payment and has_access(state):
        # The payment that bought the current access was returned in full.
        state["status"] = "canceled"
        return _Change(stage="refund_revoked", crm_reason="refunded")
    return _Change(stage="refunded_full" if full else "refunded_partial", crm_reason="refunded")


def _dispute_created(state: State, dispute: StripeObject, created: int, tie: bool) -> _Change:
    state["disputed"] = True
    details = {"amount": dispute.get("amount"), "currency": dispute.get("currency"),
               "reason": dispute.get("reason"), "charge": expandable_id(dispute.get("charge")),
               "status": dispute.get("status")}
    return _Change(stage="dispute_created", crm_reason="disputed",
                   notices=[Notice(OPS_DISPUTE, dispute["id"], details)])


_HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": _checkout_completed,
    "checkout.session.async_payment_succeeded": _async_payment_succeeded,
    "checkout.session.async_payment_failed": _async_payment_failed,
    "invoice.paid": _invoice_paid,
    "invoice.payment_failed": _invoice_payment_failed,
    "payment_intent.succeeded": _payment_intent_succeeded,
    "payment_intent.payment_failed": _payment_intent_failed,
    "customer.subscription.created": _subscription_created,
    "customer.subscription.updated": _subscription_updated,
    "customer.subscription.deleted": _subscription_deleted,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute_created,
}

HANDLED_EVENT_TYPES = frozenset(_HANDLERS)


def dispute_payment_ids(dispute: Mapping[str, Any]) -> list[str]:
    """A dispute names no customer; it is matched through the charge or payment intent it disputes."""
    ids = (expandable_id(dispute.get("charge")), expandable_id(dispute.get("payment_intent")))
    return [key for key in ids if key]


def payment_ids(event_type: str, obj: Mapping[str, Any]) -> list[str]:
    """Charge and payment intent ids an event reveals, remembered so a later dispute can be matched."""
    if event_type.startswith("payment_intent."):
        return [key for key in (obj.get("id"), expandable_id(obj.get("latest_charge"))) if key]
    if event_type.startswith("charge.") and obj.get("object") == "charge":
        return [key for key in (obj.get("id"), expandable_id(obj.get("payment_intent"))) if key]
    if event_type.startswith("checkout.session."):
        return [key for key in (expandable_id(obj.get("payment_intent")),) if key]
    if event_type.startswith("invoice."):
        return [key for key in (invoice_payment_intent(obj),) if key]
    return []
