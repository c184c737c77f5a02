"""The sandbox's Stripe as the entitlement model reads it, over real HTTP on 127.0.0.1, with stripe-python
16.1.0's StripeClient as the client (so the shapes are the ones the billing worker will parse): lists and
retrieves of subscriptions, customers, invoices, charges and events; every state change recorded as an
event; changes behind the app's back; test and live mode kept apart; the retry signals of its errors."""

from __future__ import annotations

from typing import Any

import pytest
import requests
import stripe

from tests.tools.sandbox.conftest import WebhookReceiver
from tools.sandbox import SandboxServer
from tools.sandbox.providers.stripe import LIVE_KEY_ENV
from tools.sandbox.providers.stripe_events import API_VERSION, RETENTION_SECONDS
from tools.sandbox.providers.stripe_prices import SANDBOX_UNIT_AMOUNT
from tools.sandbox.providers.stripe_webhook import WEBHOOK_EVENTS_ENV

TEST_KEY = "sk_test_entitlements"
LIVE_KEY = "sk_live_sandboxonly0123"  # accepted only because LIVE_KEY_ENV names it
PRICE = "price_1Pro"
DAY = 86400


def client(url: str, key: str = TEST_KEY, retries: int = 0) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": url}, max_network_retries=retries)


def control(url: str, path: str, **body: Any) -> dict[str, Any]:
    answer = requests.post(f"{url}/_sandbox/stripe/{path}", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def advance(url: str, seconds: int) -> None:
    answer = requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=10)
    assert answer.status_code == 200, answer.text


