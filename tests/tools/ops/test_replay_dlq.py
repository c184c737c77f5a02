"""tools.ops.replay_dlq on the Pub/Sub emulator, and a replayed billing event through the ledger."""

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.api_core.exceptions import AlreadyExists
from google.cloud import pubsub_v1
from launchready.handlers import billing_worker as billing

from tests.conftest import PROJECT
from tests.functions.domain.test_billing_state import checkout_session, stripe_event
from tests.functions.helpers import (
    Subscription,
    decoded,
    deliver_push,
    drain_subscription,
    ensure_topic,
)
from tools.exit_codes import ExitCode
from tools.ops import replay_dlq

TOPIC = "billing-events"
DLQ_SUBSCRIPTION = f"{TOPIC}-dlq-sub"


class DeadLetters:
    """`<topic>-dlq` with its retained subscription, as the stack and `make up` create them."""

    def __init__(self) -> None:
        self.publisher = pubsub_v1.PublisherClient()
        self.subscriber = pubsub_v1.SubscriberClient()
        self.topic_path = ensure_topic(self.publisher, f"{TOPIC}-dlq")
        self.path = self.subscriber.subscription_path(PROJECT, DLQ_SUBSCRIPTION)
        try:
            self.subscriber.create_subscription(name=self.path, topic=self.topic_path,
                                                ack_deadline_seconds=60)
        except AlreadyExists:
            pass
        self.purge()

    def add(self, data: dict[str, Any], **attributes: str) -> str:
        """A message as Pub/Sub dead-letters it: the original data and attributes plus its own."""
        dead_letter_attributes = {"CloudPubSubDeadLetterSourceDeliveryCount": "5",
                                  "CloudPubSubDeadLetterSourceSubscription": f"{TOPIC}-push-billing_worker"}
        message = pubsub_v1.types.PubsubMessage(data=json.dumps(data).encode(),
                                                attributes={**attributes, **dead_letter_attributes})
        return replay_dlq.publish_raw(self.publisher, self.topic_path, message.data, dict(message.attributes))

    def purge(self) -> None:
        self.pending()

    def pending(self) -> int:
        """How many are waiting; a message released by a nack reappears shortly, so allow it time."""
        return len(drain_subscription(self.subscriber, self.path, settle_seconds=0.5))


@pytest.fixture
def dead_letters(pubsub_emulator: str) -> DeadLetters:
    return DeadLetters()


@pytest.fixture
def topic_messages(pubsub_emulator: str) -> Iterator[Subscription]:
    subscription = Subscription(TOPIC)
    yield subscription
    subscription.delete()


def attributes_for(event_id: str) -> dict[str, str]:
    return {"event_id": event_id, "correlation_id": f"corr-{uuid.uuid4().hex[:10]}", "source_topic": TOPIC,
            "event_type": "invoice.paid"}


def run(*, max_messages: int | None = None, dry_run: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = replay_dlq.run(TOPIC, project=PROJECT, max_messages=max_messages, dry_run=dry_run, out=out)
    return code, out.getvalue()


def test_each_dead_letter_is_republished_once_with_its_data_and_attributes(
        dead_letters: DeadLetters, topic_messages: Subscription) -> None:
    first = attributes_for("stripe:evt_1Replay")
    second = attributes_for("stripe:evt_2Replay")
    first_id = dead_letters.add({"id": "evt_1Replay", "n": 1}, **first)
    second_id = dead_letters.add({"id": "evt_2Replay", "n": 2}, **second)

    code, output = run()
    assert code == 0 and "replayed 2 message(s)" in output

    republished = {m.attributes["event_id"]: m for m in topic_messages.drain()}
    assert set(republished) == {"stripe:evt_1Replay", "stripe:evt_2Replay"}
    assert decoded(republished["stripe:evt_1Replay"]) == {"id": "evt_1Replay", "n": 1}
    assert dict(republished["stripe:evt_1Replay"].attributes) == {**first, "replayed_from": first_id}
    assert dict(republished["stripe:evt_2Replay"].attributes) == {**second, "replayed_from": second_id}
    assert dead_letters.pending() == 0

    code, output = run()  # nothing left: a second run replays nothing
    assert code == 0 and "replayed 0 message(s)" in output
    assert topic_messages.drain() == []


def test_dry_run_lists_without_acknowledging(dead_letters: DeadLetters, topic_messages: Subscription) -> None:
    dead_letters.add({"id": "evt_1Dry"}, **attributes_for("stripe:evt_1Dry"))
    dead_letters.add({"id": "evt_2Dry"}, **attributes_for("stripe:evt_2Dry"))

    code, output = run(dry_run=True)

    assert code == 0 and "2 message(s) in the dead-letter subscription" in output
    assert "event_id=stripe:evt_1Dry" in output and "attempts=5" in output
    assert topic_messages.drain() == []
    assert dead_letters.pending() == 2  # released at once, not after the ack deadline


def test_max_limits_the_replay(dead_letters: DeadLetters, topic_messages: Subscription) -> None:
    for index in range(3):
        dead_letters.add({"n": index}, **attributes_for(f"stripe:evt_{index}Max"))
    code, output = run(max_messages=2)
    assert code == 0 and "replayed 2 message(s)" in output
    assert len(topic_messages.drain()) == 2
    assert dead_letters.pending() == 1


def test_local_reads_the_running_stack_endpoints(dead_letters: DeadLetters, topic_messages: Subscription,
                                                pubsub_emulator: str, tmp_path: Path) -> None:
    dead_letters.add({"id": "evt_1Local"}, **attributes_for("stripe:evt_1Local"))
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"project_id": PROJECT, "emulators": {"pubsub": pubsub_emulator}}))
    out = io.StringIO()
    assert replay_dlq.run(TOPIC, local=endpoints, out=out) == ExitCode.OK
    assert f"in project {PROJECT} (emulator {pubsub_emulator})" in out.getvalue()
    assert [m.attributes["event_id"] for m in topic_messages.drain()] == ["stripe:evt_1Local"]


