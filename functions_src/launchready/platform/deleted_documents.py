"""The document a Firestore delete event carries: `old_value` of the protobuf DocumentEventData
(https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto),
decoded with Google's published types (google-events) into plain Python values.

An event without readable document data yields None, never an error: the deletion goes on without it.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloudevents.http import CloudEvent
from google.cloud.firestore_v1 import _helpers
from google.events.cloud.firestore import DocumentEventData
from google.protobuf.message import DecodeError

from launchready.platform import log
from launchready.platform.clients import db


@dataclass(frozen=True)
class DeletedDocument:
    data: dict[str, Any]
    create_time: datetime | None


def deleted_document(event: CloudEvent) -> DeletedDocument | None:
    """The document as it was before the delete, or None when the event does not carry it."""
    data = event.get_data()
    if not isinstance(data, bytes) or not data:
        log.warning("the delete event carries no document data")
        return None
    try:
        payload = DocumentEventData.deserialize(data)
        if "old_value" not in payload:
            log.warning("the delete event carries no old_value")
            return None
        document = payload.old_value
        created = document.create_time if "create_time" in document else None
        return DeletedDocument(_helpers.decode_dict(document.fields, db()), created or None)
    except (DecodeError, ValueError, TypeError) as exc:
        log.warning("the delete event's document data cannot be read", error=repr(exc))
        return None