def checkout_paid(url: str, email: str = "ada@example.com", uid: str = "uid-ada") -> dict[str, Any]:
    """A subscription bought through Checkout, as the app's user does: the completed session."""
    session = client(url).v1.checkout.sessions.create(
        params={
            "mode": "subscription",
            "line_items": [{"price": PRICE, "quantity": 1}],
            "success_url": "https://app.example.com/ok",
            "cancel_url": "https://app.example.com/no",
            "client_reference_id": uid,
            "customer_email": email,
            "subscription_data": {"metadata": {"uid": uid}},
        }
    )
    answer = requests.post(str(session.url), headers={"Accept": "application/json"}, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()["session"]


def event_types(url: str, key: str = TEST_KEY) -> list[str]:
    """Every event of the last 30 days, oldest first."""
    listed = client(url, key).v1.events.list(params={"limit": 100})
    return [event.type for event in reversed(list(listed.auto_paging_iter()))]


def period_end(subscription: stripe.Subscription) -> int:
    return max(item.current_period_end for item in subscription["items"].data)


# ---- what a purchase leaves at Stripe, read back the way the entitlement model reads it ------------


def test_a_checkout_purchase_is_a_customer_an_active_subscription_and_a_paid_invoice(url: str) -> None:
    session = checkout_paid(url)
    stripe_client = client(url)

    listed = stripe_client.v1.subscriptions.list(
        params={
            "customer": session["customer"],
            "status": "all",
            "limit": 100,
            "expand": ["data.latest_invoice"],
        }
    )

    [subscription] = listed.data
    assert isinstance(subscription, stripe.Subscription) and subscription.id == session["subscription"]
    assert (subscription.status, subscription.livemode, subscription.metadata.to_dict()) == (
        "active",
        False,
        {"uid": "uid-ada"},
    )
    [item] = subscription["items"].data
    assert (
        item.price.id == PRICE and item.current_period_end > item.current_period_start == subscription.created
    )
    assert "current_period_end" not in subscription and "status_details" not in subscription
    invoice = subscription.latest_invoice
    assert isinstance(invoice, stripe.Invoice)
    assert (invoice.billing_reason, invoice.status, invoice.amount_paid) == (
        "subscription_create",
        "paid",
        SANDBOX_UNIT_AMOUNT,
    )
    assert invoice.parent is not None and invoice.parent.type == "subscription_details"
    assert invoice.parent.subscription_details is not None
    assert invoice.parent.subscription_details.subscription == subscription.id
    assert "payments" not in invoice  # includable: only when asked for

    customer = stripe_client.v1.customers.retrieve(session["customer"])
    assert (customer.email, customer.livemode) == ("ada@example.com", False)
    assert [c.id for c in stripe_client.v1.customers.list(params={"email": "ada@example.com"}).data] == [
        customer.id
    ]
    assert stripe_client.v1.customers.list(params={"email": "ADA@example.com"}).data == []  # case-sensitive


def test_an_invoice_shows_its_payment_and_its_charge_when_expanded(url: str) -> None:
    session = checkout_paid(url)
    stripe_client = client(url)

    [invoice] = stripe_client.v1.invoices.list(params={"subscription": session["subscription"]}).data
    expanded = stripe_client.v1.invoices.retrieve(invoice.id, params={"expand": ["payments", "customer"]})

    [payment] = expanded.payments.data  # type: ignore[union-attr]
    assert isinstance(payment, stripe.InvoicePayment)
    assert (payment.status, payment.amount_paid, payment.payment.type) == (
        "paid",
        SANDBOX_UNIT_AMOUNT,
        "payment_intent",
    )
    assert isinstance(expanded.customer, stripe.Customer) and expanded.customer.id == session["customer"]
    [charge_id] = [
        e.data.object["id"] for e in stripe_client.v1.events.list(params={"type": "charge.succeeded"}).data
    ]
    charge = stripe_client.v1.charges.retrieve(charge_id)
    assert (charge.payment_intent, charge.paid, charge.refunded) == (
        payment.payment.payment_intent,
        True,
        False,
    )


def test_lists_page_with_starting_after_and_filter_by_status(url: str) -> None:
    stripe_client = client(url)
    created = [
        stripe_client.v1.subscriptions.create(params={"customer": "cus_Many", "items": [{"price": PRICE}]}).id
        for _ in range(5)
    ]
    stripe_client.v1.subscriptions.cancel(created[0])

    first = stripe_client.v1.subscriptions.list(params={"customer": "cus_Many", "status": "all", "limit": 2})
    assert [s.id for s in first.data] == created[::-1][:2] and first.has_more
    every = [s.id for s in first.auto_paging_iter()]  # follows starting_after
    assert every == created[::-1]
    newer = stripe_client.v1.subscriptions.list(
        params={"customer": "cus_Many", "status": "all", "limit": 2, "ending_before": created[1]}
    )
    assert [s.id for s in newer.data] == [created[3], created[2]] and newer.has_more
    live_only = stripe_client.v1.subscriptions.list(params={"customer": "cus_Many"})
    assert [s.id for s in live_only.data] == created[:0:-1]  # the default leaves canceled ones out
    ended = stripe_client.v1.subscriptions.list(params={"customer": "cus_Many", "status": "canceled"})
    assert [s.id for s in ended.data] == [created[0]]
    with pytest.raises(stripe.InvalidRequestError) as unknown:
        stripe_client.v1.subscriptions.list(params={"starting_after": "sub_Unknown"})
    assert unknown.value.http_status == 404 and unknown.value.param == "starting_after"
    with pytest.raises(stripe.InvalidRequestError) as too_many:
        stripe_client.v1.subscriptions.list(params={"limit": 101})
    assert too_many.value.param == "limit"


def test_an_unknown_id_is_stripes_404(url: str) -> None:
    stripe_client = client(url)
    for retrieve, object_id, kind in [
        (stripe_client.v1.customers.retrieve, "cus_Nobody", "customer"),
        (stripe_client.v1.subscriptions.retrieve, "sub_Nobody", "subscription"),
        (stripe_client.v1.invoices.retrieve, "in_Nobody", "invoice"),
        (stripe_client.v1.charges.retrieve, "ch_Nobody", "charge"),
        (stripe_client.v1.events.retrieve, "evt_Nobody", "event"),
    ]:
        with pytest.raises(stripe.InvalidRequestError) as missing:
            retrieve(object_id)
        assert (missing.value.http_status, missing.value.code) == (404, "resource_missing")
        assert f"No such {kind}: '{object_id}'" in str(missing.value.user_message)


# ---- events ----------------------------------------------------------------------------------------


def test_the_purchase_is_recorded_as_stripes_events_in_order(url: str) -> None:
    session = checkout_paid(url)

    assert event_types(url) == [
        "customer.created",
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "charge.succeeded",
        "invoice_payment.paid",
        "invoice.paid",
        "invoice.payment_succeeded",
        "checkout.session.completed",
    ]
    completed = client(url).v1.events.list(params={"type": "checkout.session.completed"}).data[0]
    assert isinstance(completed, stripe.Event) and completed.api_version == API_VERSION
    assert completed.livemode is False and completed.data.object["id"] == session["id"]
    assert (
        completed.request is not None and completed.request.id is None
    )  # the customer's browser, no API call


def test_events_filter_by_type_wildcard_types_and_created(url: str) -> None:
    checkout_paid(url)
    stripe_client = client(url)
    invoices = stripe_client.v1.events.list(params={"type": "invoice.*"}).data
    assert sorted(e.type for e in invoices) == [
        "invoice.created",
        "invoice.finalized",
        "invoice.paid",
        "invoice.payment_succeeded",
    ]
    two = stripe_client.v1.events.list(params={"types": ["customer.created", "invoice.paid"]}).data
    assert sorted(e.type for e in two) == ["customer.created", "invoice.paid"]
    newest = two[0].created
    assert stripe_client.v1.events.list(params={"created": {"gt": newest}}).data == []
    with pytest.raises(stripe.InvalidRequestError):
        stripe_client.v1.events.list(params={"type": "invoice.paid", "types": ["invoice.paid"]})


def test_events_are_kept_for_30_days_only(url: str) -> None:
    checkout_paid(url)
    stripe_client = client(url)
    event = stripe_client.v1.events.list(params={"limit": 1}).data[0]

    advance(url, RETENTION_SECONDS - DAY)
    assert stripe_client.v1.events.retrieve(event.id).id == event.id
    advance(url, 2 * DAY)
    with pytest.raises(stripe.InvalidRequestError) as gone:
        stripe_client.v1.events.retrieve(event.id)
    assert gone.value.http_status == 404
    assert event.id not in [
        e.id for e in stripe_client.v1.events.list(params={"limit": 100}).auto_paging_iter()
    ]


def test_an_api_change_records_its_request_and_the_updated_attributes(url: str) -> None:
    stripe_client = client(url)
    subscription = stripe_client.v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": PRICE}]}
    )
    stripe_client.v1.subscriptions.update(
        subscription.id, params={"cancel_at_period_end": True}, options={"idempotency_key": "end-1"}
    )

    [updated] = stripe_client.v1.events.list(params={"type": "customer.subscription.updated"}).data
    assert updated.request is not None and updated.request.idempotency_key == "end-1"
    assert str(updated.request.id).startswith("req_")
    assert updated.data.object["cancel_at_period_end"] is True
    assert updated.data.previous_attributes is not None
    assert updated.data.previous_attributes["cancel_at_period_end"] is False


