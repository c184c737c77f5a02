"""email_worker against the Firestore emulator and the provider sandbox's Resend.

Each test delivers a Pub/Sub push envelope through a Flask test request, exactly as Pub/Sub would,
and checks what the sandbox received and what Firestore holds afterwards.
"""

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from launchready.handlers import email_worker as mailer
from launchready.platform.clients import db

from tests.functions.helpers import Sandbox, deliver_push

pytestmark = pytest.mark.runs_as("email_worker")

KEY = "support-ack:SR-7F3K2Q"
EVENT_ID = f"email:{KEY}"
CORRELATION_ID = "corr-mailer-0001"
EMAIL = {"key": KEY, "to": ["ada@example.com"], "subject": "We received your request [SR-7F3K2Q]",
         "text": "Hi Ada,\n\nThanks.", "html": "<p>Hi Ada,</p><p>Thanks.</p>",
         "tags": {"kind": "support_ack"}}


def deliver(data: dict[str, Any], *, event_id: str = EVENT_ID, attempt: int = 1,
            message_id: str = "9001") -> flask.Response:
    """Deliver `data` as the notifications push subscription would."""
    attributes = {"event_id": event_id, "correlation_id": CORRELATION_ID, "source_topic": "notifications"}
    return deliver_push(mailer.email_worker, data, attributes, message_id=message_id, attempt=attempt)


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox], clean_firestore: str) -> Sandbox:
    return provider_sandbox("resend", RESEND_API_KEY="re_test_123")


def notification_record() -> dict[str, Any] | None:
    return db().collection("notifications").document(KEY).get().to_dict()


def send_step() -> dict[str, Any] | None:
    return (db().collection("events").document(EVENT_ID).collection("steps").document("resend_send")
            .get().to_dict())


def test_sends_one_email_with_the_key_as_idempotency_key_and_records_it(sandbox: Sandbox) -> None:
    response = deliver(EMAIL)

    assert response.status_code == 200
    [email] = sandbox.state()["emails"]
    assert (email["to"], email["subject"], email["text"], email["html"]) == (
        EMAIL["to"], EMAIL["subject"], EMAIL["text"], EMAIL["html"])
    assert email["tags"] == [{"name": "kind", "value": "support_ack"}]
    [request] = sandbox.recorded()
    assert request["idempotency_key"] == KEY
    assert request["correlation_id"] == CORRELATION_ID
    assert request["headers"]["Authorization"] == "Bearer [redacted]"
    record = notification_record()
    assert record is not None
    assert record["resend_id"] == email["id"]
    assert record["to"] == EMAIL["to"] and record["subject"] == EMAIL["subject"]
    assert record["tags"] == EMAIL["tags"]  # the smoke test labels Resend's tagless list with them
    assert record["correlation_id"] == CORRELATION_ID
    assert abs(record["sent_at"] - datetime.now(UTC)) < timedelta(minutes=1)


def test_a_redelivered_message_does_not_call_resend_again(sandbox: Sandbox) -> None:
    assert deliver(EMAIL).status_code == 200
    assert deliver(EMAIL, attempt=2).status_code == 200
    assert deliver(EMAIL, message_id="9002").status_code == 200  # the same email published twice

    assert len(sandbox.recorded()) == 1
    assert len(sandbox.state()["emails"]) == 1


def test_an_existing_record_means_sent_even_after_the_idempotency_window(sandbox: Sandbox) -> None:
    # Past Resend's 24 h window (e.g. a replay from the dead-letter topic) only the record remembers.
    db().collection("notifications").document(KEY).set({"to": EMAIL["to"], "resend_id": "earlier-id"})

    assert deliver(EMAIL).status_code == 200

    assert sandbox.recorded() == []
    assert notification_record()["resend_id"] == "earlier-id"


def test_a_crash_after_the_send_step_writes_the_record_without_sending_again(
        sandbox: Sandbox) -> None:
    # The step is recorded as done but the instance died before writing notifications/{key}.
    db().collection("events").document(EVENT_ID).collection("steps").document("resend_send").set(
        {"state": "done", "result": "id-from-first-delivery"})

    assert deliver(EMAIL, attempt=2).status_code == 200

    assert sandbox.recorded() == []
    assert notification_record()["resend_id"] == "id-from-first-delivery"


def test_a_lost_response_then_redelivery_sends_exactly_one_email(sandbox: Sandbox) -> None:
    sandbox.fault(mode="lost_response", path="/emails", seconds=3)

    first = deliver(EMAIL)
    assert first.status_code == 500  # the client timed out: Pub/Sub must redeliver
    assert notification_record() is None
    assert send_step()["state"] == "failed"

    second = deliver(EMAIL, attempt=2)
    assert second.status_code == 200

    [email] = sandbox.state()["emails"]
    first_request, second_request = sandbox.recorded()
    assert (first_request["fault"], second_request["replayed"]) == ("lost_response", True)
    assert first_request["idempotency_key"] == second_request["idempotency_key"] == KEY
    assert notification_record()["resend_id"] == email["id"]


