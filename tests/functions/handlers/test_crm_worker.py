"""crm_worker against the Firestore emulator and the provider sandbox's HubSpot (the contact state it
sends is domain/crm.py's, tested in tests/functions/domain/test_crm.py)."""

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
import pytest
from launchready.domain import steps
from launchready.handlers import crm_worker as crm
from launchready.platform.clients import db

from tests.functions.helpers import Sandbox, deliver_push

pytestmark = pytest.mark.runs_as("crm_worker")

UID = "uid-ada"
STRIPE_EVENT = "evt_1QabcPaymentSucceeded"
CORRELATION_ID = "corr-crm-0001"


def sync_message(*, source_event_id: str | None = f"stripe:{STRIPE_EVENT}", event_created: int | None = None,
                 reason: str = "billing") -> dict[str, Any]:
    return {"uid": UID, "reason": reason, "source_event_id": source_event_id, "event_created": event_created}


def deliver(data: dict[str, Any], *, attempt: int = 1, message_id: str = "7001") -> flask.Response:
    """Deliver `data` as the crm-sync push subscription would."""
    event_id = f"crm:{data.get('uid')}:{data.get('source_event_id')}"
    attributes = {"event_id": event_id, "correlation_id": CORRELATION_ID, "source_topic": "crm-sync"}
    return deliver_push(crm.crm_worker, data, attributes, message_id=message_id, attempt=attempt)


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox], clean_firestore: str) -> Sandbox:
    return provider_sandbox("hubspot", HUBSPOT_TOKEN="pat-na1-test")


def write_user(billing: dict[str, Any] | None = None, **fields: Any) -> None:
    user = {"email": "Ada@Example.com", "display_name": "Ada King Lovelace", "marketing_opt_in": False,
            "created_at": datetime.now(UTC), **fields}
    if billing is not None:
        user["billing"] = billing
    db().collection("users").document(UID).set(user)


PAID = {"status": "active", "plan": "pro", "ever_paid": True, "payment_failed": False, "refunded": False,
        "disputed": False}


# --- worker ---------------------------------------------------------------------------------------

def test_one_upsert_with_the_full_tag_set_and_lifecycle(sandbox: Sandbox) -> None:
    write_user({**PAID, "payment_failed": True})

    response = deliver(sync_message())

    assert response.status_code == 200
    [request] = sandbox.recorded()
    assert request["path"] == "/crm/objects/2026-09/contacts/batch/upsert"
    assert request["correlation_id"] == CORRELATION_ID
    [contact_input] = request["body"]["inputs"]
    assert contact_input["idProperty"] == "email" and contact_input["id"] == "ada@example.com"
    assert contact_input["properties"] == {"firstname": "Ada", "lastname": "King Lovelace",
                                           "launchready_tags": "customer;payment_failed;signed_up",
                                           "lifecyclestage": "customer"}
    [contact] = sandbox.state()["contacts"]
    assert contact["properties"]["launchready_tags"] == "customer;payment_failed;signed_up"


def test_a_redelivered_message_does_not_call_hubspot_again(sandbox: Sandbox) -> None:
    write_user(PAID)
    assert deliver(sync_message()).status_code == 200
    assert deliver(sync_message(), attempt=2).status_code == 200

    assert len(sandbox.recorded()) == 1


def test_out_of_order_messages_converge_on_the_current_user_state(sandbox: Sandbox) -> None:
    # The newer event's message arrives first; the older one arrives late. Both send the current state.
    write_user({**PAID, "status": "canceled"})
    assert deliver(sync_message(source_event_id="stripe:evt_new")).status_code == 200
    assert deliver(sync_message(source_event_id="stripe:evt_old")).status_code == 200

    tag_sets = [r["body"]["inputs"][0]["properties"]["launchready_tags"] for r in sandbox.recorded()]
    assert tag_sets == ["canceled;signed_up", "canceled;signed_up"]
    [contact] = sandbox.state()["contacts"]
    assert contact["properties"]["launchready_tags"] == "canceled;signed_up"
    assert contact["properties"]["lifecyclestage"] == "customer"