def test_the_clock_renews_and_the_renewal_is_a_paid_subscription_cycle_invoice(url: str) -> None:
    session = checkout_paid(url)
    stripe_client = client(url)
    before = stripe_client.v1.subscriptions.retrieve(session["subscription"])

    advance(url, period_end(before) - before.created + 60)

    after = stripe_client.v1.subscriptions.retrieve(
        session["subscription"], params={"expand": ["latest_invoice"]}
    )
    assert after.status == "active" and after["items"].data[0].current_period_start == period_end(before)
    renewal = after.latest_invoice
    assert isinstance(renewal, stripe.Invoice)
    assert (renewal.billing_reason, renewal.status, renewal.created) == (
        "subscription_cycle",
        "paid",
        period_end(before),
    )
    [updated] = stripe_client.v1.events.list(params={"type": "customer.subscription.updated"}).data
    assert updated.created == period_end(before)  # dated when Stripe's billing did it
    assert updated.data.previous_attributes is not None and "items" in updated.data.previous_attributes


# ---- changes behind the app's back ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "status", "events"),
    [
        ("cancel", "canceled", ["customer.subscription.deleted"]),
        ("pause", "paused", ["customer.subscription.updated", "customer.subscription.paused"]),
        (
            "past_due",
            "past_due",
            [
                "customer.subscription.updated",
                "invoice.created",
                "invoice.finalized",
                "charge.failed",
                "invoice.payment_failed",
            ],
        ),
    ],
)
def test_a_change_behind_the_apps_back_is_recorded_but_not_delivered(
    url: str, webhook: WebhookReceiver, action: str, status: str, events: list[str]
) -> None:
    session = checkout_paid(url)
    delivered_before = len(webhook.received)

    answer = control(url, f"subscriptions/{session['subscription']}/{action}")

    assert answer["object"]["status"] == status and answer["deliveries"] == {}
    assert len(webhook.received) == delivered_before  # nothing reaches the app
    assert event_types(url)[-len(events) :] == events
    subscription = client(url).v1.subscriptions.retrieve(session["subscription"])
    assert subscription.status == status  # the truth the app re-reads


