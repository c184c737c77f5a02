"""support_worker against the Firestore and Pub/Sub emulators and the provider sandbox's Zendesk.

The acknowledgement email is observed where it really goes: a pull subscription on `notifications`.
"""

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from launchready.handlers import support_worker as tickets
from launchready.platform.clients import db

from tests.functions.helpers import Sandbox, Subscription, deliver_push

pytestmark = pytest.mark.runs_as("support_worker")

REFERENCE = "SR-7F3K2Q"
EVENT_ID = f"support:{REFERENCE}"
CORRELATION_ID = "corr-support-0001"
REQUEST_DOC = "req-5d41402abc4b2a76"
SUPPORT = {"reference": REFERENCE, "uid": "uid-ada", "email": "ada@example.com", "name": "Ada Lovelace",
           "subject": "Charged twice", "message": "I was charged twice this month.", "category": "billing",
           "created_at": "2025-01-01T10:00:00+00:00"}


def deliver(data: dict[str, Any], *, attempt: int = 1, message_id: str = "5001") -> flask.Response:
    """Deliver `data` as the support push subscription would."""
    attributes = {"event_id": EVENT_ID, "correlation_id": CORRELATION_ID, "source_topic": "support"}
    return deliver_push(tickets.support_worker, data, attributes, message_id=message_id, attempt=attempt)


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox], clean_firestore: str) -> Sandbox:
    return provider_sandbox("zendesk", ZENDESK_EMAIL="agent@example.com", ZENDESK_API_TOKEN="zd-test-token")


@pytest.fixture
def support_request(sandbox: Sandbox) -> dict[str, Any]:
    """The document support_request wrote before publishing (its id is not in the message)."""
    document = {**{k: v for k, v in SUPPORT.items() if k != "name"}, "client_request_id": str(uuid.uuid4()),
                "status": "received", "created_at": datetime(2025, 1, 1, 10, tzinfo=UTC)}
    db().collection("support_requests").document(REQUEST_DOC).set(document)
    # Another user's request, so the write-back has to pick the right one.
    db().collection("support_requests").document("req-other").set({**document, "reference": "SR-OTHER1",
                                                                     "uid": "uid-bob"})
    return document


def request_doc(doc_id: str = REQUEST_DOC) -> dict[str, Any]:
    return db().collection("support_requests").document(doc_id).get().to_dict()


def ticket_step() -> Any:
    return db().collection("events").document(EVENT_ID).collection("steps").document("zendesk_ticket")


def wait_passes() -> None:
    """What time does between Pub/Sub redeliveries: the step's not-before (Retry-After) passes."""
    ticket_step().update({"not_before": datetime.now(UTC) - timedelta(seconds=1)})


def mark_done(step: str, result: Any) -> None:
    db().collection("events").document(EVENT_ID).collection("steps").document(step).set(
        {"state": "done", "result": result})


def test_one_ticket_written_back_and_one_acknowledgement_queued(sandbox: Sandbox, support_request: dict,
                                                                outbox: Subscription) -> None:
    response = deliver(SUPPORT)

    assert response.status_code == 200
    [ticket] = sandbox.state()["tickets"]
    assert ticket["external_id"] == REFERENCE
    assert ticket["subject"] == "Charged twice" and ticket["priority"] == "high"
    assert ticket["description"].startswith("I was charged twice this month.\n\n--\nReference: SR-7F3K2Q")
    assert ticket["tags"] == ["category_billing", "launchready"]
    [request] = sandbox.recorded()
    assert request["idempotency_key"] == REFERENCE
    assert request["correlation_id"] == CORRELATION_ID
    assert request["body"]["ticket"]["requester"] == {"email": "ada@example.com", "name": "Ada Lovelace"}
    assert request["headers"]["Authorization"] == "Basic [redacted]"

    written = request_doc()
    assert written["ticket_id"] == ticket["id"] and written["status"] == "ticket_created"
    assert "ticket_id" not in request_doc("req-other")

    [message] = outbox.drain()
    assert message.attributes["event_id"] == f"email:support-ack:{REFERENCE}"
    assert message.attributes["correlation_id"] == CORRELATION_ID
    email = json.loads(message.data)
    assert email["key"] == f"support-ack:{REFERENCE}" and email["to"] == ["ada@example.com"]
    assert REFERENCE in email["subject"] and "Hi Ada Lovelace," in email["text"]
    assert email["tags"] == {"kind": "support_ack"}


