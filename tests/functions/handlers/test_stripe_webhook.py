"""stripe_webhook on the Firestore and Pub/Sub emulators, with deliveries signed the way Stripe signs them."""

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask.testing
import pytest
from google.cloud import firestore
from launchready.domain.billing_state import HANDLED_EVENT_TYPES
from launchready.handlers import billing_worker as billing
from launchready.platform import after_answer
from launchready.platform.ledger import Ledger

from tests.functions.helpers import (
    Subscription,
    deliver_push,
    firestore_documents,
    function_app,
    held_writers,
    stripe_signature,
)

pytestmark = pytest.mark.runs_as("stripe_webhook", "billing_worker")

TOPIC = "billing-events"
OLD_SECRET = "whsec_" + "o" * 32
NEW_SECRET = "whsec_" + "n" * 32


# --- helpers -------------------------------------------------------------------------------------

def stripe_event(event_type: str = "checkout.session.completed", **overrides: Any) -> dict[str, Any]:
    event_id = "evt_" + uuid.uuid4().hex[:24]
    session = {
        "id": "cs_test_" + uuid.uuid4().hex, "object": "checkout.session", "mode": "subscription",
        "client_reference_id": "uid-123", "customer": "cus_" + uuid.uuid4().hex[:14],
        "customer_email": "ada@example.com", "subscription": "sub_" + uuid.uuid4().hex[:14],
        "payment_status": "paid", "status": "complete", "metadata": {"uid": "uid-123"},
        "amount_total": 1900, "currency": "usd", "livemode": False,
    }
    event = {
        "id": event_id, "object": "event", "api_version": "2025-03-31.basil", "created": int(time.time()) - 2,
        "data": {"object": session}, "livemode": False, "pending_webhooks": 1,
        "request": {"id": "req_" + uuid.uuid4().hex[:14], "idempotency_key": str(uuid.uuid4())},
        "type": event_type,
    }
    return {**event, **overrides}


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def webhook_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", f"{OLD_SECRET}, {NEW_SECRET}")


@pytest.fixture
def client(tmp_path: Path, clean_firestore: str, pubsub_emulator: str,
           webhook_secrets: None) -> flask.testing.FlaskClient:
    return function_app(tmp_path, "stripe_webhook").test_client()


def deliver(client: flask.testing.FlaskClient, payload: str, secret: str = NEW_SECRET, **headers: str) -> Any:
    """One signed delivery; returns once the answer's deferred writes have landed too."""
    response = client.post("/", data=payload, content_type="application/json; charset=utf-8",
                           headers={"Stripe-Signature": stripe_signature(payload, secret), **headers})
    assert after_answer.drain()
    return response


# --- accepted deliveries -------------------------------------------------------------------------

def test_verified_event_is_claimed_and_published_with_its_correlation_id(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client) -> None:
    event = stripe_event("invoice.paid")
    payload = json.dumps(event)

    response = deliver(client, payload, **{"X-Correlation-Id": "corr-invoice-0001"})

    assert response.status_code == 200
    assert response.get_json() == {"received": True, "event_id": event["id"], "status": "published"}
    assert response.headers["X-Correlation-Id"] == "corr-invoice-0001"
    [message] = billing_events.drain()
    assert json.loads(message.data) == event
    assert dict(message.attributes) == {"event_id": f"stripe:{event['id']}", "event_type": "invoice.paid",
                                        "correlation_id": "corr-invoice-0001", "source_topic": TOPIC}
    claim = Ledger(db).get(f"stripe:{event['id']}")
    assert claim is not None
    assert claim["status"] == "published" and claim["published"] is True
    assert claim["message_id"] == message.message_id
    assert claim["event_type"] == "invoice.paid" and claim["event_created"] == event["created"]
    assert claim["correlation_id"] == "corr-invoice-0001"
    # The claim was the publish step's lease; the outcome lives on the event, and the lease has ended.
    assert claim["lease_until"] is None


