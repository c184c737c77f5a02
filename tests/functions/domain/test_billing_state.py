"""Stripe event -> billing state rules, on events shaped like Stripe's current API (plus the legacy
fields still sent to endpoints pinned to older versions)."""

import itertools
from typing import Any

import pytest
from launchready.domain import billing_state, crm
from launchready.domain.billing_state import APPLIED, IGNORED, STALE, transition

_ids = itertools.count(1)

CUSTOMER = "cus_PayingCustomer1"
SUBSCRIPTION = "sub_1PqRsTuVwXyZ"
PRICE = "price_1ProMonthly"


def stripe_event(event_type: str, obj: dict[str, Any], *, created: int,
                 event_id: str | None = None) -> dict[str, Any]:
    """A Stripe event envelope as delivered to webhook endpoints."""
    return {
        "id": event_id or f"evt_{next(_ids):08d}TestEvent",
        "object": "event",
        "api_version": "2025-08-27.basil",
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_session(*, uid: str | None = "uid_ada", payment_status: str = "paid", mode: str = "subscription",
                     customer: str = CUSTOMER, subscription: str | None = SUBSCRIPTION,
                     session_id: str = "cs_test_a1B2c3", payment_intent: str | None = None) -> dict[str, Any]:
    return {
        "id": session_id, "object": "checkout.session", "mode": mode, "status": "complete",
        "payment_status": payment_status, "client_reference_id": uid, "customer": customer,
        "customer_details": {"email": "ada@example.com"},
        "subscription": subscription if mode == "subscription" else None, "payment_intent": payment_intent,
        "amount_total": 1900, "currency": "eur",
        "metadata": {}, "livemode": False,
    }


def subscription(status: str, *, sub_id: str = SUBSCRIPTION, period_end: int = 1_900_000_000,
                 price: str = PRICE, customer: str = CUSTOMER) -> dict[str, Any]:
    return {
        "id": sub_id, "object": "subscription", "status": status, "customer": customer,
        "cancel_at_period_end": False, "metadata": {"uid": "uid_ada"},
        "items": {"object": "list", "data": [{
            "id": "si_Item1", "object": "subscription_item", "current_period_start": period_end - 2_592_000,
            "current_period_end": period_end, "price": {"id": price, "object": "price", "unit_amount": 1900},
        }]},
    }


def invoice(invoice_id: str = "in_1Renewal", *, status: str = "paid", amount: int = 1900,
            sub_id: str | None = SUBSCRIPTION, customer: str = CUSTOMER, period_end: int = 1_900_000_000,
            price: str = PRICE) -> dict[str, Any]:
    paid = status == "paid"
    return {
        "id": invoice_id, "object": "invoice", "status": status, "customer": customer,
        "amount_due": amount, "amount_paid": amount if paid else 0, "currency": "eur",
        "billing_reason": "subscription_cycle", "attempt_count": 1,
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"subscription": sub_id, "metadata": {"uid": "uid_ada"}}}
        if sub_id else None,
        "lines": {"object": "list", "data": [subscription_line(price, period_end, amount=amount,
                                                                 sub_id=sub_id or SUBSCRIPTION)]},
    }


def subscription_line(price: str, period_end: int, *, amount: int = 1900, sub_id: str = SUBSCRIPTION,
                      proration: bool = False, line_id: str = "il_1") -> dict[str, Any]:
    """An invoice line a subscription item generated (API 2025-03-31.basil and later)."""
    period_start = period_end - 2_592_000
    return {
        "id": line_id, "object": "line_item", "amount": amount, "currency": "eur",
        "parent": {"type": "subscription_item_details", "invoice_item_details": None,
                   "subscription_item_details": {
                       "invoice_item": None, "proration": proration,
                       "proration_details": {"credited_items": None}, "subscription": sub_id,
                       "subscription_item": "si_Item1"}},
        "period": {"start": period_start, "end": period_end},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_Pro"},
                    "unit_amount_decimal": str(amount)},
        "quantity": 1,
    }


def invoice_item_line(price: str, period_end: int, *, amount: int, line_id: str,
                      proration: bool = True) -> dict[str, Any]:
    """A line from an invoice item: a pending proration after a plan change, or a one-off charge."""
    return {
        "id": line_id, "object": "line_item", "amount": amount, "currency": "eur",
        "parent": {"type": "invoice_item_details", "subscription_item_details": None,
                   "invoice_item_details": {"invoice_item": f"ii_{line_id}", "proration": proration,
                                            "proration_details": {"credited_items": None},
                                            "subscription": SUBSCRIPTION}},
        "period": {"start": period_end - 86_400, "end": period_end},
        "pricing": {"type": "price_details", "price_details": {"price": price, "product": "prod_Pro"},
                    "unit_amount_decimal": str(amount)},
        "quantity": 1,
    }