def test_a_redelivered_message_repeats_no_step(sandbox: Sandbox, support_request: dict,
                                               outbox: Subscription) -> None:
    assert deliver(SUPPORT).status_code == 200
    assert len(outbox.drain()) == 1

    assert deliver(SUPPORT, attempt=2).status_code == 200

    assert len(sandbox.recorded()) == 1
    assert outbox.drain() == []


def test_a_lost_response_then_redelivery_leaves_exactly_one_ticket(sandbox: Sandbox, support_request: dict,
                                                                   outbox: Subscription) -> None:
    sandbox.fault(mode="lost_response", seconds=3)

    assert deliver(SUPPORT).status_code == 500
    assert "ticket_id" not in request_doc()
    assert deliver(SUPPORT, attempt=2).status_code == 200

    [ticket] = sandbox.state()["tickets"]
    first, second = sandbox.recorded()
    assert first["fault"] == "lost_response"
    # The repeat looks the ticket up by our reference before creating anything.
    assert (second["method"], second["query"]) == ("GET", {"external_id": [REFERENCE]})
    assert request_doc()["ticket_id"] == ticket["id"]
    assert len(outbox.drain()) == 1


def test_a_replay_after_zendesk_forgot_the_idempotency_key_still_makes_one_ticket(
        sandbox: Sandbox, support_request: dict, outbox: Subscription) -> None:
    sandbox.fault(mode="lost_response", seconds=3)
    assert deliver(SUPPORT).status_code == 500  # the ticket was created; the answer was lost
    sandbox.advance_clock(26 * 3600)  # the dead letter is replayed the next day: Zendesk keeps keys 2 h

    assert deliver(SUPPORT, attempt=1, message_id="5002").status_code == 200

    [ticket] = sandbox.state()["tickets"]
    assert request_doc()["ticket_id"] == ticket["id"]
    assert [entry["method"] for entry in sandbox.recorded()] == ["POST", "GET"]


def test_a_retry_that_finds_no_ticket_creates_it(sandbox: Sandbox, support_request: dict,
                                                 outbox: Subscription) -> None:
    sandbox.fault(mode="status", status=503)  # refused before anything was created
    assert deliver(SUPPORT).status_code == 500

    assert deliver(SUPPORT, attempt=2).status_code == 200

    assert [(entry["method"], entry["status"]) for entry in sandbox.recorded()] == [
        ("POST", 503), ("GET", 200), ("POST", 201)]
    assert len(sandbox.state()["tickets"]) == 1


def test_a_zendesk_429_is_not_retried_before_its_retry_after(sandbox: Sandbox, support_request: dict,
                                                             outbox: Subscription) -> None:
    sandbox.fault(mode="status", status=429, retry_after=30)

    assert deliver(SUPPORT).status_code == 500
    step = ticket_step().get().to_dict()
    assert 29 <= (step["not_before"] - step["failed_at"]).total_seconds() <= 31
    assert deliver(SUPPORT, attempt=2).status_code == 500
    assert len(sandbox.recorded()) == 1  # the early redelivery called nothing
    wait_passes()
    assert deliver(SUPPORT, attempt=3).status_code == 200
    assert len(sandbox.state()["tickets"]) == 1


