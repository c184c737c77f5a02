"""The sandbox's account-lifecycle endpoints over real HTTP: Stripe subscriptions (create, list, cancel
now or at period end, and the answers Stripe gives for an already canceled one) and HubSpot's GDPR delete."""

from typing import Any

import pytest
import requests
import stripe

from tools.sandbox.providers.stripe_objects import period_end
from tools.sandbox.providers.stripe_prices import SANDBOX_CURRENCY, SANDBOX_UNIT_AMOUNT

HUBSPOT_AUTH = {"Authorization": "Bearer pat-na1-test-token"}
STRIPE_KEY = "sk_test_lifecycle"



def client(url: str) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": url}, max_network_retries=0)


def test_subscriptions_are_listed_without_canceled_ones_unless_asked(url: str) -> None:
    stripe_client = client(url)
    active = stripe_client.v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": "price_1Pro"}]})
    trial = stripe_client.v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": "price_1Pro"}], "trial_period_days": 7})
    stripe_client.v1.subscriptions.create(params={"customer": "cus_B", "items": [{"price": "price_1Pro"}]})
    assert (active.status, trial.status) == ("active", "trialing")
    assert active["items"]["data"][0]["current_period_end"] > active.created

    canceled = stripe_client.v1.subscriptions.cancel(active.id)
    assert canceled.status == "canceled" and canceled.canceled_at is not None

    listed = stripe_client.v1.subscriptions.list(params={"customer": "cus_A"})
    assert [s.id for s in listed.data] == [trial.id]
    every = stripe_client.v1.subscriptions.list(params={"customer": "cus_A", "status": "all"})
    assert {s.id for s in every.data} == {active.id, trial.id}


def test_cancel_at_period_end_keeps_the_subscription_running(url: str) -> None:
    stripe_client = client(url)
    sub = stripe_client.v1.subscriptions.create(params={"customer": "cus_A", "items": [{"price": "price_1"}]})
    updated = stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert updated.status == "active" and updated.cancel_at_period_end is True
    assert updated.cancel_at == sub["items"]["data"][0]["current_period_end"]


def test_an_already_canceled_subscription_answers_as_stripe_does(url: str) -> None:
    stripe_client = client(url)
    sub = stripe_client.v1.subscriptions.create(params={"customer": "cus_A", "items": [{"price": "price_1"}]})
    stripe_client.v1.subscriptions.cancel(sub.id)

    with pytest.raises(stripe.InvalidRequestError) as again:
        stripe_client.v1.subscriptions.cancel(sub.id)
    assert again.value.http_status == 404 and again.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as update:
        stripe_client.v1.subscriptions.update(sub.id, params={"cancel_at_period_end": True})
    assert update.value.http_status == 400
    assert "canceled subscription can only update" in str(update.value.user_message)


def advance_clock(url: str, seconds: int) -> None:
    response = requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)
    assert response.status_code == 200


def plain(subscription: stripe.Subscription) -> dict[str, Any]:
    return subscription.to_dict()


def period(subscription: dict[str, Any]) -> tuple[int, int]:
    """The current period, which lives on the subscription's items since 2025-03-31.basil."""
    [item] = subscription["items"]["data"]
    return item["current_period_start"], item["current_period_end"]