def payment_intent(pi_id: str = "pi_1OneOff", *, status: str = "succeeded", customer: str = CUSTOMER,
                   charge: str | None = "ch_1OneOff", amount: int = 4900) -> dict[str, Any]:
    return {
        "id": pi_id, "object": "payment_intent", "status": status, "amount": amount, "currency": "eur",
        "amount_received": amount if status == "succeeded" else 0, "customer": customer,
        "latest_charge": charge, "metadata": {"uid": "uid_ada"},
        "last_payment_error": None if status == "succeeded" else {"code": "card_declined",
                                                                  "decline_code": "insufficient_funds"},
    }


def charge(charge_id: str = "ch_1OneOff", *, payment_intent_id: str = "pi_1OneOff", amount: int = 4900,
           refunded_amount: int | None = None, customer: str = CUSTOMER) -> dict[str, Any]:
    refunded_amount = amount if refunded_amount is None else refunded_amount
    return {
        "id": charge_id, "object": "charge", "amount": amount, "amount_captured": amount,
        "amount_refunded": refunded_amount, "refunded": refunded_amount >= amount, "captured": True,
        "currency": "eur", "customer": customer, "payment_intent": payment_intent_id, "paid": True,
        "status": "succeeded", "metadata": {},
    }


def dispute(dispute_id: str = "du_1Chargeback", *, charge_id: str = "ch_1OneOff",
            payment_intent_id: str = "pi_1OneOff") -> dict[str, Any]:
    return {
        "id": dispute_id, "object": "dispute", "amount": 4900, "currency": "eur", "charge": charge_id,
        "payment_intent": payment_intent_id, "reason": "fraudulent", "status": "needs_response",
        "metadata": {},
    }


def run(events: list[dict[str, Any]],
        billing: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[Any]]:
    """Apply events in the given (delivery) order; returns the final billing map and the transitions."""
    results = []
    for event in events:
        change = transition(billing, event)
        results.append(change)
        if change.billing is not None:  # what the worker writes (a stale event may still record a payment)
            billing = change.billing
    return billing or billing_state.initial_billing(), results


# ---- checkout ----------------------------------------------------------------------------------


def test_paid_checkout_activates_and_marks_ever_paid() -> None:
    change = transition(None, stripe_event("checkout.session.completed", checkout_session(), created=100))
    assert change.outcome == APPLIED and change.stage == "checkout_completed"
    assert change.pro is True
    billing = change.billing
    assert billing["status"] == "active" and billing["ever_paid"] is True
    assert billing["customer_id"] == CUSTOMER and billing["subscription_id"] == SUBSCRIPTION
    assert billing["applied"] == {"cs_test_a1B2c3": 100, SUBSCRIPTION: 100}
    assert change.crm_reason == "checkout_completed" and change.notices == ()


def test_no_payment_required_checkout_grants_access_but_is_no_payment() -> None:
    # A subscription discounted to zero: 19.00 before the discount, nothing due.
    session = {**checkout_session(payment_status="no_payment_required"), "amount_subtotal": 1900,
               "amount_total": 0, "total_details": {"amount_discount": 1900}}
    change = transition(None, stripe_event("checkout.session.completed", session, created=100))
    assert change.billing["status"] == "active" and change.pro is True
    assert change.billing["ever_paid"] is False


# ---- "a payment happened": one definition for every event --------------------------------------


def free_trial_checkout() -> dict[str, Any]:
    """Checkout of a subscription with a free trial: nothing due today."""
    return {**checkout_session(payment_status="no_payment_required"), "amount_subtotal": 0,
            "amount_total": 0}


@pytest.mark.parametrize("subscription_first", [True, False])
def test_free_trial_is_trialing_with_access_and_not_a_payment(subscription_first: bool) -> None:
    created = stripe_event("customer.subscription.created", subscription("trialing"), created=100)
    completed = stripe_event("checkout.session.completed", free_trial_checkout(), created=100)
    billing, results = run([created, completed] if subscription_first else [completed, created])

    assert [r.outcome for r in results] == [APPLIED, APPLIED]
    assert billing["status"] == "trialing" and results[-1].pro is True
    assert billing["plan"] == PRICE and billing["current_period_end"] == 1_900_000_000
    assert billing["ever_paid"] is False
    assert crm.lifecycle_for(billing) == "lead" and "customer" not in crm.tags_for(billing)


def test_a_trial_becomes_a_customer_with_its_first_paid_invoice() -> None:
    billing, results = run([
        stripe_event("customer.subscription.created", subscription("trialing"), created=100),
        stripe_event("checkout.session.completed", free_trial_checkout(), created=100),
        stripe_event("invoice.paid", invoice("in_0Trial", amount=0), created=100),
    ])
    assert billing["status"] == "trialing" and billing["ever_paid"] is False
    assert results[2].stage == "invoice_settled_without_payment"
    assert crm.lifecycle_for(billing) == "lead"

    billing, _ = run([
        stripe_event("customer.subscription.updated", subscription("active"), created=200),
        stripe_event("invoice.paid", invoice("in_1FirstPaid"), created=200),
    ], billing)
    assert billing["status"] == "active" and billing["ever_paid"] is True
    assert crm.lifecycle_for(billing) == "customer" and "customer" in crm.tags_for(billing)


