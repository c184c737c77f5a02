"""The sandbox's account-lifecycle endpoints over real HTTP: Stripe subscriptions (create, list, cancel
now or at period end, and the answers Stripe gives for an already canceled one) and HubSpot's GDPR delete."""

from collections.abc import Iterator

import pytest
import requests
import stripe

from tools.sandbox import SandboxServer, start_sandbox

HUBSPOT_AUTH = {"Authorization": "Bearer pat-na1-test-token"}
STRIPE_KEY = "sk_test_lifecycle"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[SandboxServer, str]]:
    server, url = start_sandbox()
    yield server, url
    server.stop()


@pytest.fixture
def url(sandbox: tuple[SandboxServer, str]) -> Iterator[str]:
    server, base = sandbox
    server.sandbox.reset()
    yield base


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
