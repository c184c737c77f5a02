"""The Stripe sandbox's pay page: its button completes the Checkout Session and sends the signed
checkout.session.completed to the local webhook, verified here with stripe-python's own check."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import requests
import stripe

from tools.sandbox import start_sandbox
from tools.sandbox.providers.stripe import WEBHOOK_SECRET_ENV, WEBHOOK_URL_ENV

SECRET = "whsec_sandboxpaypage0123456789"
CHECKOUT_PARAMS: dict[str, Any] = {
    "mode": "subscription",
    "line_items": [{"price": "price_local_pro", "quantity": 1}],
    "success_url": "https://app.example.com/ok",
    "cancel_url": "https://app.example.com/cancel",
    "client_reference_id": "uid-1",
    "customer_email": "ada@example.com",
}


class Webhook(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = cast(Webhook, self.server)
        server.received.append(
            (self.rfile.read(int(self.headers["Content-Length"])), self.headers["Stripe-Signature"])
        )
        body = b'{"status":"published"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[Webhook]:
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(WEBHOOK_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}/v1/stripe/webhook")
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, SECRET)
    yield server
    server.shutdown()
    server.server_close()


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
    sandbox_url: str, webhook: Webhook
) -> None:
    session = new_session(sandbox_url)

    answer = requests.post(session["url"], headers={"Accept": "application/json"}, timeout=10).json()

    assert (answer["webhook_status"], answer["webhook_answer"]) == (200, {"status": "published"})
    [(payload, signature)] = webhook.received
    event = stripe.Webhook.construct_event(payload.decode(), signature, SECRET)  # raises on a bad signature
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