def test_a_crash_after_the_ticket_step_resumes_at_the_write_back(sandbox: Sandbox, support_request: dict,
                                                                 outbox: Subscription) -> None:
    mark_done("zendesk_ticket", 4242)

    assert deliver(SUPPORT, attempt=2).status_code == 200

    assert sandbox.recorded() == []
    assert request_doc()["ticket_id"] == 4242
    assert len(outbox.drain()) == 1


def test_a_crash_after_the_write_back_only_queues_the_acknowledgement(sandbox: Sandbox, support_request: dict,
                                                                      outbox: Subscription) -> None:
    mark_done("zendesk_ticket", 4242)
    mark_done("write_back", REQUEST_DOC)

    assert deliver(SUPPORT, attempt=2).status_code == 200

    assert sandbox.recorded() == []
    assert "ticket_id" not in request_doc()  # the recorded step is not run again
    assert len(outbox.drain()) == 1


def test_a_failed_acknowledgement_publish_is_redelivered_without_a_second_ticket(
        sandbox: Sandbox, support_request: dict, outbox: Subscription) -> None:
    outbox.publisher.delete_topic(topic=outbox.topic_path)  # publishing now fails

    assert deliver(SUPPORT).status_code == 500
    assert request_doc()["status"] == "ticket_created"

    outbox.delete()
    outbox.open()  # the topic is back
    assert deliver(SUPPORT, attempt=2).status_code == 200

    assert len(sandbox.recorded()) == 1 and len(sandbox.state()["tickets"]) == 1
    assert len(outbox.drain()) == 1


@pytest.mark.parametrize("status", [429, 503])
def test_rate_limits_and_server_errors_answer_500_for_redelivery(sandbox: Sandbox, support_request: dict,
                                                                 outbox: Subscription, status: int) -> None:
    sandbox.fault(mode="status", status=status)

    assert deliver(SUPPORT).status_code == 500
    assert sandbox.state()["tickets"] == [] and "ticket_id" not in request_doc()
    assert outbox.drain() == []

    wait_passes()  # Zendesk's 429 carries Retry-After
    assert deliver(SUPPORT, attempt=2).status_code == 200
    assert len(sandbox.state()["tickets"]) == 1


def test_a_validation_error_is_recorded_as_a_sync_failure_and_acked(sandbox: Sandbox, support_request: dict,
                                                                    outbox: Subscription) -> None:
    sandbox.fault(mode="status", status=422, code="RecordInvalid", message="Requester: Email is invalid")

    response = deliver(SUPPORT)

    assert response.status_code == 200
    failure = db().collection("sync_failures").document(f"support_worker:{EVENT_ID}").get().to_dict()
    assert (failure["provider"], failure["status"], failure["code"]) == ("zendesk", 422, "RecordInvalid")
    written = request_doc()
    assert "ticket_id" not in written
    # The 202 promised a confirmation: the request says it failed and what the user is told, once.
    assert written["status"] == "failed" and written["failure_code"] == "RecordInvalid"
    assert REFERENCE in written["user_message"] and "alerted" in written["user_message"]
    [message] = outbox.drain()
    email = json.loads(message.data)
    assert email["key"] == f"support-failed:{REFERENCE}" and email["to"] == ["ada@example.com"]
    assert written["user_message"] in email["text"] and email["tags"] == {"kind": "support_failed"}


def test_a_message_outside_the_contract_is_recorded_without_calling_zendesk(sandbox: Sandbox) -> None:
    response = deliver({**SUPPORT, "email": ""})

    assert response.status_code == 200
    failure = db().collection("sync_failures").document(f"support_worker:{EVENT_ID}").get().to_dict()
    assert failure["code"] == "invalid_message" and "email" in failure["detail"]
    assert sandbox.recorded() == []


def test_a_missing_request_document_is_a_permanent_failure(sandbox: Sandbox, outbox: Subscription) -> None:
    assert deliver(SUPPORT).status_code == 200

    failure = db().collection("sync_failures").document(f"support_worker:{EVENT_ID}").get().to_dict()
    assert failure["code"] == "support_request_not_found"
    assert outbox.drain() == []