def test_correlation_id_is_born_at_the_webhook_when_the_request_has_none(
        client: flask.testing.FlaskClient, billing_events: Subscription) -> None:
    response = deliver(client, json.dumps(stripe_event("charge.refunded")))

    assert response.status_code == 200
    born = response.headers["X-Correlation-Id"]
    assert len(born) >= 16
    [message] = billing_events.drain()
    assert message.attributes["correlation_id"] == born


def test_an_event_signed_with_the_previous_secret_is_accepted_during_rotation(
        client: flask.testing.FlaskClient, billing_events: Subscription) -> None:
    response = deliver(client, json.dumps(stripe_event("customer.subscription.updated")), secret=OLD_SECRET)

    assert response.status_code == 200
    assert len(billing_events.drain()) == 1


def test_a_duplicate_delivery_is_a_no_op(client: flask.testing.FlaskClient, billing_events: Subscription,
                                         db: firestore.Client) -> None:
    payload = json.dumps(stripe_event("invoice.payment_failed"))

    first, second = deliver(client, payload), deliver(client, payload)

    assert (first.status_code, first.get_json()["status"]) == (200, "published")
    assert (second.status_code, second.get_json()["status"]) == (200, "duplicate")
    assert len(billing_events.drain()) == 1
    assert len([path for path in firestore_documents(db) if path.count("/") == 1]) == 1


def test_twenty_concurrent_deliveries_claim_and_publish_once(
        client: flask.testing.FlaskClient, tmp_path: Path, billing_events: Subscription,
        db: firestore.Client) -> None:
    event = stripe_event("customer.subscription.created")
    payload = json.dumps(event)
    app = function_app(tmp_path, "stripe_webhook")

    def one_delivery(_: int) -> tuple[int, str]:
        response = deliver(app.test_client(), payload)
        body = response.get_json()
        return response.status_code, body.get("status") or body["error"]["code"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(one_delivery, range(20)))

    # One delivery publishes; the others find it published (200) or still publishing (409, Stripe retries).
    assert outcomes.count((200, "published")) == 1, outcomes
    assert set(outcomes) <= {(200, "published"), (200, "duplicate"), (409, "event_in_progress")}, outcomes
    assert len(billing_events.drain()) == 1
    events = [path for path in firestore_documents(db) if path.startswith("events/") and path.count("/") == 1]
    assert events == [f"events/stripe:{event['id']}"]
    # Stripe's retry of a delivery that got 409 is then a plain duplicate.
    assert deliver(client, payload).get_json()["status"] == "duplicate"
    assert billing_events.drain() == []


def test_a_claim_that_never_reached_published_is_published_by_the_retry(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client) -> None:
    event = stripe_event("payment_intent.succeeded")
    # The first delivery claimed the event two minutes ago, then its instance died before publishing.
    Ledger(db).claim(f"stripe:{event['id']}", status="received", published=False,
                     claimed_at=datetime.now(UTC) - timedelta(minutes=2))

    retry = deliver(client, json.dumps(event))

    assert (retry.status_code, retry.get_json()["status"]) == (200, "published")
    [message] = billing_events.drain()
    assert message.attributes["event_id"] == f"stripe:{event['id']}"
    assert (Ledger(db).get(f"stripe:{event['id']}") or {})["published"] is True
    assert deliver(client, json.dumps(event)).get_json()["status"] == "duplicate"
    assert billing_events.drain() == []


def test_a_duplicate_while_the_claimant_may_still_be_publishing_is_told_to_retry(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client) -> None:
    event = stripe_event("invoice.paid")
    Ledger(db).claim(f"stripe:{event['id']}", status="received", published=False)

    response = deliver(client, json.dumps(event))

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "event_in_progress"
    assert billing_events.drain() == []
    assert (Ledger(db).get(f"stripe:{event['id']}") or {})["published"] is False


def test_the_answer_does_not_wait_for_the_publish_record(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client) -> None:
    event = stripe_event("invoice.paid")
    key = f"stripe:{event['id']}"
    with held_writers():
        response = client.post("/", data=json.dumps(event), content_type="application/json",
                               headers={"Stripe-Signature": stripe_signature(json.dumps(event), NEW_SECRET)})

        assert (response.status_code, response.get_json()["status"]) == (200, "published")
        [message] = billing_events.drain()  # the 200 means the message is stored
        before = Ledger(db).get(key) or {}
        assert before["published"] is False and before["lease_until"] is not None
    assert after_answer.drain()
    after = Ledger(db).get(key) or {}
    assert (after["published"], after["message_id"], after["lease_until"]) == (True, message.message_id, None)


