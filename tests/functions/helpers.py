"""What the function tests share: entry points served as in Cloud Functions, Pub/Sub push envelopes and
pull subscriptions on the emulator, ID tokens from the Auth emulator, Stripe signatures, Firestore
snapshots and the provider sandbox's inspection API. Fixtures built on these live in conftest.py."""

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import flask
import functions_framework
import requests
from firebase_admin import auth
from google.api_core.exceptions import AlreadyExists, DeadlineExceeded, NotFound
from google.cloud import firestore, pubsub_v1
from google.pubsub_v1 import PubsubMessage
from launchready.platform import after_answer
from launchready.platform.clients import firebase_app

from tests.conftest import PROJECT
from tools.local.pubsub_wiring import push_subscription

# --- entry points -------------------------------------------------------------------------------


def function_app(tmp_path: Path, target: str) -> flask.Flask:
    """The entry point served by functions-framework from a generated main.py, as in Cloud Functions."""
    source = tmp_path / f"main_{target}.py"
    source.write_text(f"from launchready.handlers.{target} import {target}  # noqa: F401\n")
    app = functions_framework.create_app(target=target, source=str(source), signature_type="http")
    assert isinstance(app, flask.Flask)
    return app


@contextlib.contextmanager
def held_writers() -> Iterator[None]:
    """Every after-answer writer thread busy until the block ends: what is deferred meanwhile waits."""
    gate = threading.Event()
    for _ in range(after_answer.WRITERS):
        with after_answer.collecting():
            after_answer.defer(gate.wait)
    try:
        yield
    finally:
        gate.set()


# --- Pub/Sub ------------------------------------------------------------------------------------

PUBLISH_TIME = "2026-01-05T10:00:00Z"


def push_envelope(data: dict[str, Any], attributes: dict[str, str], *, message_id: str, subscription: str,
                  attempt: int = 1) -> dict[str, Any]:
    """The JSON body a Pub/Sub push subscription POSTs (both spellings of the fields, as Pub/Sub sends)."""
    return {
        "message": {"data": base64.b64encode(json.dumps(data).encode()).decode(), "attributes": attributes,
                    "messageId": message_id, "message_id": message_id,
                    "publishTime": PUBLISH_TIME, "publish_time": PUBLISH_TIME},
        "subscription": f"projects/{PROJECT}/subscriptions/{subscription}",
        "deliveryAttempt": attempt,
    }


def deliver_push(entry_point: Callable[[flask.Request], flask.Response], data: dict[str, Any],
                 attributes: dict[str, str], *, message_id: str, attempt: int = 1) -> flask.Response:
    """POST `data` to a worker's entry point as the worker's push subscription on the message's
    `source_topic` does (named as the stack names it)."""
    subscription = push_subscription(attributes["source_topic"], entry_point.__name__)
    envelope = push_envelope(data, attributes, message_id=message_id, subscription=subscription,
                             attempt=attempt)
    with flask.Flask(__name__).test_request_context("/", method="POST", json=envelope):
        return entry_point(flask.request)


def ensure_topic(publisher: pubsub_v1.PublisherClient, topic: str) -> str:
    path = publisher.topic_path(PROJECT, topic)
    try:
        publisher.create_topic(name=path)
    except AlreadyExists:
        pass
    return path


def drain_subscription(subscriber: pubsub_v1.SubscriberClient, path: str, *,
                       settle_seconds: float = 0.0) -> list[PubsubMessage]:
    """Pull and ack everything available; with `settle_seconds`, keep polling until that long is quiet.

    Publishers wait for the server's ack, so what they published is already there; the settle time is
    for messages the server makes available again later (a nacked message, for instance)."""
    messages: list[PubsubMessage] = []
    quiet_since: float | None = None
    while True:
        try:
            with warnings.catch_warnings():
                # Deprecated in the API, but the way to get an empty answer at once instead of a wait.
                warnings.simplefilter("ignore", DeprecationWarning)
                response = subscriber.pull(request={"subscription": path, "max_messages": 100,
                                                    "return_immediately": True}, timeout=10)
            received = list(response.received_messages)
        except DeadlineExceeded:
            received = []
        if received:
            quiet_since = None
            messages += [item.message for item in received]
            subscriber.acknowledge(subscription=path, ack_ids=[item.ack_id for item in received])
            continue
        quiet_since = quiet_since or time.monotonic()
        if time.monotonic() - quiet_since >= settle_seconds:
            return messages
        time.sleep(0.05)


