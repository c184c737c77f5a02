"""The document a Firestore delete event carries, decoded with Google's DocumentEventData; an event that
does not carry one yields None."""

from datetime import UTC, datetime

import pytest
from cloudevents.http import CloudEvent
from launchready.platform.deleted_documents import deleted_document

from tools.local.trigger_bridge import document_event_data

NAME = "projects/demo-launchready/databases/(default)/documents/users/uid-1"
CREATED = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def event(data: bytes) -> CloudEvent:
    return CloudEvent({"specversion": "1.0", "id": "e-1", "subject": "documents/users/uid-1",
                       "type": "google.cloud.firestore.document.v1.deleted",
                       "source": "//firestore.googleapis.com/projects/demo-launchready/databases/(default)",
                       "datacontenttype": "application/protobuf"}, data=data)


def test_the_old_value_comes_back_as_plain_values_with_its_create_time(firestore_emulator: str) -> None:
    profile = {"email": "ada@example.com", "billing": {"customer_id": "cus_1"}, "tags": ["a", None],
               "seats": 3}

    deleted = deleted_document(event(document_event_data(NAME, profile, CREATED, CREATED, deleted=True)))

    assert deleted is not None and deleted.create_time == CREATED
    assert deleted.data == {"email": "ada@example.com", "billing": {"customer_id": "cus_1"},
                            "tags": ["a", None], "seats": 3}


@pytest.mark.parametrize("data", [
    b"",  # no document data at all
    document_event_data(NAME, {"email": "new@example.com"}, CREATED, CREATED),  # a creation: no old_value
    b"\x12\xff\xff",  # a length past the end: not a DocumentEventData
])
def test_an_event_without_a_readable_old_value_yields_none(data: bytes, firestore_emulator: str) -> None:
    assert deleted_document(event(data)) is None
