"""Ledger contents for the ops console tests, written through the pipeline's own code (Ledger, records,
runs), so the console reads exactly the shapes the functions write."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from google.cloud import firestore
from launchready.platform import log
from launchready.platform.errors import TransientError
from launchready.platform.ledger import Ledger
from launchready.records import runs
from launchready.records.ops import record_dead_letter, record_dispute, record_sync_failure, record_unmatched


def seed_payment(
    db: firestore.Client,
    *,
    uid: str,
    email: str,
    customer: str,
    contact_id: str = "901",
    resend_id: str | None = None,
) -> dict[str, str]:
    """A paid checkout as the pipeline records it: the webhook's publish, billing_worker's apply and claims
    (with the uid bound, as billing_worker binds it), the CRM upsert, its payment sync; optionally a
    receipt email. Returns its keys and correlation id."""
    correlation_id = uuid.uuid4().hex
    event = f"stripe:evt_{uuid.uuid4().hex[:14]}"
    ledger = Ledger(db)
    event_type = "checkout.session.completed"
    with log.bound(correlation_id=correlation_id, event_type=event_type):
        ledger.claim(
            event,
            source="stripe_webhook",
            event_type=event_type,
            event_created=0,
            correlation_id=correlation_id,
            status="received",
        )
        ledger.run_step(event, "publish", lambda: "msg-1")
        ledger.update(event, status="published", published=True)
        with log.bound(uid=uid):
            ledger.run_step(event, "apply", lambda: {"outcome": "applied"})
            ledger.update(event, uid=uid, billing_outcome="applied")
            ledger.run_step(event, "claims", lambda: None)
    crm = f"crm:{uid}:{event}"
    with log.bound(correlation_id=correlation_id, uid=uid):
        ledger.run_step(crm, "hubspot_upsert", lambda: {"contact_ids": [contact_id], "synced_at": 1.0})
        db.collection("payment_sync").document(event.removeprefix("stripe:")).set(
            {"lag_seconds": 4.5, "synced_at": at(0), "correlation_id": correlation_id}
        )
        runs.record_payment_sync_lag(4.5)
        if resend_id:
            key = f"receipt:{event}"
            ledger.run_step(f"email:{key}", "resend_send", lambda: resend_id)
            db.collection("notifications").document(key.replace("/", "_")).set(
                {
                    "key": key,
                    "to": [email],
                    "subject": "Receipt",
                    "resend_id": resend_id,
                    "sent_at": at(0),
                    "correlation_id": correlation_id,
                    "event_id": f"email:{key}",
                }
            )
    db.collection("users").document(uid).set(
        {
            "email": email,
            "billing": {"status": "active", "customer_id": customer},
            "entitlements": {"pro": True},
        },
        merge=True,
    )
    db.collection("stripe_customers").document(customer).set({"uid": uid})
    return {"event": event, "crm": crm, "correlation_id": correlation_id}


def seed_support(
    db: firestore.Client, *, uid: str, email: str, reference: str, ticket_id: int = 4242
) -> dict[str, str]:
    correlation_id = uuid.uuid4().hex
    key = f"support:{reference}"
    db.collection("support_requests").document(reference).set(
        {
            "reference": reference,
            "uid": uid,
            "email": email,
            "name": "Ada",
            "subject": "Help",
            "message": "Hi",
            "category": "billing",
            "status": "ticket_created",
            "ticket_id": ticket_id,
            "created_at": at(0),
            "correlation_id": correlation_id,
        }
    )
    ledger = Ledger(db)
    with log.bound(correlation_id=correlation_id, uid=uid):
        ledger.run_step(key, "publish", lambda: "msg-2")
        ledger.run_step(key, "zendesk_ticket", lambda: ticket_id)
        # A redelivery that finds the ticket step done: counted as a skipped duplicate.
        ledger.run_step(key, "zendesk_ticket", lambda: pytest.fail("a done step ran again"))
        ledger.run_step(key, "write_back", lambda: reference)
    return {"event": key, "correlation_id": correlation_id}


def seed_problems(db: firestore.Client, *, topic: str = "crm-sync") -> dict[str, Any]:
    """One dead letter (with its failed step), one sync failure, one unmatched event, one dispute."""
    correlation_id = uuid.uuid4().hex
    uid = "u-dead"
    event_id = f"crm:{uid}:signup:{uid}"
    ledger = Ledger(db)
    with log.bound(correlation_id=correlation_id):

        def fail() -> None:
            raise TransientError("hubspot answered 503")

        with pytest.raises(TransientError):
            ledger.run_step(event_id, "hubspot_upsert", fail)
        record_dead_letter(
            function="crm_worker",
            event_id=event_id,
            message_id="m-dead",
            attempts=5,
            error="TransientError('hubspot answered 503')",
            topic=topic,
            data={
                "uid": uid,
                "reason": "signed_up",
                "source_event_id": f"signup:{uid}",
                "event_created": None,
            },
            attributes={
                "event_id": event_id,
                "correlation_id": correlation_id,
                "source_topic": topic,
                "CloudPubSubDeadLetterSourceDeliveryCount": "5",
            },
        )
        record_sync_failure(
            function="email_worker",
            event_id="email:welcome:u1",
            code="validation_error",
            detail="invalid to",
            provider="resend",
            status=422,
        )
        record_unmatched(
            event_id="stripe:evt_unmatched",
            event_type="invoice.paid",
            reason="unknown_customer",
            customer="cus_nobody",
        )
        record_dispute(
            event_id="stripe:evt_dispute", event_type="charge.dispute.created", dispute="dp_1", uid=None
        )
    runs.record_run("crm_worker", runs.FAILED, 120.0, "TransientError('hubspot answered 503')")
    for latency in (8.0, 40.0, 90.0, 200.0):
        runs.record_run("crm_worker", runs.OK, latency)
    return {
        "record_id": f"crm_worker:{event_id}:m-dead",
        "event_id": event_id,
        "correlation_id": correlation_id,
        "topic": topic,
    }


def at(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)
