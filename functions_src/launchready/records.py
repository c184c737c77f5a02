"""Operational records the ops digest and console read: sync failures, unmatched events, disputes and
dead letters.
Each write is keyed by what it is about, so a redelivery overwrites instead of duplicating."""

from typing import Any

from . import log
from .clients import db
from .ledger import doc_id, now

SYNC_FAILURES = "sync_failures"
UNMATCHED_EVENTS = "unmatched_events"
DEAD_LETTERS = "dead_letters"
DISPUTES = "disputes"


def _write(collection: str, key: str, fields: dict[str, Any]) -> None:
    db().collection(collection).document(doc_id(key)).set(
        {**fields, "correlation_id": log.current_correlation_id(), "recorded_at": now()}, merge=True)


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
