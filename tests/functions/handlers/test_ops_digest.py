"""ops_digest against the Firestore and Pub/Sub emulators: what it counts, what it stores, and that a
second run on the same day queues no second email."""

from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from launchready.handlers import ops_digest as digest
from launchready.platform.clients import db
from launchready.records import ops as records

from tests.functions.helpers import Subscription, decoded

pytestmark = pytest.mark.runs_as("ops_digest")


def call(method: str = "POST") -> flask.Response:
    headers = {"X-Correlation-Id": "digest-0001"}
    with flask.Flask(__name__).test_request_context("/", method=method, headers=headers):
        return digest.ops_digest(flask.request)


def seed(collection: str, doc_id: str, fields: dict[str, Any]) -> None:
    db().collection(collection).document(doc_id).set(fields)


@pytest.fixture
def last_day(clean_firestore: str) -> None:
    """A day of operations, plus records from before the window that must not be counted."""
    recent = datetime.now(UTC) - timedelta(hours=2)
    old = datetime.now(UTC) - timedelta(hours=30)
    for index, code in enumerate(["hubspot_validation"] * 3 + ["zendesk_invalid"] * 2 + ["invalid_event"]):
        records.record_sync_failure(function="crm_worker" if code.startswith("hubspot") else "support_worker",
                                    event_id=f"evt-{index}", code=code, detail="422 from the provider")
    seed("sync_failures", "old-failure", {"function": "crm_worker", "code": "old_code", "recorded_at": old})
    for index, function in enumerate(["crm_worker", "crm_worker", "email_worker"]):
        seed("dead_letters", f"dl-{index}", {"function": function, "recorded_at": recent,
                                             "event_id": f"e{index}"})
    seed("dead_letters", "dl-old", {"function": "billing_worker", "recorded_at": old})
    records.record_unmatched(event_id="stripe:evt_unknown", event_type="invoice.paid",
                             reason="unknown_customer", customer="cus_Nobody")
    for lag in range(1, 21):  # 1 s ... 20 s
        seed("payment_sync", f"evt_{lag}",
             {"event_created": 1, "synced_at": recent, "lag_seconds": float(lag)})
    seed("payment_sync", "evt_old", {"event_created": 1, "synced_at": old, "lag_seconds": 9999.0})


def test_digest_summarises_the_last_24_hours_and_emails_ops_once(outbox: Subscription,
                                                                 last_day: None) -> None:
    response = call()
    assert response.status_code == 200
    body = response.get_json()
    date = body["date"]
    today = datetime.now(UTC)
    assert date in {today.date().isoformat(), (today - timedelta(minutes=5)).date().isoformat()}
    assert body["email_key"] == f"ops-digest:{date}"
    assert body["sync_failures"]["count"] == 6
    assert body["sync_failures"]["top_codes"][:2] == [{"name": "hubspot_validation", "count": 3},
                                                      {"name": "zendesk_invalid", "count": 2}]
    assert body["dead_letters"]["count"] == 3
    assert body["dead_letters"]["by_function"] == [{"name": "crm_worker", "count": 2},
                                                   {"name": "email_worker", "count": 1}]
    assert body["unmatched_events"] == {"count": 1, "by_type": [{"name": "invoice.paid", "count": 1}],
                                        "capped": False}
    lag = body["payment_sync"]
    assert (lag["count"], lag["p50_seconds"], lag["p95_seconds"], lag["max_seconds"]) == (
        20, 10.0, 19.0, 20.0)

    stored = db().collection("ops_digests").document(date).get().to_dict()
    assert stored["sync_failures"]["count"] == 6 and stored["runs"] == 1

    [message] = outbox.drain()
    email = decoded(message)
    assert email["key"] == f"ops-digest:{date}" and email["to"] == ["ops@example.com"]
    assert "needs attention" in email["subject"]
    assert "Sync failures: 6 (top codes: hubspot_validation (3), zendesk_invalid (2)" in email["text"]
    assert "p50 10.0 s, p95 19.0 s, max 20.0 s" in email["text"]
    assert "<table" in email["html"] and "hubspot_validation (3)" in email["html"]
    assert message.attributes["event_id"] == f"email:ops-digest:{date}"

    # Scheduler retries or a manual run the same day: the stored digest refreshes, no second email.
    assert call().status_code == 200
    assert outbox.drain() == []
    assert db().collection("ops_digests").document(date).get().to_dict()["runs"] == 2


def test_a_quiet_day_is_all_clear(clean_firestore: str, outbox: Subscription) -> None:
    body = call().get_json()
    assert body["sync_failures"]["count"] == 0 and body["payment_sync"]["p95_seconds"] is None
    [message] = outbox.drain()
    email = decoded(message)
    assert "all clear" in email["subject"] and "p50 n/a" in email["text"]


def test_get_is_a_health_check_that_sends_nothing(clean_firestore: str, outbox: Subscription) -> None:
    response = call("GET")
    assert response.status_code == 200 and response.get_json()["function"] == "ops_digest"
    assert outbox.drain() == []
    assert list(db().collection("ops_digests").stream()) == []


def test_percentile_is_nearest_rank() -> None:
    assert digest.percentile([], 0.5) is None
    assert digest.percentile([7.0], 0.95) == 7.0
    assert digest.percentile([4.0, 1.0, 3.0, 2.0], 0.5) == 2.0
    assert digest.percentile([float(v) for v in range(1, 101)], 0.95) == 95.0