def test_every_arrival_order_of_a_free_trial_converges() -> None:
    events = [
        stripe_event("customer.subscription.created", subscription("trialing"), created=100),
        stripe_event("checkout.session.completed", free_trial_checkout(), created=100),
        stripe_event("invoice.paid", invoice("in_0Trial", amount=0), created=100),
    ]
    finals = set()
    for order in itertools.permutations(events):
        billing, _ = run(list(order))
        finals.add((billing["status"], billing["ever_paid"], billing["plan"]))
    assert finals == {("trialing", False, PRICE)}


def test_a_subscription_discounted_to_zero_is_active_but_not_a_customer() -> None:
    session = {**checkout_session(payment_status="no_payment_required"), "amount_subtotal": 1900,
               "amount_total": 0}
    discounted = {**invoice("in_0Discounted", amount=0), "subtotal": 1900, "total": 0,
                  "total_discount_amounts": [{"amount": 1900, "discount": "di_1Full"}]}
    for order in itertools.permutations([
        stripe_event("customer.subscription.created", subscription("active"), created=100),
        stripe_event("checkout.session.completed", session, created=100),
        stripe_event("invoice.paid", discounted, created=100),
    ]):
        billing, _ = run(list(order))
        assert (billing["status"], billing["ever_paid"]) == ("active", False)
        assert crm.lifecycle_for(billing) == "lead" and "customer" not in crm.tags_for(billing)


def test_a_setup_session_grants_nothing() -> None:
    setup = {**checkout_session(payment_status="no_payment_required", mode="setup"), "amount_total": None}
    change = transition(None, stripe_event("checkout.session.completed", setup, created=100))
    assert change.outcome == IGNORED and change.billing is None


def _payment_samples() -> list[tuple[str, dict[str, Any], str]]:
    return [
        ("checkout.session.completed", checkout_session(payment_status="paid"), "paid"),
        ("checkout.session.completed", checkout_session(payment_status="unpaid", mode="payment"),
         "pending"),
        ("checkout.session.completed", free_trial_checkout(), "no_payment_required"),
        ("checkout.session.async_payment_succeeded", checkout_session(payment_status="paid", mode="payment"),
         "paid"),
        ("checkout.session.async_payment_failed", checkout_session(payment_status="unpaid", mode="payment"),
         "failed"),
        ("invoice.paid", invoice("in_1Paid"), "paid"),
        ("invoice.paid", invoice("in_0Zero", amount=0), "no_payment_required"),
        ("invoice.payment_failed", invoice("in_1Open", status="open"), "failed"),
        ("payment_intent.succeeded", payment_intent(), "paid"),
        ("payment_intent.payment_failed", payment_intent(status="requires_payment_method"), "failed"),
        ("customer.subscription.created", subscription("trialing"), "none"),
        ("customer.subscription.updated", subscription("active"), "none"),
        ("charge.refunded", charge(), "none"),
    ]


@pytest.mark.parametrize(("event_type", "obj", "payment"), _payment_samples(),
                         ids=[f"{t}-{p}" for t, _, p in _payment_samples()])
def test_every_handler_agrees_with_the_one_payment_rule(event_type: str, obj: dict[str, Any],
                                                        payment: str) -> None:
    assert billing_state.payment_of(event_type, obj) == payment
    # Applied on a fresh user, and arriving late (stale) after a newer subscription event: in both
    # paths the user has paid exactly when the rule says money was received.
    fresh = transition(None, stripe_event(event_type, obj, created=100))
    if fresh.billing is not None:
        assert fresh.billing["ever_paid"] is (payment == "paid")
    newer = {**billing_state.initial_billing(), "status": "canceled",
             "applied": {obj["id"]: 500, SUBSCRIPTION: 500}}
    late = transition(newer, stripe_event(event_type, obj, created=100))
    assert late.outcome == STALE
    assert bool(late.billing and late.billing["ever_paid"]) is (payment == "paid")


def test_unpaid_checkout_waits_without_access_then_async_success_grants() -> None:
    session = checkout_session(payment_status="unpaid", mode="payment", payment_intent="pi_1Sepa")
    billing, (completed, succeeded) = run([
        stripe_event("checkout.session.completed", session, created=100),
        stripe_event("checkout.session.async_payment_succeeded", {**session, "payment_status": "paid"},
                     created=400),
    ])
    assert completed.outcome == APPLIED and completed.stage == "checkout_awaiting_payment"
    assert completed.billing["status"] == "incomplete" and completed.pro is False
    assert completed.billing["ever_paid"] is False and completed.crm_reason is None
    assert succeeded.stage == "async_payment_succeeded" and succeeded.pro is True
    assert billing["status"] == "active" and billing["ever_paid"] is True
    assert billing["last_payment_intent"] == "pi_1Sepa"


def test_async_payment_failure_gives_no_access_and_one_recovery_notice() -> None:
    session = checkout_session(payment_status="unpaid", mode="payment")
    billing, (_, failed) = run([
        stripe_event("checkout.session.completed", session, created=100),
        stripe_event("checkout.session.async_payment_failed", session, created=300),
    ])
    assert failed.stage == "async_payment_failed" and failed.pro is False
    assert billing["status"] == "payment_failed" and billing["failed_payment_count"] == 1
    assert [n.kind for n in failed.notices] == [billing_state.PAYMENT_RECOVERY]
    assert failed.notices[0].ref == session["id"] and failed.notices[0].details["had_access"] is False