def test_a_payment_event_records_its_sync_lag_once(sandbox: Sandbox,
                                                   capsys: pytest.CaptureFixture) -> None:
    write_user(PAID)
    event_created = int(time.time()) - 42

    assert deliver(sync_message(event_created=event_created)).status_code == 200
    assert deliver(sync_message(event_created=event_created), attempt=2).status_code == 200

    record = db().collection("payment_sync").document(STRIPE_EVENT).get().to_dict()
    assert record["event_created"] == event_created
    assert 42 <= record["lag_seconds"] < 60
    assert abs(record["synced_at"] - datetime.now(UTC)) < timedelta(minutes=1)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    synced = [line for line in lines if line["message"] == "payment synced"]
    assert len(synced) == 1  # the redelivery does not count the same payment twice in the lag metric
    assert synced[0]["sync_lag_seconds"] == record["lag_seconds"]
    assert synced[0]["function"] == "crm_worker" and synced[0]["correlation_id"] == CORRELATION_ID


def test_a_signup_sync_records_no_payment_lag(sandbox: Sandbox) -> None:
    write_user()
    assert deliver(sync_message(source_event_id="signup:uid-ada", reason="signed_up")).status_code == 200

    assert db().collection("payment_sync").get() == []
    [request] = sandbox.recorded()
    assert request["body"]["inputs"][0]["properties"]["launchready_tags"] == "signed_up"
    assert request["body"]["inputs"][0]["properties"]["lifecyclestage"] == "lead"


def test_a_missing_user_is_recorded_and_acked_without_calling_hubspot(sandbox: Sandbox) -> None:
    response = deliver(sync_message())

    assert response.status_code == 200
    assert response.get_json()["error"] == "user_not_found"
    failure = db().collection("sync_failures").document(f"crm_worker:crm:{UID}:stripe:{STRIPE_EVENT}").get()
    assert failure.to_dict()["code"] == "user_not_found"
    assert sandbox.recorded() == []


@pytest.mark.parametrize("status", [429, 502])
def test_rate_limits_and_server_errors_answer_500_then_the_redelivery_syncs(sandbox: Sandbox,
                                                                             status: int) -> None:
    write_user(PAID)
    sandbox.fault(mode="status", status=status)
    message = sync_message(event_created=int(time.time()))

    assert deliver(message).status_code == 500
    assert sandbox.state()["contacts"] == []
    assert db().collection("payment_sync").get() == []

    assert deliver(message, attempt=2).status_code == 200
    assert len(sandbox.state()["contacts"]) == 1
    assert len(db().collection("payment_sync").get()) == 1


def test_a_lost_response_is_retried_and_converges_on_one_contact(sandbox: Sandbox) -> None:
    write_user(PAID)
    sandbox.fault(mode="lost_response", seconds=3)

    assert deliver(sync_message()).status_code == 500
    assert deliver(sync_message(), attempt=2).status_code == 200

    assert len(sandbox.recorded()) == 2  # an upsert is naturally idempotent: the repeat is harmless
    [contact] = sandbox.state()["contacts"]
    assert contact["properties"]["launchready_tags"] == "customer;signed_up"


def test_a_validation_error_is_recorded_as_a_sync_failure_and_acked(sandbox: Sandbox) -> None:
    write_user(PAID)
    sandbox.fault(mode="status", status=400, message="Property values were not valid")

    response = deliver(sync_message())

    assert response.status_code == 200
    failure = db().collection("sync_failures").document(f"crm_worker:crm:{UID}:stripe:{STRIPE_EVENT}").get()
    assert failure.to_dict()["provider"] == "hubspot" and failure.to_dict()["status"] == 400
    assert failure.to_dict()["code"] == "VALIDATION_ERROR"


def test_a_user_without_email_is_a_permanent_failure(sandbox: Sandbox) -> None:
    write_user(PAID, email="")

    assert deliver(sync_message()).status_code == 200
    assert sandbox.recorded() == []
    failure = db().collection("sync_failures").document(f"crm_worker:crm:{UID}:stripe:{STRIPE_EVENT}").get()
    assert failure.to_dict()["code"] == "missing_email"


