"""The journey journal: what the ops console reads, kept as documents it fetches by id.

The ledger reports each step transition here (`journeys/`, the hourly `timeline/`, `customer_journeys/`,
`customer_emails/`); writes are best effort and never fail the step they describe
(docs/architecture.md, "Ops console").
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore

from launchready.domain import steps
from launchready.platform import log
from launchready.platform.clients import db

JOURNEYS = "journeys"
TIMELINE = "timeline"
CUSTOMER_JOURNEYS = "customer_journeys"
CUSTOMER_EMAILS = "customer_emails"
# Ledger key prefixes that start a journey, and the step that starts each.
ROOT_STEPS = {"stripe": steps.PUBLISH, "signup": steps.PUBLISH, "support": steps.PUBLISH}
PROVIDER_STEPS = {
    steps.HUBSPOT_UPSERT: "HubSpot contact",
    steps.ZENDESK_TICKET: "Zendesk ticket",
    steps.RESEND_SEND: "Resend email",
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
    if step == steps.HUBSPOT_UPSERT and isinstance(result, dict):
        return [str(value) for value in result.get("contact_ids") or []]
    if step in (steps.ZENDESK_TICKET, steps.RESEND_SEND) and result not in (None, ""):
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
