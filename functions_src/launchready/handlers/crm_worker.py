"""crm_worker: keeps the HubSpot contact of each user in step with `users/{uid}`.

A `crm-sync` message only says "this user changed". The worker reads the user document and sends the
FULL contact state (email, name, lifecycle stage, complete tag set) in an upsert by email, so messages
that arrive late, twice or out of order all converge on the same contact.
"""

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from google.api_core.exceptions import AlreadyExists

from launchready.domain import crm, steps
from launchready.platform import log
from launchready.platform.clients import db
from launchready.platform.errors import PermanentError
from launchready.platform.ledger import Ledger, doc_id
from launchready.platform.push import PushMessage, worker
from launchready.providers import hubspot
from launchready.records import runs
from launchready.records.tombstones import is_deleted

USERS = "users"
PAYMENT_SYNC = "payment_sync"


@worker("crm_worker")
def crm_worker(message: PushMessage) -> None:
    uid, source_event_id, event_created = _parse(message.data)
    log.bind(uid=uid, source_event_id=source_event_id)
    snapshot = db().collection(USERS).document(uid).get()
    if not snapshot.exists and is_deleted(uid):
        # The account was deleted after this message was queued: its contact was updated or erased by
        # user_deleted, and an upsert now would bring an erased contact back.
        log.info("account deleted, contact not synced", reason=message.data.get("reason"))
        return
    if not snapshot.exists:
        raise PermanentError("user_not_found", f"users/{uid} does not exist")
    state = crm.contact_state(snapshot.to_dict() or {})
    if state is None:
        raise PermanentError("missing_email", "the user document has no usable email address")
    correlation_id = log.current_correlation_id()  # the one push bound for this delivery

    def upsert() -> dict[str, Any]:
        try:
            contact = hubspot.Contact(email=state.email, tags=state.tags,
                                      lifecycle_stage=state.lifecycle_stage, properties=state.known_names())
            contact_ids = hubspot.upsert_contacts([contact], correlation_id=correlation_id)
        except ValueError as exc:  # the adapter's own validation: a redelivery cannot fix the contact
            raise PermanentError("invalid_contact", str(exc), provider="hubspot") from exc
        # Recorded with the step, so the lag below is the same number on every redelivery.
        return {"contact_ids": contact_ids, "synced_at": time.time()}

    result = Ledger().run_step(message.event_id, steps.HUBSPOT_UPSERT, upsert)
    log.info("contact upserted", hubspot_contact_ids=result.get("contact_ids"), tags=sorted(state.tags),
             lifecycle_stage=state.lifecycle_stage, reason=message.data.get("reason"))
    if event_created is not None and source_event_id:
        _record_payment_sync(source_event_id, event_created, float(result["synced_at"]))


def _record_payment_sync(source_event_id: str, event_created: int, synced_at: float) -> None:
    """How long a payment event took to reach the CRM; the digest and the lag alert read it."""
    stripe_event_id = source_event_id.removeprefix("stripe:")
    lag_seconds = round(max(0.0, synced_at - event_created), 3)
    try:
        db().collection(PAYMENT_SYNC).document(doc_id(stripe_event_id)).create({
            "event_created": event_created, "synced_at": datetime.fromtimestamp(synced_at, UTC),
            "lag_seconds": lag_seconds,
            "correlation_id": log.current_correlation_id()})
    except AlreadyExists:
        return  # a redelivery: recorded (and counted in the lag metric) once
    runs.record_payment_sync_lag(lag_seconds)
    log.info("payment synced", sync_lag_seconds=lag_seconds, stripe_event_id=stripe_event_id)


def _parse(data: Mapping[str, Any]) -> tuple[str, str, int | None]:
    uid, source_event_id = data.get("uid"), data.get("source_event_id")
    event_created = data.get("event_created")
    if not isinstance(uid, str) or not uid or "/" in uid:
        raise PermanentError("invalid_message", "uid is missing or not a document id")
    if source_event_id is not None and not isinstance(source_event_id, str):
        raise PermanentError("invalid_message", "source_event_id must be a string")
    if event_created is not None and (isinstance(event_created, bool) or not isinstance(event_created, int)):
        raise PermanentError("invalid_message", "event_created must be unix seconds or null")
    return uid, source_event_id or "", event_created