def test_local_without_a_running_stack_is_a_clear_error(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_dlq.run(TOPIC, local=tmp_path / "missing.json") == ExitCode.ENVIRONMENT
    assert "is `make up` running?" in capsys.readouterr().err


def test_unknown_topic_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_dlq.run("billing-event", project=PROJECT) == ExitCode.USAGE
    error = capsys.readouterr().err
    assert "unknown topic 'billing-event'" in error and "billing-events, crm-sync" in error


def test_missing_dead_letter_subscription_is_a_clear_error(pubsub_emulator: str,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    try:
        subscriber.delete_subscription(subscription=subscriber.subscription_path(PROJECT, "support-dlq-sub"))
    except Exception:  # noqa: BLE001 - absent already is the state this test needs
        pass
    assert replay_dlq.run("support", project=PROJECT) == ExitCode.FAILED
    assert "support-dlq-sub does not exist" in capsys.readouterr().err


@pytest.mark.runs_as("billing_worker")
def test_a_replayed_event_whose_steps_are_done_repeats_no_side_effect(
        dead_letters: DeadLetters, topic_messages: Subscription, clean_firestore: str,
        auth_emulator: str) -> None:
    from firebase_admin import auth
    from google.cloud import firestore
    from launchready.platform.clients import db, firebase_app

    crm_sync = Subscription("crm-sync")
    ensure_topic(crm_sync.publisher, "notifications")
    try:
        uid = f"uid_{uuid.uuid4().hex[:12]}"
        auth.create_user(uid=uid, email=f"{uid}@example.com", app=firebase_app())
        db().collection("users").document(uid).set({"email": f"{uid}@example.com",
                                                     "created_at": firestore.SERVER_TIMESTAMP})
        event = stripe_event("checkout.session.completed", checkout_session(uid=uid), created=100)
        attributes = attributes_for(f"stripe:{event['id']}")

        # Processed once (all steps done), but its last delivery's answer was lost and it dead-lettered.
        delivery = deliver_push(billing.billing_worker, event, attributes, message_id="m-1", attempt=5)
        assert delivery.status_code == 200
        assert len(crm_sync.drain()) == 1
        dead_letters.add(event, **attributes)

        code, _ = run()
        [replayed] = topic_messages.drain()
        assert code == 0 and replayed.attributes["event_id"] == f"stripe:{event['id']}"

        # The push subscription delivers the replayed message to the worker again.
        assert decoded(replayed) == event
        redelivery = deliver_push(billing.billing_worker, decoded(replayed), dict(replayed.attributes),
                                  message_id=replayed.message_id)
        assert redelivery.status_code == 200
        assert crm_sync.drain() == []  # ledger: crm step already done, nothing published again
        assert db().collection("users").document(uid).get().to_dict()["billing"]["applied"] == {
            "cs_test_a1B2c3": 100, "sub_1PqRsTuVwXyZ": 100}
    finally:
        crm_sync.delete()