# ---- invoices ----------------------------------------------------------------------------------


def test_invoice_paid_activates_and_resets_failures() -> None:
    failing = {**billing_state.initial_billing(), "status": "past_due", "payment_failed": True,
               "failed_payment_count": 2, "payment_failed_since": 50, "ever_paid": True}
    change = transition(failing, stripe_event("invoice.paid", invoice(), created=200))
    assert change.stage == "invoice_paid" and change.crm_reason == "payment_succeeded"
    billing = change.billing
    assert billing["status"] == "active" and change.pro is True
    assert (billing["payment_failed"], billing["failed_payment_count"], billing["payment_failed_since"]) == (
        False, 0, None)
    assert billing["plan"] == PRICE and billing["current_period_end"] == 1_900_000_000
    assert billing["subscription_id"] == SUBSCRIPTION
    assert billing["applied"] == {"in_1Renewal": 200, SUBSCRIPTION: 200}


def test_legacy_invoice_shape_is_read() -> None:
    legacy = {"id": "in_1Legacy", "object": "invoice", "customer": CUSTOMER, "subscription": "sub_1Legacy",
              "payment_intent": "pi_1Legacy", "amount_paid": 900, "currency": "usd",
              "lines": {"data": [{"type": "subscription", "proration": False,
                                  "period": {"end": 1_800_000_000}, "price": {"id": "price_1Legacy"}}]}}
    change = transition(None, stripe_event("invoice.paid", legacy, created=10))
    billing = change.billing
    assert (billing["subscription_id"], billing["plan"], billing["current_period_end"]) == (
        "sub_1Legacy", "price_1Legacy", 1_800_000_000)
    assert billing["last_payment_intent"] == "pi_1Legacy" and billing["applied"]["sub_1Legacy"] == 10


def test_first_invoice_failure_never_grants_access() -> None:
    change = transition(None, stripe_event("invoice.payment_failed", invoice(status="open"), created=100))
    assert change.outcome == APPLIED and change.stage == "invoice_payment_failed"
    assert change.billing["status"] == "payment_failed" and change.pro is False
    assert change.billing["status"] not in billing_state.ACCESS_STATUSES
    assert change.billing["ever_paid"] is False and change.billing["failed_payment_count"] == 1
    assert [n.kind for n in change.notices] == [billing_state.PAYMENT_RECOVERY]


def test_renewal_failure_keeps_access_as_past_due() -> None:
    active, _ = run([stripe_event("invoice.paid", invoice("in_1First"), created=100)])
    change = transition(active, stripe_event("invoice.payment_failed", invoice("in_2Renewal", status="open"),
                                             created=200))
    assert change.billing["status"] == "past_due" and change.pro is True
    assert change.billing["payment_failed"] is True
    assert change.notices[0].details["had_access"] is True and change.notices[0].ref == "in_2Renewal"


def test_repeated_failure_adds_one_ops_notice_per_streak() -> None:
    retry = invoice("in_2Renewal", status="open")
    billing, results = run([
        stripe_event("invoice.paid", invoice("in_1First"), created=100),
        stripe_event("invoice.payment_failed", retry, created=200),
        stripe_event("invoice.payment_failed", retry, created=300),
        stripe_event("invoice.payment_failed", retry, created=400),
    ])
    kinds = [[n.kind for n in r.notices] for r in results]
    assert kinds == [[], [billing_state.PAYMENT_RECOVERY], [billing_state.OPS_REPEATED_PAYMENT_FAILURE], []]
    assert results[2].notices[0].ref == "200"  # the streak that started at the first failure
    assert billing["failed_payment_count"] == 3 and billing["status"] == "past_due"


def test_a_new_streak_after_a_successful_payment_alerts_again() -> None:
    billing, results = run([
        stripe_event("invoice.payment_failed", invoice("in_1", status="open"), created=100),
        stripe_event("invoice.payment_failed", invoice("in_1", status="open"), created=200),
        stripe_event("invoice.paid", invoice("in_1"), created=300),
        stripe_event("invoice.payment_failed", invoice("in_2", status="open"), created=400),
        stripe_event("invoice.payment_failed", invoice("in_2", status="open"), created=500),
    ])
    notices = [(n.kind, n.ref) for r in results for n in r.notices]
    assert notices == [
        (billing_state.PAYMENT_RECOVERY, "in_1"), (billing_state.OPS_REPEATED_PAYMENT_FAILURE, "100"),
        (billing_state.PAYMENT_RECOVERY, "in_2"), (billing_state.OPS_REPEATED_PAYMENT_FAILURE, "400"),
    ]
    assert billing["status"] == "past_due" and billing["failed_payment_count"] == 2