def test_a_lost_publish_record_is_written_by_the_billing_worker_on_delivery(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The instance that answered is removed before its write after the answer runs.
    monkeypatch.setattr(after_answer, "defer", lambda action: None)
    event = stripe_event("invoice.paid")
    key = f"stripe:{event['id']}"
    assert deliver(client, json.dumps(event)).get_json()["status"] == "published"
    [message] = billing_events.drain()
    assert (Ledger(db).get(key) or {})["published"] is False

    attributes = dict(message.attributes)
    deliver_push(billing.billing_worker, json.loads(message.data), attributes, message_id=message.message_id)

    record = Ledger(db).get(key) or {}
    assert (record["published"], record["message_id"]) == (True, message.message_id)
    assert record["lease_until"] is None
    # Stripe's next delivery of the event is a plain duplicate: nothing is published again.
    assert deliver(client, json.dumps(event)).get_json()["status"] == "duplicate"
    assert billing_events.drain() == []


def test_a_publish_done_but_not_marked_is_not_repeated(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client) -> None:
    event = stripe_event("charge.dispute.created")
    key = f"stripe:{event['id']}"
    ledger = Ledger(db)
    ledger.claim(key, status="received", published=False)
    # The step was recorded done, then the instance died before marking the claim.
    ledger.run_step(key, "publish", lambda: "message-0")

    retry = deliver(client, json.dumps(event))

    assert retry.get_json()["status"] == "duplicate"
    assert billing_events.drain() == []
    assert (ledger.get(key) or {})["published"] is True


# Stripe sends invoice.payment_succeeded beside invoice.paid for the same invoice; only the latter is
# handled, so a payment counts once.
@pytest.mark.parametrize("event_type", ["customer.created", "invoice.payment_succeeded"])
def test_an_unhandled_event_type_is_recorded_as_ignored_and_not_published(
        event_type: str, client: flask.testing.FlaskClient, billing_events: Subscription,
        db: firestore.Client) -> None:
    event = stripe_event(event_type)

    first = deliver(client, json.dumps(event))
    again = deliver(client, json.dumps(event))

    assert (first.status_code, first.get_json()["status"]) == (200, "ignored")
    assert (again.status_code, again.get_json()["status"]) == (200, "ignored")
    claim = Ledger(db).get(f"stripe:{event['id']}")
    assert claim is not None and claim["status"] == "ignored" and claim["event_type"] == event_type
    assert billing_events.drain() == []


def test_the_handled_types_are_the_billing_workers_handlers_as_documented() -> None:
    api = (Path(__file__).resolve().parents[3] / "docs" / "api.md").read_text(encoding="utf-8")
    listed = api.split("Handled event types:", 1)[1].split("Any other type", 1)[0]
    documented = set(re.findall(r"`([a-z_.]+)`", listed))
    assert documented == HANDLED_EVENT_TYPES and len(HANDLED_EVENT_TYPES) == 12


def test_get_answers_health_without_touching_anything(client: flask.testing.FlaskClient,
                                                      db: firestore.Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "function": "stripe_webhook"}
    assert firestore_documents(db) == {}


# --- rejections: a clear 4xx, nothing written, nothing published ---------------------------------

def _signed(payload: str, **kwargs: Any) -> dict[str, str]:
    return {"Stripe-Signature": stripe_signature(payload, **kwargs)}


VALID = json.dumps(stripe_event("invoice.paid"))
REJECTIONS = {
    "missing signature": (VALID, "application/json", {}, 400, "missing_signature"),
    "signed with an unknown secret": (VALID, "application/json", _signed(VALID, secret="whsec_" + "x" * 32),
                                      400, "invalid_signature"),
    "body changed after signing": (VALID.replace("invoice.paid", "invoice.payment_failed"),
                                   "application/json", _signed(VALID, secret=NEW_SECRET), 400,
                                   "invalid_signature"),
    "garbage signature header": (VALID, "application/json", {"Stripe-Signature": "v1=abc,t=notanumber"},
                                 400, "invalid_signature"),
    "timestamp older than 300 s": (VALID, "application/json", None, 400, "stale_timestamp"),
    "timestamp far in the future": (VALID, "application/json", None, 400, "stale_timestamp"),
    "signed malformed JSON": ('{"id": "evt_1", ', "application/json", None, 400, "malformed_json"),
    "signed JSON that is not an event": ('{"object": "customer", "id": "cus_1"}', "application/json", None,
                                         400, "invalid_event"),
    "wrong content type": (VALID, "text/plain", None, 415, "unsupported_media_type"),
    "oversized body": (json.dumps({**stripe_event(), "padding": "x" * 300_000}), "application/json", None,
                       413, "body_too_large"),
}
_SKEW = {"timestamp older than 300 s": -301, "timestamp far in the future": 600}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_rejected_deliveries_write_and_publish_nothing(
        case: str, client: flask.testing.FlaskClient, billing_events: Subscription,
        db: firestore.Client) -> None:
    payload, content_type, headers, status, code = REJECTIONS[case]
    if headers is None:  # correctly signed, so only the case's own defect is at fault
        headers = _signed(payload, secret=NEW_SECRET, timestamp=int(time.time()) + _SKEW.get(case, 0))

    response = client.post("/", data=payload, content_type=content_type, headers=headers)

    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert firestore_documents(db) == {}
    assert billing_events.drain() == []


def test_other_methods_are_refused(client: flask.testing.FlaskClient, db: firestore.Client) -> None:
    response = client.put("/", data=VALID, content_type="application/json",
                          headers=_signed(VALID, secret=NEW_SECRET))

    assert response.status_code == 405
    assert response.get_json()["error"]["code"] == "method_not_allowed"
    assert firestore_documents(db) == {}


def test_without_a_configured_secret_deliveries_fail_so_stripe_retries(
        client: flask.testing.FlaskClient, monkeypatch: pytest.MonkeyPatch, billing_events: Subscription,
        db: firestore.Client) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET")

    response = deliver(client, VALID)

    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal"
    assert firestore_documents(db) == {}
    assert billing_events.drain() == []


def test_a_duplicate_within_the_claimants_lease_is_told_to_retry_even_after_in_flight(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client) -> None:
    event = stripe_event("invoice.paid")
    # Claimed long ago by a delivery that is still publishing: its lease, not its age, decides.
    Ledger(db).claim(f"stripe:{event['id']}", lease_seconds=600, status="received", published=False,
                     claimed_at=datetime.now(UTC) - timedelta(minutes=5))

    response = deliver(client, json.dumps(event))

    assert response.status_code == 409
    assert billing_events.drain() == []


def test_a_publish_that_failed_under_the_claim_is_completed_by_a_later_retry(
        client: flask.testing.FlaskClient, billing_events: Subscription, db: firestore.Client,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from launchready.handlers import stripe_webhook as webhook
    from launchready.platform.errors import TransientError

    event = stripe_event("invoice.paid")
    key = f"stripe:{event['id']}"

    def unavailable(*args: Any, **kwargs: Any) -> str:
        raise TransientError("publish to billing-events failed: unavailable")

    with monkeypatch.context() as patch:
        patch.setattr(webhook, "publish", unavailable)
        failed = deliver(client, json.dumps(event))
    assert failed.status_code >= 500
    claim = Ledger(db).get(key) or {}
    assert claim["published"] is False and claim["lease_until"] is None
    # Stripe retries later; by then the failed attempt is past its in-flight window.
    db.collection("events").document(key).update({"claimed_at": datetime.now(UTC) - timedelta(minutes=5)})

    retry = deliver(client, json.dumps(event))

    assert (retry.status_code, retry.get_json()["status"]) == (200, "published")
    [message] = billing_events.drain()
    assert message.attributes["event_id"] == key
    assert (Ledger(db).get(key) or {})["published"] is True