@pytest.mark.parametrize("status", [429, 500, 503])
def test_rate_limits_and_server_errors_answer_500_for_redelivery(sandbox: Sandbox,
                                                                 status: int) -> None:
    sandbox.fault(mode="status", status=status)

    response = deliver(EMAIL)

    assert response.status_code == 500
    assert response.get_json() == {"status": "retry", "error": "TransientError"}
    assert sandbox.state()["emails"] == [] and notification_record() is None
    assert db().collection("sync_failures").get() == []
    wait_passes()  # Resend's 429 carries retry-after
    # The redelivery (fault used up) sends it.
    assert deliver(EMAIL, attempt=2).status_code == 200
    assert len(sandbox.state()["emails"]) == 1


def step_ref() -> Any:
    return db().collection("events").document(EVENT_ID).collection("steps").document("resend_send")


def wait_passes() -> None:
    """What time does between Pub/Sub redeliveries: the step's not-before passes."""
    if step_ref().get().exists:
        step_ref().update({"not_before": datetime.now(UTC) - timedelta(seconds=1)})


def test_a_rate_limit_is_not_retried_before_resends_retry_after(sandbox: Sandbox) -> None:
    sandbox.fault(mode="status", status=429, code="rate_limit_exceeded")

    assert deliver(EMAIL).status_code == 500
    step = send_step()
    assert step is not None and (step["not_before"] - step["failed_at"]).total_seconds() >= 1.0
    assert deliver(EMAIL, attempt=2).status_code == 500
    assert len(sandbox.recorded()) == 1


@pytest.mark.parametrize("code", ["daily_quota_exceeded", "monthly_quota_exceeded"])
def test_an_exhausted_email_quota_alerts_ops_instead_of_burning_retries(
        sandbox: Sandbox, code: str, capsys: pytest.CaptureFixture) -> None:
    sandbox.fault(mode="status", status=429, code=code)

    response = deliver(EMAIL)

    assert response.status_code == 500  # kept for later: Pub/Sub dead-letters it, replayable after reset
    assert response.get_json() == {"status": "retry", "error": "quota_exhausted"}
    failure = db().collection("sync_failures").document(f"email_worker:{EVENT_ID}").get().to_dict()
    assert (failure["code"], failure["provider"], failure["status"]) == ("quota_exhausted", "resend", 429)
    assert code in failure["detail"]
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    alerts = [line for line in lines if line.get("alert") == "provider_quota_exhausted"]
    assert [alert["severity"] for alert in alerts] == ["ERROR"]
    for attempt in range(2, 6):
        deliver(EMAIL, attempt=attempt)
    assert len(sandbox.recorded()) == 1  # no further call while the quota is spent
    dead = db().collection("dead_letters").get()
    assert len(dead) == 1 and dead[0].to_dict()["attempts"] == 5  # the last attempt is recorded


def test_a_repeat_after_resends_window_sends_again_and_says_so(sandbox: Sandbox,
                                                              capsys: pytest.CaptureFixture) -> None:
    # Resend cannot be asked whether the lost attempt sent the email; past its 24-hour key the worker
    # errs on sending (a missing notice costs more than a duplicate) and logs the possible duplicate.
    sandbox.fault(mode="lost_response", seconds=3)
    assert deliver(EMAIL).status_code == 500
    sandbox.advance_clock(25 * 3600)

    assert deliver(EMAIL, attempt=1, message_id="9002").status_code == 200

    assert len(sandbox.state()["emails"]) == 2
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    assert any(line.get("possible_duplicate_email") for line in lines)


def test_a_validation_error_is_recorded_as_a_sync_failure_and_acked(sandbox: Sandbox) -> None:
    sandbox.fault(mode="status", status=422, message="Invalid `to` field.")

    response = deliver(EMAIL)

    assert response.status_code == 200
    assert response.get_json() == {"status": "failed_permanently", "error": "validation_error"}
    failure = db().collection("sync_failures").document(f"email_worker:{EVENT_ID}").get().to_dict()
    assert failure["provider"] == "resend" and failure["status"] == 422
    assert failure["detail"] == "Invalid `to` field."
    assert notification_record() is None


def test_a_message_outside_the_contract_is_recorded_without_calling_resend(sandbox: Sandbox) -> None:
    response = deliver({**EMAIL, "subject": ""})

    assert response.status_code == 200
    failure = db().collection("sync_failures").document(f"email_worker:{EVENT_ID}").get().to_dict()
    assert failure["code"] == "invalid_message"
    assert sandbox.recorded() == []


def test_a_step_held_by_a_concurrent_delivery_backs_off_with_500(sandbox: Sandbox) -> None:
    db().collection("events").document(EVENT_ID).collection("steps").document("resend_send").set(
        {"state": "running", "lease_until": datetime.now(UTC) + timedelta(minutes=2)})

    assert deliver(EMAIL, attempt=2).status_code == 500
    assert sandbox.recorded() == []


def test_text_only_messages_get_the_rendered_html(sandbox: Sandbox) -> None:
    assert deliver({**EMAIL, "html": None, "text": "a < b\n\nend"}).status_code == 200
    [email] = sandbox.state()["emails"]
    assert email["html"] == "<p>a &lt; b</p>\n<p>end</p>"


def test_the_last_failed_attempt_is_recorded_as_a_dead_letter(sandbox: Sandbox) -> None:
    sandbox.fault(mode="status", status=503)

    assert deliver(EMAIL, attempt=5, message_id="9005").status_code == 500

    dead = db().collection("dead_letters").document(f"email_worker:{EVENT_ID}:9005").get().to_dict()
    assert dead["attempts"] == 5 and dead["topic"] == "notifications"
    assert dead["data"] == EMAIL
    assert notification_record() is None