def test_trial_zero_invoice_keeps_trialing_and_is_not_a_payment() -> None:
    trialing, _ = run([stripe_event("customer.subscription.created", subscription("trialing"), created=100)])
    change = transition(trialing, stripe_event("invoice.paid", invoice("in_0Trial", amount=0), created=101))
    assert change.billing["status"] == "trialing" and change.billing["ever_paid"] is False and change.pro


def test_paying_leftover_invoice_does_not_revive_canceled_subscription() -> None:
    billing, results = run([
        stripe_event("invoice.paid", invoice("in_1First"), created=100),
        stripe_event("customer.subscription.deleted", subscription("canceled"), created=300),
        stripe_event("invoice.paid", invoice("in_2Leftover"), created=400),
    ])
    assert results[2].stage == "invoice_paid_after_cancel"
    assert billing["status"] == "canceled" and results[2].pro is False


def one_off_invoice(invoice_id: str, *, amount: int = 5000) -> dict[str, Any]:
    """An invoice created by hand (Dashboard or POST /v1/invoices): `billing_reason: manual`, no `parent`,
    one invoice-item line (https://docs.stripe.com/api/invoices/object#invoice_object-billing_reason)."""
    return {**invoice(invoice_id, sub_id=None, amount=amount), "billing_reason": "manual",
            "lines": {"object": "list", "data": [invoice_item_line(PRICE, 1_900_000_000, amount=amount,
                                                                  line_id="il_manual", proration=False)]}}


@pytest.mark.parametrize("amount", [5000, 0])
def test_a_one_off_invoice_after_cancellation_is_a_payment_not_access(amount: int) -> None:
    billing, results = run([
        stripe_event("invoice.paid", invoice("in_1First"), created=100),
        stripe_event("customer.subscription.deleted", subscription("canceled"), created=300),
        stripe_event("invoice.paid", one_off_invoice("in_3Manual", amount=amount), created=400),
    ])
    assert results[2].outcome == APPLIED and results[2].stage == "one_off_invoice_paid"
    assert billing["status"] == "canceled" and results[2].pro is False and results[2].crm_reason is None
    assert billing["subscription_id"] == SUBSCRIPTION and billing["last_payment_intent"] is None


def test_a_one_off_invoice_grants_nothing_to_someone_who_never_subscribed() -> None:
    change = transition(None, stripe_event("invoice.paid", one_off_invoice("in_1Manual"), created=100))
    assert change.pro is False and change.billing["status"] == "none"


# ---- one-off payments --------------------------------------------------------------------------


def test_one_off_payment_intent_succeeded_activates() -> None:
    change = transition(None, stripe_event("payment_intent.succeeded", payment_intent(), created=100))
    assert change.stage == "payment_succeeded" and change.pro is True
    assert change.billing["last_payment_intent"] == "pi_1OneOff"
    assert change.billing["last_charge"] == "ch_1OneOff"


def test_one_off_payment_failure_counts_and_notifies() -> None:
    change = transition(None, stripe_event("payment_intent.payment_failed",
                                           payment_intent("pi_1Declined", status="requires_payment_method",
                                                          charge=None), created=100))
    assert change.stage == "payment_failed" and change.pro is False
    assert change.billing["status"] == "payment_failed" and change.notices[0].ref == "pi_1Declined"


def test_subscription_payment_intents_are_left_to_invoice_events() -> None:
    subscribed, _ = run([stripe_event("invoice.paid", invoice("in_1First"), created=100)])
    declined = payment_intent("pi_2Renewal", status="requires_payment_method")
    failed = transition(subscribed, stripe_event("payment_intent.payment_failed", declined, created=200))
    assert failed.outcome == IGNORED and failed.billing is None
    succeeded = transition(subscribed, stripe_event("payment_intent.succeeded", payment_intent("pi_3Renewal"),
                                                    created=300))
    assert succeeded.stage == "invoice_payment_recorded" and succeeded.crm_reason is None
    assert succeeded.billing["last_payment_intent"] == "pi_3Renewal"
    assert succeeded.billing["failed_payment_count"] == subscribed["failed_payment_count"]
    legacy = transition(None, stripe_event("payment_intent.payment_failed",
                                           {**payment_intent("pi_4"), "invoice": "in_4"}, created=5))
    assert legacy.outcome == IGNORED


# ---- subscriptions -----------------------------------------------------------------------------


@pytest.mark.parametrize(("stripe_status", "status", "pro"), [
    ("active", "active", True),
    ("trialing", "trialing", True),
    ("past_due", "past_due", True),
    ("canceled", "canceled", False),
    ("unpaid", "unpaid", False),
    ("incomplete", "incomplete", False),
    ("incomplete_expired", "canceled", False),
    ("paused", "paused", False),
])
def test_subscription_status_maps_to_billing_status(stripe_status: str, status: str, pro: bool) -> None:
    change = transition(None, stripe_event("customer.subscription.updated", subscription(stripe_status),
                                           created=100))
    assert (change.billing["status"], change.pro) == (status, pro)
    assert change.billing["plan"] == PRICE and change.billing["current_period_end"] == 1_900_000_000
    assert change.stage == f"subscription_{stripe_status}"


