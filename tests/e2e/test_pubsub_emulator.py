"""What the Pub/Sub emulator honours of the push subscriptions' settings, and how the push relay fills
the gap (docs/local.md, "How local differs from the cloud")."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2
from google.pubsub_v1 import types

from tools.local.push_relay import RelayServer

PROJECT = "demo-launchready"
MAX_ATTEMPTS = 5
# Short policies keep the dead-letter tests quick.
FAST_BACKOFF_SECONDS = (1, 4)
# The catalog's minimum backoff: well above the emulator's first redelivery delay (about a second), so
# it shows whether the policy is honoured.
CATALOG_MIN_BACKOFF_SECONDS = 10
# What the relay enforces in its test: above the emulator's delay, short enough for a quick test.
RELAY_MIN_BACKOFF_SECONDS = 3.0


class FailingWorker(ThreadingHTTPServer):
    """Answers 500 to every push, like a worker whose provider is down, and records what it got."""

    daemon_threads = True

    def __init__(self) -> None:
        self.deliveries: list[tuple[float, dict]] = []
        super().__init__(("127.0.0.1", 0), _FailingHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/"


class _FailingHandler(BaseHTTPRequestHandler):
    @property
    def worker(self) -> FailingWorker:
        return cast(FailingWorker, self.server)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.worker.deliveries.append((time.monotonic(), body))
        self.send_response(500)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(server: ThreadingHTTPServer) -> Iterator[ThreadingHTTPServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def failing_worker() -> Iterator[FailingWorker]:
    yield from _serve(FailingWorker())  # type: ignore[misc]


def _wire(endpoint: str, name: str, backoff: tuple[int, int] = FAST_BACKOFF_SECONDS) -> tuple[str, str]:
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.create_topic(name=publisher.topic_path(PROJECT, name)).name
    dlq = publisher.create_topic(name=publisher.topic_path(PROJECT, f"{name}-dlq")).name
    dlq_sub = subscriber.create_subscription(
        name=subscriber.subscription_path(PROJECT, f"{name}-dlq-sub"), topic=dlq
    ).name
    subscriber.create_subscription(
        request=types.Subscription(
            name=subscriber.subscription_path(PROJECT, f"{name}-push"),
            topic=topic,
            push_config=types.PushConfig(push_endpoint=endpoint),
            ack_deadline_seconds=10,
            retry_policy=types.RetryPolicy(
                minimum_backoff=duration_pb2.Duration(seconds=backoff[0]),
                maximum_backoff=duration_pb2.Duration(seconds=backoff[1]),
            ),
            dead_letter_policy=types.DeadLetterPolicy(
                dead_letter_topic=dlq, max_delivery_attempts=MAX_ATTEMPTS
            ),
        )
    )
    publisher.publish(topic, b'{"uid":"u1"}', event_id="crm:u1:test").result(timeout=10)
    return dlq_sub, topic


def _dead_letters(dlq_sub: str) -> list:
    subscriber = pubsub_v1.SubscriberClient()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        received = subscriber.pull(subscription=dlq_sub, max_messages=10, timeout=10).received_messages
        if received:
            return list(received)
        time.sleep(0.5)
    return []


def test_emulator_dead_letters_but_sends_no_delivery_attempt(
    pubsub_emulator: str, failing_worker: FailingWorker
) -> None:
    dlq_sub, _ = _wire(failing_worker.url, "emulator-direct")
    dead = _dead_letters(dlq_sub)
    assert len(dead) == 1
    assert dead[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(MAX_ATTEMPTS)
    assert dead[0].message.attributes["event_id"] == "crm:u1:test"
    assert len(failing_worker.deliveries) == MAX_ATTEMPTS
    # The difference the relay exists for: the cloud would send deliveryAttempt here.
    assert all("deliveryAttempt" not in body for _, body in failing_worker.deliveries)


def test_emulator_redelivers_the_first_retry_before_the_minimum_backoff(
    pubsub_emulator: str, failing_worker: FailingWorker
) -> None:
    """The other difference the relay makes up for (docs/local.md): with the catalog's 10 s minimum
    backoff the emulator sends the first redelivery after about a second."""
    _wire(failing_worker.url, "emulator-backoff", backoff=(CATALOG_MIN_BACKOFF_SECONDS, 600))
    deadline = time.monotonic() + 2 * CATALOG_MIN_BACKOFF_SECONDS
    while len(failing_worker.deliveries) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    (first, _), (second, _) = failing_worker.deliveries[:2]
    assert second - first < CATALOG_MIN_BACKOFF_SECONDS / 2


def test_push_relay_adds_delivery_attempt_and_holds_redeliveries_for_the_minimum_backoff(
    pubsub_emulator: str, failing_worker: FailingWorker
) -> None:
    relay = RelayServer(0, {"crm_worker": failing_worker.url}, timeout=10,
                        min_backoff=RELAY_MIN_BACKOFF_SECONDS, max_attempts=MAX_ATTEMPTS)
    for _ in _serve(relay):
        dlq_sub, _ = _wire(f"http://127.0.0.1:{relay.server_address[1]}/crm_worker", "through-relay")
        assert len(_dead_letters(dlq_sub)) == 1
    attempts = [body["deliveryAttempt"] for _, body in failing_worker.deliveries]
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    times = [moment for moment, _ in failing_worker.deliveries]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert min(gaps) >= RELAY_MIN_BACKOFF_SECONDS * 0.95, gaps
    assert {body["message"]["attributes"]["event_id"] for _, body in failing_worker.deliveries} == {
        "crm:u1:test"
    }
