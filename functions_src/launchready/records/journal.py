"""The journey journal: what the ops console reads, kept as documents it can fetch by id.

A journey is everything one correlation id touched: a Stripe event with its billing, CRM and email
steps, a sign-up with its CRM sync, a support request with its ticket and acknowledgement. The ledger
(ledger.py) reports each step transition here, and one batched write keeps:

  journeys/{correlation_id}      every step's state, timing, attempts, skipped duplicates, error and
                                 provider ids; the root event, its type, the user
  timeline/{YYYYMMDDHH}          correlation id -> start time of each journey that started that hour
  customer_journeys/{uid}        correlation id -> last activity of each journey that touched the user
  customer_emails/{digest}       the uid of a sign-up's email address (written by user_created)

so each console page is a handful of document reads whatever the ledger's size (queries would scan on
the emulator and need an index per shape in Firestore). The user and the event type come from the
request's log context (`log.bind(uid=..., event_type=...)`, which the functions already do). Writes
are best effort: a failure is logged and never fails the step it describes.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from launchready.platform import log
from launchready.platform.clients import db

JOURNEYS = "journeys"
TIMELINE = "timeline"
CUSTOMER_JOURNEYS = "customer_journeys"
CUSTOMER_EMAILS = "customer_emails"
# Ledger key prefixes that start a journey, and the step that starts each.
ROOT_STEPS = {"stripe": "publish", "signup": "publish", "support": "publish"}
PROVIDER_STEPS = {
    "hubspot_upsert": "HubSpot contact",
    "zendesk_ticket": "Zendesk ticket",
    "resend_send": "Resend email",
}
RUNNING, DONE, FAILED, DUPLICATE = "running", "done", "failed", "duplicate"


def kind_of(event_key: str) -> str:
    return event_key.split(":", 1)[0]


def step_id(event_key: str, step: str) -> str:
    # Map keys are field names; a digest keeps any ledger key (":", ".", "/") out of field paths.
    return hashlib.sha256(f"{event_key}\n{step}".encode()).hexdigest()[:20]


def hour_id(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%d%H")


def provider_ids(step: str, result: Any) -> list[str]:
    """The provider object ids a step's recorded result names (HubSpot contacts, ticket, email)."""
    if step == "hubspot_upsert" and isinstance(result, dict):
        return [str(value) for value in result.get("contact_ids") or []]
    if step in ("zendesk_ticket", "resend_send") and result not in (None, ""):
        return [str(result)]
    return []


def writes(
    event_key: str,
    step: str,
    transition: str,
    *,
    correlation_id: str,
    at: datetime,
    attempts: int = 0,
    error: str = "",
    result: Any = None,
    uid: str | None = None,
    event_type: str | None = None,
) -> list[tuple[str, dict[str, Any]]]:
    """(document path, merge data) for one step transition (also used to seed the console benchmark)."""
    if not correlation_id:
        return []
    entry: dict[str, Any] = {"event_key": event_key, "step": step}
    if transition == RUNNING:
        entry.update(state=RUNNING, started_at=at, attempts=attempts, error="")
    elif transition == DONE:
        entry.update(state=DONE, finished_at=at, provider_ids=provider_ids(step, result))
    elif transition == FAILED:
        entry.update(state=FAILED, finished_at=at, error=error[:300])
    else:
        entry.update(duplicates_skipped=firestore.Increment(1))
    journey: dict[str, Any] = {
        "correlation_id": correlation_id,
        "updated_at": at,
        "steps": {step_id(event_key, step): entry},
    }
    if uid:
        journey["uid"] = uid
    result_writes = [(f"{JOURNEYS}/{correlation_id}", journey)]
    kind = kind_of(event_key)
    if transition == RUNNING and attempts == 1 and ROOT_STEPS.get(kind) == step:
        journey.update(root_key=event_key, kind=kind, started_at=at)
        result_writes.append((f"{TIMELINE}/{hour_id(at)}", {"journeys": {correlation_id: at}}))
    if event_type and kind == "stripe":
        journey["event_type"] = event_type
    if uid and transition == RUNNING and attempts == 1:
        result_writes.append((f"{CUSTOMER_JOURNEYS}/{uid}", {"journeys": {correlation_id: at}}))
    return result_writes


def planned(event_key: str, step: str, transition: str, **fields: Any) -> list[tuple[str, dict[str, Any]]]:
    """The journal writes of one step transition, in the current request's log context."""
    correlation_id = fields.pop("correlation_id", None) or log.current_correlation_id()
    uid = log.current("uid")
    event_type = log.current("event_type")
    return writes(
        event_key,
        step,
        transition,
        correlation_id=correlation_id,
        at=fields.pop("at", None) or datetime.now(UTC),
        uid=uid if isinstance(uid, str) else None,
        event_type=event_type if isinstance(event_type, str) else None,
        **fields,
    )


def add(batch: Any, event_key: str, step: str, transition: str, **fields: Any) -> None:
    """Add one step transition's journal writes to the caller's batch (committed with the step itself)."""
    client = db()
    for path, data in planned(event_key, step, transition, **fields):
        batch.set(client.document(path), data, merge=True)


def record(event_key: str, step: str, transition: str, **fields: Any) -> None:
    """Journal one step transition of the current request (best effort)."""
    try:
        client = db()
        batch = client.batch()
        add(batch, event_key, step, transition, **fields)
        if len(batch):
            batch.commit()
    except Exception as exc:  # the journal serves the console; the step it describes stands
        log.warning("journey not journaled", error=repr(exc), ledger_key=event_key, step=step)


def email_digest(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


def index_email(email: str, uid: str) -> None:
    """Let the console find a customer by email with one read (best effort)."""
    try:
        db().collection(CUSTOMER_EMAILS).document(email_digest(email)).set({"uid": uid})
    except Exception as exc:
        log.warning("customer email not indexed", error=repr(exc), uid=uid)
