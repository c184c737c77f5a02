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
MIN_BACKOFF_SECONDS = 1


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


def _wire(endpoint: str, name: str) -> tuple[str, str]:
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
                minimum_backoff=duration_pb2.Duration(seconds=MIN_BACKOFF_SECONDS),
                maximum_backoff=duration_pb2.Duration(seconds=4),
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


def test_emulator_dead_letters_with_backoff_but_sends_no_delivery_attempt(
    pubsub_emulator: str, failing_worker: FailingWorker
) -> None:
    dlq_sub, _ = _wire(failing_worker.url, "emulator-direct")
    dead = _dead_letters(dlq_sub)
    assert len(dead) == 1
    assert dead[0].message.attributes["CloudPubSubDeadLetterSourceDeliveryCount"] == str(MAX_ATTEMPTS)
    assert dead[0].message.attributes["event_id"] == "crm:u1:test"
    assert len(failing_worker.deliveries) == MAX_ATTEMPTS
    # The retry policy is honoured: redeliveries wait at least the minimum backoff.
    times = [moment for moment, _ in failing_worker.deliveries]
    assert all(
        later - earlier >= MIN_BACKOFF_SECONDS * 0.9 for earlier, later in zip(times, times[1:], strict=False)
    )
    # The difference the relay exists for: the cloud would send deliveryAttempt here.
    assert all("deliveryAttempt" not in body for _, body in failing_worker.deliveries)


def test_push_relay_adds_delivery_attempt(pubsub_emulator: str, failing_worker: FailingWorker) -> None:
    relay = RelayServer(0, {"crm_worker": failing_worker.url}, timeout=10)
    for _ in _serve(relay):
        dlq_sub, _ = _wire(f"http://127.0.0.1:{relay.server_address[1]}/crm_worker", "through-relay")
        assert len(_dead_letters(dlq_sub)) == 1
    attempts = [body["deliveryAttempt"] for _, body in failing_worker.deliveries]
    assert attempts == list(range(1, MAX_ATTEMPTS + 1))
    assert {body["message"]["attributes"]["event_id"] for _, body in failing_worker.deliveries} == {
        "crm:u1:test"
    }
