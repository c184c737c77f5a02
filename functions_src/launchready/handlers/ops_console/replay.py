"""Replay of one dead letter from the console, with an audit record of who did it.

The message is republished to its own topic with its event_id (the worker's ledger skips what already
ran); open -> replaying is a transaction, so two operators clicking at once replay it once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from launchready.handlers.ops_console.access import Operator
from launchready.platform.config import publishes
from launchready.platform.pubsub import publish
from launchready.records.ops import DEAD_LETTERS, inbox_item_key, inbox_path

OPS_AUDIT = "ops_audit"
# Added by Pub/Sub and by this stack's publisher; publish() sets the stack's own again.
DROPPED_ATTRIBUTES = ("event_id", "correlation_id", "source_topic")
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"


class ReplayRefused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


def replay_dead_letter(client: firestore.Client, record_id: str, operator: Operator) -> dict[str, Any]:
    """Republish the dead letter `record_id`; returns the audit record. ReplayRefused(404/409/422)."""
    ref = client.collection(DEAD_LETTERS).document(record_id)
    record = _take(client, ref)
    attributes = {str(k): str(v) for k, v in (record.get("attributes") or {}).items()}
    topic = str(record.get("topic") or attributes.get("source_topic") or "")
    event_id = str(record.get("event_id") or attributes.get("event_id") or "")
    try:
        if topic not in publishes() or not event_id or not isinstance(record.get("data"), dict):
            raise ReplayRefused(422, f"the record names no known topic or event ({topic!r}, {event_id!r})")
        extra = {
            name: value
            for name, value in attributes.items()
            if name not in DROPPED_ATTRIBUTES and not name.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)
        }
        message_id = publish(
            topic,
            record["data"],
            event_id=event_id,
            correlation_id=attributes.get("correlation_id") or record.get("correlation_id") or None,
            **{**extra, "replayed_from": record_id, "replayed_by": operator.uid},
        )
    except BaseException:
        ref.update({"status": "open"})  # nothing was published: it can be tried again
        raise
    at = datetime.now(UTC)
    audit = {
        "action": "replay_dead_letter",
        "dead_letter": record_id,
        "topic": topic,
        "event_id": event_id,
        "correlation_id": record.get("correlation_id") or attributes.get("correlation_id") or "",
        "message_id": message_id,
        "actor_uid": operator.uid,
        "actor_email": operator.email,
        "at": at,
    }
    replayed = {"status": "replayed", "replayed_at": at, "replayed_by": operator.email or operator.uid,
                "replay_message_id": message_id}
    batch = client.batch()
    batch.set(client.collection(OPS_AUDIT).document(), audit)
    batch.update(ref, replayed)
    recorded_at = record.get("recorded_at")
    if isinstance(recorded_at, datetime):  # the console lists dead letters from the day's inbox summary
        batch.set(client.document(inbox_path(DEAD_LETTERS, recorded_at)),
                  {"items": {inbox_item_key(record_id): replayed}}, merge=True)
    batch.commit()
    return audit


def _take(client: firestore.Client, ref: firestore.DocumentReference) -> dict[str, Any]:
    transaction = client.transaction()

    @firestore.transactional
    def take(tx: firestore.Transaction) -> dict[str, Any]:
        snapshot = ref.get(transaction=tx)
        if not snapshot.exists:
            raise ReplayRefused(404, "no such dead letter")
        data = snapshot.to_dict() or {}
        if data.get("status") not in (None, "open"):
            raise ReplayRefused(409, f"already {data.get('status')}")
        tx.update(ref, {"status": "replaying"})
        return data

    return take(transaction)
