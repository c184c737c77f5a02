"""Fixtures for the sandbox's tests: `held`, a sandbox called in process (no HTTP, one per module, reset
around each test); `webhook`, a stand-in for the local `stripe_webhook` endpoint (a server on 127.0.0.1
that records what the sandbox's Stripe delivers, payload and Stripe-Signature, and answers 200 like the
function does), with the sandbox pointed at it; `receiver`, the app's server for the stores' pushed
notifications."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import requests
import stripe

from tools.sandbox.app import Sandbox
from tools.sandbox.providers.stripe_webhook import WEBHOOK_EVENTS_ENV, WEBHOOK_SECRET_ENV, WEBHOOK_URL_ENV

SECRET = "whsec_sandboxreceiver0123456789"  # pragma: allowlist secret (a fake signing secret)


@pytest.fixture(scope="module")
def shared_sandbox() -> Sandbox:
    return Sandbox()


@pytest.fixture
def held(shared_sandbox: Sandbox) -> Iterator[Sandbox]:
    shared_sandbox.reset()
    yield shared_sandbox
    shared_sandbox.reset()


class WebhookReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.received: list[tuple[bytes, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)

    def events(self) -> list[dict[str, Any]]:
        """Every delivery, verified with stripe-python's own check (raises on a bad signature)."""
        return [
            stripe.Webhook.construct_event(payload.decode(), signature, SECRET).to_dict()
            for payload, signature in self.received
        ]

    def types(self) -> list[str]:
        return [json.loads(payload)["type"] for payload, _ in self.received]


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        server = cast(WebhookReceiver, self.server)
        server.received.append(
            (self.rfile.read(int(self.headers["Content-Length"])), self.headers["Stripe-Signature"])
        )
        body = b'{"status":"published"}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture
def webhook(monkeypatch: pytest.MonkeyPatch) -> Iterator[WebhookReceiver]:
    """The sandbox's Stripe delivers to a fresh receiver (enabled events: the sandbox's default)."""
    server = WebhookReceiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv(WEBHOOK_URL_ENV, f"http://127.0.0.1:{server.server_address[1]}/v1/stripe/webhook")
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, SECRET)
    monkeypatch.delenv(WEBHOOK_EVENTS_ENV, raising=False)
    yield server
    server.shutdown()
    server.server_close()


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records each JSON body POSTed to it and answers `status`;
    `on_receive`, when set, runs (in the request's thread) before it answers."""

    url: str = ""
    status: int = 200
    bodies: list[Any] = field(default_factory=list)
    on_receive: Callable[[Any], None] | None = None


class _NotificationHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver = cast(Any, self.server).receiver
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        receiver.bodies.append(body)
        if receiver.on_receive is not None:
            receiver.on_receive(body)
        payload = b'{"received": true}'
        self.send_response(receiver.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotificationHandler)
    made = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/apple/notifications")
    cast(Any, server).receiver = made
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


def store_control(url: str, store: str, path: str, body: dict[str, Any] | None = None,
                  status: int = 200) -> dict[str, Any]:
    """POST to a store's control endpoint /_sandbox/<store><path>, expecting `status`."""
    answer = requests.post(f"{url}/_sandbox/{store}{path}", json=body or {}, timeout=30)
    assert answer.status_code == status, answer.text
    return answer.json()
