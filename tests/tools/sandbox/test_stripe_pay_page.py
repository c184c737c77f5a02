"""The Stripe sandbox's pay page: its button completes the Checkout Session and sends the signed
checkout.session.completed to the local webhook, verified here with stripe-python's own check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import stripe

from tests.tools.sandbox.conftest import WebhookReceiver
from tools.sandbox import start_sandbox
from tools.sandbox.providers.stripe_webhook import WEBHOOK_URL_ENV

CHECKOUT_PARAMS: dict[str, Any] = {
    "mode": "subscription",
    "line_items": [{"price": "price_local_pro", "quantity": 1}],
    "success_url": "https://app.example.com/ok",
    "cancel_url": "https://app.example.com/cancel",
    "client_reference_id": "uid-1",
    "customer_email": "ada@example.com",
}


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    server, url = start_sandbox()
    yield url
    server.stop()


def new_session(url: str) -> dict[str, Any]:
    client = stripe.StripeClient("sk_test_paypage", base_addresses={"api": url}, max_network_retries=0)
    return client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS).to_dict()  # type: ignore[arg-type]


def test_the_pay_page_offers_the_button(sandbox_url: str) -> None:
    session = new_session(sandbox_url)

    page = requests.get(session["url"], timeout=5).text

    assert f'<form method="post" action="/c/pay/{session["id"]}">' in page and "Pay (sandbox)" in page


def test_the_button_completes_the_session_and_sends_a_signed_event(
    sandbox_url: str, webhook: WebhookReceiver
) -> None:
    session = new_session(sandbox_url)

    answer = requests.post(session["url"], headers={"Accept": "application/json"}, timeout=10).json()

    assert (answer["webhook_status"], answer["webhook_answer"]) == (200, {"status": "published"})
    [(payload, signature)] = webhook.received
    [event] = webhook.events()  # verified with stripe-python's check
    assert event["type"] == "checkout.session.completed"
    sent = event["data"]["object"]
    assert (sent["id"], sent["status"], sent["payment_status"]) == (session["id"], "complete", "paid")
    assert sent["customer"].startswith("cus_") and sent["subscription"].startswith("sub_")
    assert sent["client_reference_id"] == "uid-1" and sent["customer_details"]["email"] == "ada@example.com"
    # The sandbox's own record shows the session paid, as Stripe's dashboard would.
    [stored] = requests.get(f"{sandbox_url}/_sandbox/state", timeout=5).json()["checkout_sessions"]
    assert (stored["status"], stored["payment_status"]) == ("complete", "paid")
    assert json.loads(payload)["id"] == answer["event"]["id"]


def test_without_a_webhook_the_page_says_why_nothing_was_sent(
    sandbox_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WEBHOOK_URL_ENV, raising=False)
    session = new_session(sandbox_url)

    page = requests.post(session["url"], timeout=10).text

    assert "not sent" in page and WEBHOOK_URL_ENV in page
