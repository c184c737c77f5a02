"""user_created on the Firestore and Pub/Sub emulators, with the Firestore create event as Eventarc
delivers it (protobuf data, which the function must not need) and as the local runner relays it."""

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from google.cloud import firestore
from launchready.handlers.user_created import handle_created
from launchready.platform.errors import TransientError
from launchready.platform.ledger import Ledger, StepInProgress

from tests.conftest import PROJECT
from tests.functions.helpers import Subscription, function_app

pytestmark = pytest.mark.runs_as("user_created")

TOPIC = "crm-sync"
CREATED = "google.cloud.firestore.document.v1.created"
# The start of a DocumentEventData protobuf: what Eventarc sends and the function ignores.
PROTOBUF_DATA = b"\n\x8a\x01\n<projects/demo-launchready/databases/(default)/documents/users/"


def attributes(uid: str, *, event_type: str = CREATED, collection: str = "users") -> dict[str, str]:
    return {
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": event_type,
        "source": f"//firestore.googleapis.com/projects/{PROJECT}/databases/(default)",
        "subject": f"documents/{collection}/{uid}", "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/protobuf", "dataschema": (
            "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/"
            "data.proto"),
        "database": "(default)", "namespace": "(default)", "document": f"{collection}/{uid}",
    }


def created_event(uid: str, **kwargs: Any) -> CloudEvent:
    return CloudEvent(attributes(uid, **kwargs), data=PROTOBUF_DATA + uid.encode())


@pytest.fixture
def uid(db: firestore.Client) -> str:
    uid = "uid-" + uuid.uuid4().hex[:12]
    db.collection("users").document(uid).set({
        "email": "ada@example.com", "display_name": "Ada Lovelace", "locale": "en", "marketing_opt_in": False,
        "created_at": firestore.SERVER_TIMESTAMP})
    return uid


def test_a_new_profile_queues_one_crm_upsert(uid: str, crm_sync: Subscription,
                                             db: firestore.Client) -> None:
    handle_created(created_event(uid))

    [message] = crm_sync.drain()
    assert json.loads(message.data) == {"uid": uid, "reason": "signed_up", "source_event_id": f"signup:{uid}",
                                        "event_created": None}
    assert message.attributes["event_id"] == f"crm:{uid}:signup:{uid}"
    assert message.attributes["source_topic"] == TOPIC
    claim = Ledger(db).get(f"signup:{uid}")
    assert claim is not None and claim["published"] is True and claim["message_id"] == message.message_id
    assert message.attributes["correlation_id"] == claim["correlation_id"]


def test_redelivered_events_queue_nothing_more(uid: str, crm_sync: Subscription) -> None:
    event = created_event(uid)

    handle_created(event)
    handle_created(event)  # the same delivery again
    handle_created(created_event(uid))  # another event for the same create

    assert len(crm_sync.drain()) == 1


def test_concurrent_deliveries_queue_one_upsert(uid: str, crm_sync: Subscription) -> None:
    event = created_event(uid)

    def deliver(_: int) -> str:
        try:
            handle_created(event)
        except TransientError as exc:  # raised to the trigger, which retries the event
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(deliver, range(10)))

    assert set(outcomes) <= {"ok", "StepInProgress"}, outcomes
    assert "ok" in outcomes
    assert len(crm_sync.drain()) == 1


def test_a_claim_whose_publish_never_completed_is_published_by_the_redelivery(
        uid: str, crm_sync: Subscription, db: firestore.Client) -> None:
    # The first delivery claimed the sign-up three minutes ago, then its instance died before publishing.
    Ledger(db).claim(f"signup:{uid}", source="user_created", correlation_id="corr-signup-first",
                     claimed_at=datetime.now(UTC) - timedelta(minutes=3))

    handle_created(created_event(uid))

    [message] = crm_sync.drain()
    # The chain keeps the correlation id the first delivery started.
    assert message.attributes["correlation_id"] == "corr-signup-first"
    assert (Ledger(db).get(f"signup:{uid}") or {})["published"] is True


def test_a_delivery_while_another_may_still_be_publishing_fails_to_be_retried(
        uid: str, crm_sync: Subscription, db: firestore.Client) -> None:
    Ledger(db).claim(f"signup:{uid}", source="user_created", correlation_id="corr-signup-first")

    with pytest.raises(StepInProgress):
        handle_created(created_event(uid))

    assert crm_sync.drain() == []


@pytest.mark.parametrize("event", [
    pytest.param(lambda uid: created_event(uid, collection="orders"), id="another collection"),
    pytest.param(lambda uid: created_event(uid, event_type="google.cloud.firestore.document.v1.updated"),
                 id="an update, not a create"),
    pytest.param(lambda uid: CloudEvent({**attributes(uid), "subject": f"documents/users/{uid}/devices/d1"},
                                        data=PROTOBUF_DATA), id="a subcollection document"),
])
def test_events_that_are_not_a_profile_create_are_acknowledged_and_ignored(
        event: Any, uid: str, crm_sync: Subscription, db: firestore.Client) -> None:
    handle_created(event(uid))

    assert crm_sync.drain() == []
    assert Ledger(db).get(f"signup:{uid}") is None


def test_a_profile_deleted_before_its_event_is_handled_is_not_synced(
        uid: str, crm_sync: Subscription, db: firestore.Client) -> None:
    db.collection("users").document(uid).delete()

    handle_created(created_event(uid))

    assert crm_sync.drain() == []
    assert Ledger(db).get(f"signup:{uid}") is None


def test_a_binary_mode_http_delivery_is_handled_like_eventarcs(
        tmp_path: Path, uid: str, crm_sync: Subscription) -> None:
    app = function_app(tmp_path, "user_created")
    headers = {f"ce-{name}": value for name, value in attributes(uid).items() if name != "datacontenttype"}

    response = app.test_client().post("/", data=PROTOBUF_DATA + uid.encode(), headers=headers,
                                      content_type="application/protobuf")

    assert response.status_code == 200
    [message] = crm_sync.drain()
    assert json.loads(message.data)["uid"] == uid


def test_a_get_answers_health_like_every_entry_point(tmp_path: Path) -> None:
    response = function_app(tmp_path, "user_created").test_client().get("/")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "function": "user_created"}


def test_a_post_that_is_not_a_cloud_event_is_rejected_and_nothing_is_written(
        tmp_path: Path, db: firestore.Client, crm_sync: Subscription) -> None:
    response = function_app(tmp_path, "user_created").test_client().post(
        "/", data=b"{}", content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_cloud_event"
    assert list(db.collection("events").stream()) == []
    assert crm_sync.drain() == []