def test_a_paused_subscription_is_paused_not_canceled() -> None:
    paused_event = stripe_event("customer.subscription.paused", subscription("paused"), created=100)
    assert transition(None, paused_event).outcome == IGNORED  # customer.subscription.updated carries it
    paused = transition(None, stripe_event("customer.subscription.updated", subscription("paused"),
                                           created=100))
    assert paused.crm_reason == "subscription_updated" and paused.billing["status"] == "paused"
    contact = crm.contact_state({"email": "ada@example.com", "billing": paused.billing})
    assert contact is not None and "paused" in contact.tags and "canceled" not in contact.tags


def test_subscription_deleted_revokes() -> None:
    billing, (_, deleted) = run([
        stripe_event("customer.subscription.created", subscription("active"), created=100),
        stripe_event("customer.subscription.deleted", subscription("canceled"), created=200),
    ])
    assert billing["status"] == "canceled" and deleted.pro is False
    assert deleted.crm_reason == "subscription_canceled"


def test_legacy_subscription_period_end() -> None:
    legacy = {**subscription("active"), "current_period_end": 1_700_000_000, "items": {"data": []},
              "plan": {"id": "price_1Legacy"}}
    change = transition(None, stripe_event("customer.subscription.updated", legacy, created=1))
    assert change.billing["current_period_end"] == 1_700_000_000 and change.billing["plan"] == "price_1Legacy"


# ---- ordering ----------------------------------------------------------------------------------


def test_older_subscription_update_never_rolls_back() -> None:
    billing, (newer, older) = run([
        stripe_event("customer.subscription.updated", subscription("active"), created=3),
        stripe_event("customer.subscription.updated", subscription("past_due"), created=2),
    ])
    assert older.outcome == STALE and older.billing is None
    assert billing["status"] == "active" and billing["applied"][SUBSCRIPTION] == 3


def test_late_cancel_older_than_renewal_is_stale() -> None:
    billing, results = run([
        stripe_event("invoice.paid", invoice("in_2Renewal"), created=500),
        stripe_event("customer.subscription.updated", subscription("unpaid"), created=400),
    ])
    assert results[1].outcome == STALE and billing["status"] == "active"


def test_late_checkout_completion_cannot_undo_cancellation() -> None:
    billing, results = run([
        stripe_event("customer.subscription.deleted", subscription("canceled"), created=900),
        stripe_event("checkout.session.completed", checkout_session(), created=100),
    ])
    assert results[1].outcome == STALE and billing["status"] == "canceled"


def test_late_payment_failure_older_than_success_on_same_intent_is_stale() -> None:
    billing, results = run([
        stripe_event("payment_intent.succeeded", payment_intent(), created=200),
        stripe_event("payment_intent.payment_failed", payment_intent(status="requires_payment_method"),
                     created=150),
    ])
    assert results[1].outcome == STALE
    assert billing["status"] == "active" and billing["failed_payment_count"] == 0


def test_same_second_subscription_created_does_not_override() -> None:
    billing, results = run([
        stripe_event("invoice.paid", invoice("in_1First"), created=100),
        stripe_event("customer.subscription.created", subscription("incomplete"), created=100),
        stripe_event("customer.subscription.updated", subscription("incomplete"), created=100),
    ])
    assert [r.outcome for r in results] == [APPLIED, STALE, STALE]
    assert billing["status"] == "active"


def renewal_failure_history() -> list[dict[str, Any]]:
    """A checkout, its first payment, then a failed renewal: the events Stripe sends, in their order."""
    return [
        stripe_event("customer.subscription.created", subscription("incomplete"), created=100),
        stripe_event("checkout.session.completed", checkout_session(), created=101),
        stripe_event("invoice.paid", invoice("in_1First"), created=101),
        stripe_event("customer.subscription.updated", subscription("active"), created=101),
        stripe_event("invoice.payment_failed", invoice("in_2Renewal", status="open"), created=200),
        stripe_event("customer.subscription.updated", subscription("past_due"), created=200),
    ]


def test_arrival_order_does_not_change_the_outcome() -> None:
    events = [*renewal_failure_history(),
              stripe_event("customer.subscription.updated", subscription("canceled"), created=300)]
    outcomes = set()
    for order in itertools.permutations(events):
        billing, _ = run(list(order))
        outcomes.add((billing["status"], billing["subscription_id"]))
    assert outcomes == {("canceled", SUBSCRIPTION)}


def test_ending_an_old_subscription_keeps_the_current_one() -> None:
    billing, results = run([
        stripe_event("customer.subscription.updated", subscription("active", sub_id="sub_2New"),
                     created=500),
        stripe_event("customer.subscription.deleted", subscription("canceled", sub_id="sub_1Old"),
                     created=600),
    ])
    assert results[1].stage == "other_subscription_canceled"
    assert billing["status"] == "active" and billing["subscription_id"] == "sub_2New"
    assert billing["applied"]["sub_1Old"] == 600


# ---- refunds and disputes ----------------------------------------------------------------------