def test_a_created_subscription_is_a_whole_stripe_object(url: str) -> None:
    sub = plain(client(url).v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": "price_1Pro", "quantity": 2}]}))
    item = sub["items"]["data"][0]
    price = item["price"]
    assert price["id"] == "price_1Pro" and price["product"].startswith("prod_")
    assert (price["unit_amount"], price["currency"], sub["currency"]) == (
        SANDBOX_UNIT_AMOUNT, SANDBOX_CURRENCY, SANDBOX_CURRENCY)
    assert (price["type"], price["recurring"]["interval"], item["quantity"]) == ("recurring", "month", 2)
    assert sub["collection_method"] == "charge_automatically" and sub["latest_invoice"].startswith("in_")
    assert sub["billing_cycle_anchor"] == sub["start_date"] == item["current_period_start"] == sub["created"]
    # One calendar month, on each item; the subscription has no period of its own (2025-03-31.basil on).
    assert item["current_period_end"] == period_end(sub["start_date"], 1)
    assert "current_period_end" not in sub and "current_period_start" not in sub
    assert sub["cancellation_details"]["reason"] is None and sub["discounts"] == []
    assert sub["trial_start"] is None and sub["trial_end"] is None


def test_periods_follow_the_calendar_and_end_on_short_months_last_day() -> None:
    january_31 = 1832889600  # 2028-01-31T00:00:00Z
    assert period_end(january_31, 1) == 1835395200  # 2028-02-29, a leap year
    assert period_end(january_31, 2) == 1838073600  # 2028-03-31
    assert period_end(january_31, 13) == 1866931200  # 2029-02-28


def test_the_clock_renews_a_subscription_and_ends_a_scheduled_cancellation(url: str) -> None:
    stripe_client = client(url)
    renewing = plain(stripe_client.v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": "price_1"}]}))
    trial = stripe_client.v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": "price_1"}], "trial_period_days": 7})
    ending = stripe_client.v1.subscriptions.create(
        params={"customer": "cus_A", "items": [{"price": "price_1"}]})
    scheduled = plain(stripe_client.v1.subscriptions.update(
        ending.id, params={"cancel_at_period_end": True, "cancellation_details": {"feedback": "unused"}}))
    assert scheduled["status"] == "active" and scheduled["cancel_at"] == period(scheduled)[1]
    assert scheduled["cancellation_details"]["reason"] == "cancellation_requested"
    assert scheduled["cancellation_details"]["feedback"] == "unused"

    advance_clock(url, period(renewing)[1] - renewing["created"] + 60)
    renewed = plain(stripe_client.v1.subscriptions.retrieve(renewing["id"]))
    assert renewed["status"] == "active" and period(renewed)[0] == period(renewing)[1]
    assert period(renewed)[1] == period_end(renewing["billing_cycle_anchor"], 2)
    assert renewed["latest_invoice"] != renewing["latest_invoice"]
    assert stripe_client.v1.subscriptions.retrieve(trial.id).status == "active"
    ended = plain(stripe_client.v1.subscriptions.retrieve(ending.id))
    assert (ended["status"], ended["ended_at"]) == ("canceled", scheduled["cancel_at"])
    listed = stripe_client.v1.subscriptions.list(params={"customer": "cus_A"})
    assert {s.id for s in listed.data} == {renewing["id"], trial.id}
    over = stripe_client.v1.subscriptions.list(params={"customer": "cus_A", "status": "ended"})
    assert [s.id for s in over.data] == [ending.id]


def test_cancel_now_records_why(url: str) -> None:
    stripe_client = client(url)
    sub = stripe_client.v1.subscriptions.create(params={"customer": "cus_A", "items": [{"price": "price_1"}]})
    canceled = plain(stripe_client.v1.subscriptions.cancel(
        sub.id, params={"cancellation_details": {"comment": "closing the account"}}))
    assert canceled["ended_at"] == canceled["canceled_at"] and canceled["cancel_at_period_end"] is False
    assert canceled["cancellation_details"] == {
        "comment": "closing the account", "feedback": None, "reason": "cancellation_requested"}


def test_subscription_requests_are_validated(url: str) -> None:
    stripe_client = client(url)
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client.v1.subscriptions.create(params={"items": [{"price": "price_1"}]})  # type: ignore[typeddict-item]
    assert missing.value.param == "customer"
    with pytest.raises(stripe.InvalidRequestError) as bad_status:
        stripe_client.v1.subscriptions.list(params={"status": "gone"})  # type: ignore[typeddict-item]
    assert bad_status.value.param == "status"


def test_gdpr_delete_removes_the_contact_and_blocklists_unknown_addresses(url: str) -> None:
    upsert = {"inputs": [{"idProperty": "email", "id": "ada@example.com",
                          "properties": {"firstname": "Ada"}}]}
    response = requests.post(f"{url}/crm/objects/2026-09/contacts/batch/upsert", json=upsert,
                             headers=HUBSPOT_AUTH, timeout=5)
    assert response.status_code == 200

    for address in ("Ada@Example.com", "nobody@example.com"):
        erased = requests.post(f"{url}/crm/objects/2026-09/contacts/gdpr-delete", headers=HUBSPOT_AUTH,
                               timeout=5, json={"objectId": address, "idProperty": "email"})
        assert erased.status_code == 204 and erased.content == b""

    state = requests.get(f"{url}/_sandbox/state", timeout=5).json()
    assert state["contacts"] == []
    assert state["gdpr_deleted"] == [{"email": "ada@example.com"}, {"email": "nobody@example.com"}]
    unknown_id = requests.post(f"{url}/crm/v3/objects/contacts/gdpr-delete", headers=HUBSPOT_AUTH, timeout=5,
                               json={"objectId": "999"})
    assert unknown_id.status_code == 404
