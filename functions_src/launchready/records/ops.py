"""Operational records the digest and console read: sync failures, unmatched events, disputes and dead
letters.

Each is keyed by what it is about (a redelivery overwrites, never duplicates) and summarised in the
day's `ops_inbox/{collection}_{YYYYMMDD}` document, which the console reads by id.
"""

import hashlib
from datetime import datetime
from typing import Any

from launchready.platform import log
from launchready.platform.clients import db
from launchready.platform.ledger import doc_id, now

SYNC_FAILURES = "sync_failures"
UNMATCHED_EVENTS = "unmatched_events"
DEAD_LETTERS = "dead_letters"
DISPUTES = "disputes"
OPS_INBOX = "ops_inbox"
# What a summary leaves out: the message itself (replayed from the record) and long texts.
_NOT_SUMMARISED = ("data", "attributes")
_SUMMARY_TEXT_LIMIT = 300


def inbox_path(collection: str, recorded_at: datetime) -> str:
    return f"{OPS_INBOX}/{collection}_{recorded_at:%Y%m%d}"


def inbox_item_key(record_id: str) -> str:
    # Map keys are field names; a digest keeps the record id's ":" and "." out of field paths.
    return hashlib.sha256(record_id.encode()).hexdigest()[:20]


def _write(collection: str, key: str, fields: dict[str, Any]) -> None:
    recorded = {**fields, "correlation_id": log.current_correlation_id(), "recorded_at": now()}
    record_id = doc_id(key)
    db().collection(collection).document(record_id).set(recorded, merge=True)
    summary = {name: value[:_SUMMARY_TEXT_LIMIT] if isinstance(value, str) else value
               for name, value in recorded.items() if name not in _NOT_SUMMARISED}
    try:
        db().document(inbox_path(collection, recorded["recorded_at"])).set(
            {"items": {inbox_item_key(record_id): {**summary, "id": record_id}}}, merge=True)
    except Exception as exc:  # the record itself is written; only the console's summary is missing
        log.warning("ops inbox not updated", error=repr(exc), collection=collection, record=record_id)


def record_sync_failure(*, function: str, event_id: str, code: str, detail: str, provider: str = "",
                        status: int | None = None) -> None:
    _write(SYNC_FAILURES, f"{function}:{event_id}", {
        "function": function, "event_id": event_id, "code": code, "detail": detail[:2000],
        "provider": provider, "status": status})


def record_unmatched(*, event_id: str, event_type: str, reason: str, customer: str | None = None) -> None:
    _write(UNMATCHED_EVENTS, event_id, {
        "event_id": event_id, "event_type": event_type, "reason": reason, "customer": customer})


def record_dispute(*, event_id: str, event_type: str, dispute: str, uid: str | None) -> None:
    """A Stripe dispute event (money at stake): listed by the ops console until someone answers it."""
    _write(DISPUTES, event_id,
           {"event_id": event_id, "event_type": event_type, "dispute": dispute, "uid": uid})


def record_dead_letter(*, function: str, event_id: str, message_id: str, attempts: int, error: str,
                       topic: str, data: Any, attributes: dict[str, str]) -> None:
    _write(DEAD_LETTERS, f"{function}:{event_id}:{message_id}", {
        "function": function, "event_id": event_id, "message_id": message_id, "attempts": attempts,
        "error": error[:2000], "topic": topic, "data": data, "attributes": attributes,
        # open until replayed from the ops console (which records who replayed it, in ops_audit).
        "status": "open"})