def test_full_refund_of_last_payment_revokes() -> None:
    billing, results = run([
        stripe_event("payment_intent.succeeded", payment_intent(), created=100),
        stripe_event("charge.refunded", charge(), created=200),
    ])
    assert results[1].stage == "refund_revoked" and results[1].crm_reason == "refunded"
    assert billing["refunded"] is True and billing["status"] == "canceled" and results[1].pro is False


def test_partial_refund_flags_but_keeps_access() -> None:
    billing, results = run([
        stripe_event("payment_intent.succeeded", payment_intent(), created=100),
        stripe_event("charge.refunded", charge(refunded_amount=1000), created=200),
    ])
    assert results[1].stage == "refunded_partial" and billing["refunded"] is True and results[1].pro is True


def test_full_refund_of_an_older_payment_keeps_access() -> None:
    billing, results = run([
        stripe_event("payment_intent.succeeded", payment_intent("pi_2Newer", charge="ch_2Newer"),
                     created=300),
        stripe_event("charge.refunded", charge("ch_1Older", payment_intent_id="pi_1Older"), created=400),
    ])
    assert results[1].stage == "refunded_full" and billing["status"] == "active" and billing["refunded"]


def test_dispute_flags_and_asks_for_an_ops_alert() -> None:
    paid, _ = run([stripe_event("payment_intent.succeeded", payment_intent(), created=100)])
    change = transition(paid, stripe_event("charge.dispute.created", dispute(), created=200))
    assert change.stage == "dispute_created" and change.billing["disputed"] is True
    assert change.crm_reason == "disputed"
    assert [(n.kind, n.ref) for n in change.notices] == [(billing_state.OPS_DISPUTE, "du_1Chargeback")]
    assert change.notices[0].details["reason"] == "fraudulent"


# ---- lists have no order: plan and period from the right entry -----------------------------------

NEW_PRICE = "price_2ProYearly"


def plan_change_invoice(*, lines_order: tuple[int, ...] = (0, 1, 2)) -> dict[str, Any]:
    """The invoice after an upgrade: the old price's unused time credited, the new price's remaining
    time charged (both prorations from invoice items), and the new period of the new price."""
    lines = [
        invoice_item_line(PRICE, 1_900_000_000, amount=-1200, line_id="il_credit_old"),
        invoice_item_line(NEW_PRICE, 1_900_000_000, amount=15000, line_id="il_debit_new"),
        subscription_line(NEW_PRICE, 1_931_536_000, amount=19000, line_id="il_new_period"),
    ]
    return {**invoice("in_3Upgrade", amount=32800), "billing_reason": "subscription_update",
            "lines": {"object": "list", "data": [lines[i] for i in lines_order], "has_more": False}}


@pytest.mark.parametrize("lines_order", list(itertools.permutations(range(3))))
def test_invoice_plan_and_period_come_from_the_subscription_item_line(lines_order: tuple[int, ...]) -> None:
    before, _ = run([stripe_event("invoice.paid", invoice("in_1First"), created=100)])
    change = transition(before, stripe_event("invoice.paid", plan_change_invoice(lines_order=lines_order),
                                             created=200))
    assert change.billing["plan"] == NEW_PRICE and change.billing["current_period_end"] == 1_931_536_000


def test_subscription_line_proration_is_not_the_plan() -> None:
    prorated = subscription_line(PRICE, 1_850_000_000, amount=-900, proration=True, line_id="il_prorated")
    current = subscription_line(NEW_PRICE, 1_931_536_000, line_id="il_current")
    paid = {**invoice("in_4"), "lines": {"object": "list", "data": [prorated, current]}}
    change = transition(None, stripe_event("invoice.paid", paid, created=10))
    assert (change.billing["plan"], change.billing["current_period_end"]) == (NEW_PRICE, 1_931_536_000)


def test_legacy_invoice_lines_skip_prorations_and_invoice_items() -> None:
    legacy = {"id": "in_1Legacy", "object": "invoice", "customer": CUSTOMER, "subscription": "sub_1Legacy",
              "amount_paid": 900, "currency": "usd", "lines": {"data": [
                  {"type": "invoiceitem", "proration": True, "period": {"end": 1_700_000_000},
                   "price": {"id": "price_0Old"}},
                  {"type": "subscription", "proration": True, "period": {"end": 1_700_000_000},
                   "price": {"id": "price_0Old"}},
                  {"type": "subscription", "proration": False, "period": {"end": 1_800_000_000},
                   "price": {"id": "price_1Legacy"}}]}}
    change = transition(None, stripe_event("invoice.paid", legacy, created=10))
    assert (change.billing["plan"], change.billing["current_period_end"]) == ("price_1Legacy", 1_800_000_000)


def test_an_invoice_without_a_subscription_line_keeps_plan_and_period() -> None:
    before, _ = run([stripe_event("customer.subscription.updated", subscription("active"), created=100)])
    pending_only = {**invoice("in_5Pending"), "lines": {"object": "list", "data": [
        invoice_item_line(NEW_PRICE, 1_950_000_000, amount=500, line_id="il_one_off", proration=False)]}}
    change = transition(before, stripe_event("invoice.paid", pending_only, created=200))
    assert change.billing["plan"] == PRICE and change.billing["current_period_end"] == 1_900_000_000