def test_a_paused_subscription_carries_the_endive_status_details(url: str) -> None:
    session = checkout_paid(url)
    control(url, f"subscriptions/{session['subscription']}/pause")
    stripe_client = client(url)

    paused = stripe_client.v1.subscriptions.retrieve(session["subscription"])
    assert paused.status == "paused" and paused.status_details is not None
    assert (paused.status_details.paused.type, paused.status_details.paused.subscription.type) == (
        "subscription",
        "pause_requested",
    )
    assert [s.id for s in stripe_client.v1.subscriptions.list(params={"status": "paused"}).data] == [
        paused.id
    ]

    advance(url, 40 * DAY)  # a paused subscription makes no invoices and starts no periods
    assert stripe_client.v1.subscriptions.retrieve(paused.id)["items"].data[
        0
    ].current_period_end == period_end(paused)
    resumed = control(url, f"subscriptions/{paused.id}/resume")["object"]
    assert resumed["status"] == "active" and "status_details" not in resumed
    latest = stripe_client.v1.invoices.retrieve(resumed["latest_invoice"])
    assert (latest.billing_reason, latest.status) == ("subscription_update", "paid")
    assert event_types(url)[-1] == "customer.subscription.resumed"


def test_a_past_due_subscription_recovers_when_its_invoice_is_paid(url: str) -> None:
    session = checkout_paid(url)
    failed = control(url, f"subscriptions/{session['subscription']}/past_due")["object"]
    stripe_client = client(url)
    invoice = stripe_client.v1.invoices.retrieve(failed["latest_invoice"])
    assert (invoice.status, invoice.attempt_count, invoice.billing_reason) == (
        "open",
        1,
        "subscription_cycle",
    )
    assert [i.id for i in stripe_client.v1.invoices.list(params={"status": "open"}).data] == [invoice.id]

    control(url, f"invoices/{invoice.id}/pay")

    assert stripe_client.v1.subscriptions.retrieve(session["subscription"]).status == "active"
    assert stripe_client.v1.invoices.retrieve(invoice.id).status == "paid"


def test_a_refund_and_a_one_off_invoice(url: str) -> None:
    session = checkout_paid(url)
    stripe_client = client(url)
    [first] = stripe_client.v1.invoices.list(params={"customer": session["customer"]}).data

    refunded = control(url, "refunds", invoice=first.id)["object"]
    assert (refunded["refunded"], refunded["amount_refunded"]) == (True, SANDBOX_UNIT_AMOUNT)
    [event] = stripe_client.v1.events.list(params={"type": "charge.refunded"}).data
    assert event.data.object["id"] == refunded["id"]
    assert event.data.previous_attributes is not None
    assert event.data.previous_attributes.to_dict() == {"amount_refunded": 0, "refunded": False}
    assert (
        stripe_client.v1.subscriptions.retrieve(session["subscription"]).status == "active"
    )  # as Stripe does

    one_off = control(url, "invoices", customer=session["customer"], amount=500, description="Setup fee")[
        "object"
    ]
    manual = stripe_client.v1.invoices.retrieve(one_off["id"])
    assert (manual.billing_reason, manual.parent, manual.status, manual.amount_paid) == (
        "manual",
        None,
        "paid",
        500,
    )


def test_deliver_true_sends_the_changes_events_signed_whatever_the_enabled_events(
    url: str, webhook: WebhookReceiver
) -> None:
    session = checkout_paid(url)
    assert webhook.types() == ["checkout.session.completed"]  # the endpoint's default enabled events

    answer = control(url, f"subscriptions/{session['subscription']}/cancel", deliver=True)

    [(event_id, (status, reply))] = answer["deliveries"].items()
    assert (status, reply) == (200, {"status": "published"})
    sent = webhook.events()[-1]  # signature checked by stripe-python
    assert (sent["id"], sent["type"], sent["data"]["object"]["status"]) == (
        event_id,
        "customer.subscription.deleted",
        "canceled",
    )
    assert client(url).v1.events.retrieve(event_id).pending_webhooks == 0