# --- HubSpot's own failure classes: locks, migrations, the daily limit --------------------------------

def upsert_step() -> Any:
    """The ledger step of the message `sync_message()` delivers."""
    event_id = f"crm:{UID}:stripe:{STRIPE_EVENT}"
    return db().collection("events").document(event_id).collection("steps").document(steps.HUBSPOT_UPSERT)


def wait_passes() -> None:
    """What time does between Pub/Sub redeliveries (at least 10 s): the step's not-before passes."""
    upsert_step().update({"not_before": datetime.now(UTC) - timedelta(seconds=1)})


def sync_failure() -> dict[str, Any] | None:
    snapshot = db().collection("sync_failures").document(f"crm_worker:crm:{UID}:stripe:{STRIPE_EVENT}").get()
    return snapshot.to_dict() if snapshot.exists else None


def test_a_hubspot_423_lock_is_redelivered_after_2_seconds_not_acked_and_lost(sandbox: Sandbox) -> None:
    write_user(PAID)
    sandbox.fault(mode="status", status=423, code="LOCKED", message="too many updates, locked")

    first = deliver(sync_message())

    assert first.status_code == 500  # redelivered: the update is not acknowledged and lost
    assert sync_failure() is None
    step = upsert_step().get().to_dict()
    assert (step["not_before"] - step["failed_at"]).total_seconds() >= 2.0  # "locks last for 2 seconds"
    # A redelivery before the lock has passed does not call HubSpot.
    assert deliver(sync_message(), attempt=2).status_code == 500
    assert len(sandbox.recorded()) == 1
    wait_passes()
    assert deliver(sync_message(), attempt=3).status_code == 200
    [contact] = sandbox.state()["contacts"]
    assert contact["properties"]["lifecyclestage"] == "customer"


def test_a_hubspot_477_migration_honours_retry_after(sandbox: Sandbox) -> None:
    write_user(PAID)
    sandbox.fault(mode="status", status=477, retry_after=120, message="Migration in progress")

    assert deliver(sync_message()).status_code == 500
    step = upsert_step().get().to_dict()
    assert 119 <= (step["not_before"] - step["failed_at"]).total_seconds() <= 121
    assert sync_failure() is None
    assert deliver(sync_message(), attempt=2).status_code == 500
    assert len(sandbox.recorded()) == 1  # not called before Retry-After
    wait_passes()
    assert deliver(sync_message(), attempt=3).status_code == 200


@pytest.mark.parametrize("fault", [
    pytest.param({"status": 429, "code": "DAILY"}, id="daily limit"),
    pytest.param({"status": 477}, id="migration for hours (Retry-After 3600 s)"),
])
def test_a_wait_of_hours_alerts_ops_and_calls_hubspot_no_more(sandbox: Sandbox, fault: dict[str, Any],
                                                             capsys: pytest.CaptureFixture) -> None:
    write_user(PAID)
    sandbox.fault(mode="status", **fault)

    assert deliver(sync_message()).status_code == 500
    failure = sync_failure()
    assert failure is not None and failure["code"] == "quota_exhausted" and failure["provider"] == "hubspot"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    [alert] = [line for line in lines if line.get("alert") == "provider_quota_exhausted"]
    assert alert["severity"] == "ERROR" and alert["retry_after_seconds"] >= 3600
    for attempt in (2, 3, 4):  # the redeliveries Pub/Sub still makes spend no HubSpot calls
        assert deliver(sync_message(), attempt=attempt).status_code == 500
    assert len(sandbox.recorded()) == 1


def test_a_ten_secondly_rate_limit_is_transient_without_an_alert(sandbox: Sandbox) -> None:
    write_user(PAID)
    sandbox.fault(mode="status", status=429, code="TEN_SECONDLY_ROLLING")

    assert deliver(sync_message()).status_code == 500
    assert sync_failure() is None
    assert deliver(sync_message(), attempt=2).status_code == 200