def test_subscription_items_in_any_order_give_one_plan_and_the_next_renewal() -> None:
    sub = subscription("active")
    first = sub["items"]["data"][0]
    second = {**first, "id": "si_Item2", "current_period_end": 1_890_000_000}
    for items in ([first, second], [second, first]):
        change = transition(None, stripe_event("customer.subscription.updated",
                                               {**sub, "items": {"object": "list", "data": items}},
                                               created=1))
        assert change.billing["plan"] == PRICE and change.billing["current_period_end"] == 1_890_000_000


def test_several_prices_name_no_plan_instead_of_the_first_listed() -> None:
    known, _ = run([stripe_event("customer.subscription.updated", subscription("active"), created=1)])
    sub = subscription("active")
    addon = {**sub["items"]["data"][0], "id": "si_Addon", "price": {"id": "price_9Addon", "object": "price"}}
    for items in ([sub["items"]["data"][0], addon], [addon, sub["items"]["data"][0]]):
        change = transition(known, stripe_event("customer.subscription.updated",
                                                {**sub, "items": {"object": "list", "data": items}},
                                                created=2))
        assert change.billing["plan"] == PRICE  # kept, not whichever item Stripe listed first


def test_invoice_payment_intent_is_the_paid_payment_not_the_first_listed() -> None:
    payments = [
        {"id": "inpay_1", "object": "invoice_payment", "status": "canceled", "is_default": False,
         "payment": {"type": "payment_intent", "payment_intent": "pi_1Canceled"},
         "status_transitions": {"canceled_at": 50, "paid_at": None}, "created": 40},
        {"id": "inpay_2", "object": "invoice_payment", "status": "paid", "is_default": True,
         "payment": {"type": "payment_intent", "payment_intent": "pi_2Paid"},
         "status_transitions": {"canceled_at": None, "paid_at": 90}, "created": 60},
    ]
    for data in (payments, payments[::-1]):
        paid = {**invoice("in_6"), "payments": {"object": "list", "data": data}}
        assert billing_state.invoice_payment_intent(paid) == "pi_2Paid"
    failed = {**invoice("in_7", status="open"), "payments": {"object": "list", "data": [
        {**payments[0], "status": "open", "is_default": False},
        {**payments[1], "status": "open", "is_default": True,
         "status_transitions": {"canceled_at": None, "paid_at": None}}]}}
    assert billing_state.invoice_payment_intent(failed) == "pi_2Paid"


# ---- the rest ----------------------------------------------------------------------------------


def test_unhandled_event_type_is_ignored() -> None:
    change = transition(None, stripe_event("customer.updated", {"id": CUSTOMER, "object": "customer"},
                                           created=1))
    assert change.outcome == IGNORED and change.billing is None


def test_transition_does_not_mutate_its_input() -> None:
    before = {**billing_state.initial_billing(), "status": "active", "applied": {SUBSCRIPTION: 1}}
    snapshot = {**before, "applied": dict(before["applied"])}
    transition(before, stripe_event("customer.subscription.deleted", subscription("canceled"), created=5))
    assert before == snapshot


def test_metadata_uid_is_found_on_objects_and_invoice_parents() -> None:
    assert billing_state.metadata_uid(subscription("active")) == "uid_ada"
    assert billing_state.metadata_uid({**invoice(), "metadata": {}}) == "uid_ada"
    assert billing_state.metadata_uid(charge()) is None


def test_summary_is_plain_data() -> None:
    change = transition(None, stripe_event("invoice.payment_failed", invoice(status="open"), created=1))
    summary = change.summary()
    assert summary["outcome"] == APPLIED and summary["status"] == "payment_failed"
    assert summary["notices"][0] == {"kind": billing_state.PAYMENT_RECOVERY, "ref": "in_1Renewal",
                                     "details": {"had_access": False, "amount": 1900, "currency": "eur",
                                                 "failed_payment_count": 1}}


def test_every_arrival_order_of_a_renewal_failure_converges() -> None:
    finals = set()
    for order in itertools.permutations(renewal_failure_history()):
        billing, _ = run(list(order))
        finals.add((billing["status"], billing["ever_paid"], billing["payment_failed"], billing["plan"]))
    assert finals == {("past_due", True, True, PRICE)}


def test_stale_payment_event_still_records_that_the_user_paid() -> None:
    renewal = invoice("in_2Renewal", status="open")
    failed, _ = run([stripe_event("invoice.payment_failed", renewal, created=200)])
    late = transition(failed, stripe_event("invoice.paid", invoice("in_1First"), created=100))
    assert late.outcome == STALE and late.crm_reason == "payment_succeeded"
    assert late.billing["ever_paid"] is True
    assert late.billing["status"] == "payment_failed" and late.pro is False
    assert late.billing["applied"] == failed["applied"]
    again = transition(late.billing, stripe_event("invoice.paid", invoice("in_1First"), created=100))
    assert again.outcome == STALE and again.billing is None