class Subscription:
    """A fresh pull subscription on a topic of the emulator: sees every message published after it opens."""

    def __init__(self, topic: str) -> None:
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.topic = topic
        self.topic_path = ""
        self.path = ""
        self.open()

    def open(self) -> None:
        """(Re)create the topic if it is missing and a new subscription on it."""
        self.topic_path = ensure_topic(self.publisher, self.topic)
        self.path = self.subscriber.subscription_path(PROJECT, f"test-{self.topic}-{uuid.uuid4().hex[:8]}")
        self.subscriber.create_subscription(name=self.path, topic=self.topic_path)

    def drain(self) -> list[PubsubMessage]:
        """Everything published since the last drain."""
        return drain_subscription(self.subscriber, self.path)

    def delete(self) -> None:
        try:
            self.subscriber.delete_subscription(subscription=self.path)
        except NotFound:  # already gone with its deleted topic
            pass


def decoded(message: PubsubMessage) -> dict[str, Any]:
    return json.loads(message.data)


# --- Firestore ----------------------------------------------------------------------------------


# What the ops console reads besides the records themselves (run statistics, the journey journal, the
# inbox summaries, the email index) describes what a request did; it is not state the request changed.
TELEMETRY_COLLECTIONS = frozenset({"function_stats", "journeys", "timeline", "customer_journeys",
                                   "payment_sync_stats", "ops_inbox", "customer_emails"})


def firestore_documents(client: firestore.Client) -> dict[str, dict[str, Any]]:
    """Every document in the database (subcollections included), by path, telemetry left out."""
    found: dict[str, dict[str, Any]] = {}

    def walk(collection: firestore.CollectionReference) -> None:
        for ref in collection.list_documents():
            snapshot = ref.get()
            if snapshot.exists:
                found[ref.path] = snapshot.to_dict() or {}
            for sub in ref.collections():
                walk(sub)

    for collection in client.collections():
        if collection.id not in TELEMETRY_COLLECTIONS:
            walk(collection)
    return found


# --- Auth ---------------------------------------------------------------------------------------


def id_token(auth_host: str, *, email: str = "ada@example.com",
             name: str = "Ada Lovelace") -> tuple[str, str]:
    """(uid, ID token) of a new account, signed in with its password on the Auth emulator."""
    password = uuid.uuid4().hex
    user = auth.create_user(email=f"{uuid.uuid4().hex[:6]}.{email}", password=password, display_name=name,
                            app=firebase_app())
    response = requests.post(
        f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=fake-api-key",
        json={"email": user.email, "password": password, "returnSecureToken": True}, timeout=10)
    response.raise_for_status()
    return user.uid, response.json()["idToken"]


# --- Stripe -------------------------------------------------------------------------------------


def stripe_signature(payload: str, secret: str, timestamp: int | None = None) -> str:
    """Stripe's scheme: v1 = HMAC-SHA256(secret, f"{t}.{payload}"), sent as `t=...,v1=...`."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{timestamp}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


# --- provider sandbox ---------------------------------------------------------------------------

# The setting that points each provider's adapter at a base URL.
BASE_URL_SETTINGS = {"hubspot": "HUBSPOT_BASE_URL", "zendesk": "ZENDESK_BASE_URL",
                     "resend": "RESEND_BASE_URL", "stripe": "STRIPE_API_BASE"}


class Sandbox:
    """The provider sandbox's inspection API (/_sandbox/...), seen from one provider, or from all."""

    def __init__(self, url: str, provider: str | None = None) -> None:
        self.url = url
        self.provider = provider

    def recorded(self, provider: str | None = None) -> list[dict[str, Any]]:
        """The requests the sandbox received for the provider (or for all), oldest first."""
        provider = provider or self.provider
        params = {"provider": provider} if provider else {}
        return requests.get(f"{self.url}/_sandbox/requests", params=params, timeout=5).json()["requests"]

    def state(self) -> dict[str, list[dict[str, Any]]]:
        """What the providers hold: contacts, tickets, emails, checkout sessions..."""
        return requests.get(f"{self.url}/_sandbox/state", timeout=5).json()

    def fault(self, **spec: Any) -> dict[str, Any]:
        """Inject a fault (for this sandbox's provider unless the spec names one)."""
        spec = {"provider": self.provider, **spec} if self.provider else spec
        response = requests.post(f"{self.url}/_sandbox/faults", json=spec, timeout=5)
        assert response.status_code == 201, response.text
        return response.json()["fault"]

    def reset(self) -> None:
        requests.post(f"{self.url}/_sandbox/reset", timeout=5).raise_for_status()

    def advance_clock(self, seconds: float) -> None:
        """Move the providers' clock forward (idempotency windows, session expiry)."""
        response = requests.post(f"{self.url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)
        response.raise_for_status()