def test_the_enabled_events_decide_what_is_sent_on_its_own(
    url: str, webhook: WebhookReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(WEBHOOK_EVENTS_ENV, "customer.subscription.created,invoice.paid")
    checkout_paid(url)
    assert webhook.types() == ["customer.subscription.created", "invoice.paid"]
    stripe_client = client(url)
    assert [e.type for e in stripe_client.v1.events.list(params={"delivery_success": False}).data] == []

    monkeypatch.setenv(WEBHOOK_EVENTS_ENV, "*")
    event = stripe_client.v1.events.list(params={"type": "customer.created"}).data[0]
    control(url, f"events/{event.id}/deliver")  # a resend from the Dashboard
    assert webhook.types()[-1] == "customer.created"


def test_an_unanswered_delivery_stays_pending(url: str, webhook: WebhookReceiver) -> None:
    webhook.shutdown()  # the endpoint is down
    webhook.server_close()
    session = checkout_paid(url)
    stripe_client = client(url)
    [pending] = stripe_client.v1.events.list(params={"delivery_success": False}).data
    assert (pending.type, pending.pending_webhooks) == ("checkout.session.completed", 1)
    assert pending.data.object["id"] == session["id"]


# ---- test and live mode -------------------------------------------------------------------------------


def test_live_mode_objects_carry_livemode_and_are_invisible_to_a_test_key(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LIVE_KEY_ENV, LIVE_KEY)
    live = client(url, LIVE_KEY)
    subscription = live.v1.subscriptions.create(params={"customer": "cus_Live", "items": [{"price": PRICE}]})

    assert subscription.livemode is True and subscription["items"].data[0].price.livemode is True
    assert {e.livemode for e in live.v1.events.list().data} == {True}
    assert client(url).v1.events.list().data == []
    with pytest.raises(stripe.InvalidRequestError):
        client(url).v1.subscriptions.retrieve(subscription.id)
    with pytest.raises(stripe.InvalidRequestError) as other_mode:
        client(url).v1.subscriptions.create(params={"customer": "cus_Live", "items": [{"price": PRICE}]})
    assert "a similar object exists in live mode" in str(other_mode.value.user_message)


def test_a_live_key_that_is_not_configured_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LIVE_KEY_ENV, raising=False)
    with pytest.raises(stripe.AuthenticationError):
        client(url, LIVE_KEY).v1.customers.list()


# ---- what the worker's transient-failure path sees ---------------------------------------------------


def add_fault(url: str, **spec: Any) -> None:
    answer = requests.post(
        f"{url}/_sandbox/faults", json={"provider": "stripe", "mode": "status", **spec}, timeout=5
    )
    assert answer.status_code == 201, answer.text


def stripe_calls(url: str) -> list[dict[str, Any]]:
    return requests.get(f"{url}/_sandbox/requests", params={"provider": "stripe"}, timeout=5).json()[
        "requests"
    ]


def test_a_lock_timeout_says_retry_and_stripe_python_retries_it(url: str) -> None:
    add_fault(url, status=429, code="lock_timeout")

    assert client(url, retries=1).v1.customers.list().data == []

    first, second = stripe_calls(url)
    assert (first["status"], second["status"]) == (429, 200)
    answer = requests.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5)
    assert answer.status_code == 200
    add_fault(url, status=429, code="lock_timeout")
    locked = requests.get(f"{url}/v1/customers", headers={"Authorization": f"Bearer {TEST_KEY}"}, timeout=5)
    assert (
        locked.headers["Stripe-Should-Retry"] == "true" and locked.json()["error"]["code"] == "lock_timeout"
    )


def test_a_rate_limit_is_not_retried_and_a_5xx_is(url: str) -> None:
    add_fault(url, status=429)
    with pytest.raises(stripe.RateLimitError) as limited:
        client(url, retries=2).v1.subscriptions.list()
    body = limited.value.json_body
    assert isinstance(body, dict) and body["error"]["code"] == "rate_limit"
    assert "stripe-should-retry" not in (limited.value.headers or {})
    assert len(stripe_calls(url)) == 1

    add_fault(url, status=503, count=3)
    with pytest.raises(stripe.APIError) as unavailable:
        client(url, retries=2).v1.subscriptions.list()
    assert unavailable.value.http_status == 503 and len(stripe_calls(url)) == 1 + 3


def test_a_standing_rate_limit_answers_429_past_n_requests_per_second(
    url: str, sandbox: tuple[SandboxServer, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = 1000.0  # one instant: every request falls in the same one-second window
    monkeypatch.setattr(sandbox[0].sandbox, "monotonic", lambda: frozen)
    answer = requests.post(
        f"{url}/_sandbox/conditions", json={"provider": "stripe", "requests_per_second": 2}, timeout=5
    )
    assert answer.status_code == 201, answer.text
    stripe_client = client(url)
    stripe_client.v1.customers.list()
    stripe_client.v1.customers.list()
    with pytest.raises(stripe.RateLimitError):
        stripe_client.v1.customers.list()
    assert [call["fault"] for call in stripe_calls(url)] == [None, None, "rate_limit"]
    frozen += 1.0  # a second later the window has room again
    assert stripe_client.v1.customers.list().data == []
