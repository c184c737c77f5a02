"""`user_deleted`: what deleting an account does, triggered by the delete of its `users/{uid}` profile:
tombstone, `pro` claim revoked, live Stripe subscriptions ended, CRM contact updated or erased.

Each is a ledger step under `deletion:{uid}:{profile create time}`, safe to repeat however late a
retry comes (docs/architecture.md, "Account deletion").
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent
from google.cloud.firestore_v1.base_query import FieldFilter

from launchready.domain import crm, steps
from launchready.platform import firestore_events, log
from launchready.platform.claims import set_pro_claim
from launchready.platform.clients import db
from launchready.platform.deleted_documents import DeletedDocument, deleted_document
from launchready.platform.errors import PermanentError
from launchready.platform.ledger import Ledger
from launchready.platform.web import endpoint, json_response
from launchready.providers import hubspot, stripe
from launchready.records.ops import record_sync_failure
from launchready.records.tombstones import write_tombstone

FUNCTION = "user_deleted"
CANCEL_SETTING = "ACCOUNT_DELETION_CANCEL"
CRM_SETTING = "ACCOUNT_DELETION_CRM"
CANCEL_CHOICES = ("now", "period_end")
CRM_CHOICES = ("update", "erase")
# Statuses that can still charge the customer; a subscription in another one is over already.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete", "paused"})
# Only time that was paid for (or a trial) is worth running out; any other live status is ended now.
RUN_OUT_STATUSES = frozenset({"active", "trialing"})


class InvalidSetting(RuntimeError):
    pass


@dataclass(frozen=True)
class DeletionPolicy:
    cancel: str  # "now": DELETE /v1/subscriptions/{id}; "period_end": cancel_at_period_end=true
    crm: str  # "update": tag the contact; "erase": HubSpot GDPR delete

    @classmethod
    def from_env(cls) -> "DeletionPolicy":
        cancel = os.environ.get(CANCEL_SETTING, "now").strip() or "now"
        crm_mode = os.environ.get(CRM_SETTING, "update").strip() or "update"
        for name, value, choices in ((CANCEL_SETTING, cancel, CANCEL_CHOICES),
                                     (CRM_SETTING, crm_mode, CRM_CHOICES)):
            if value not in choices:
                raise InvalidSetting(f"{name} must be one of {', '.join(choices)}, not {value!r}")
        return cls(cancel, crm_mode)


@functions_framework.http
@endpoint(FUNCTION)
def user_deleted(request: flask.Request) -> flask.Response:
    """Eventarc delivers the Firestore delete event as an HTTP POST carrying a CloudEvent."""
    handle_deleted(firestore_events.cloud_event(request))
    return json_response({"status": "ok"})


def deletion_key(uid: str | None, profile: DeletedDocument | None) -> str:
    """One ledger entry per deleted profile: a profile written again under the same uid and deleted
    later is a new deletion (the old profile's create time tells them apart when the event carries it)."""
    created = profile.create_time if profile else None
    return f"deletion:{uid}:{created:%Y%m%dT%H%M%S.%fZ}" if created else f"deletion:{uid}"


def handle_deleted(event: CloudEvent) -> None:
    uid = firestore_events.uid_from_subject(event.get("subject"))
    deleted = deleted_document(event) if uid else None
    profile = deleted.data if deleted else None
    key = deletion_key(uid, deleted)
    ledger = Ledger()
    earlier = ledger.get(key) if uid else None
    correlation_id = (earlier or {}).get("correlation_id") or log.new_correlation_id()
    with log.bound(function=FUNCTION, correlation_id=correlation_id, event_id=key if uid else None,
                   cloud_event_id=event.get("id"), uid=uid):
        if event.get("type") != firestore_events.DELETED or uid is None:
            log.warning("not a users/{uid} delete event, ignored", cloud_event_type=event.get("type"),
                        subject=event.get("subject"))
            return
        if earlier and earlier.get("completed"):
            log.info("duplicate delivery, the deletion is complete")
            return
        if db().collection("users").document(uid).get().exists:
            # Written again since the delete: the account is in use, so nothing of it is undone.
            log.warning("the profile exists again, deletion skipped")
            return
        policy = DeletionPolicy.from_env()
        if ledger.claim(key, source=FUNCTION, cloud_event_id=event.get("id"), correlation_id=correlation_id,
                        cancel_policy=policy.cancel, crm_policy=policy.crm):
            log.info("account deletion claimed")
        failed: list[str] = []

        def step(name: str, action: Callable[[], Any]) -> Any:
            try:
                return ledger.run_step(key, name, action)
            except PermanentError as exc:
                log.error("deletion step failed permanently, recorded", step=name, error_code=exc.code,
                          reason=exc.detail, provider=exc.provider, provider_status=exc.status)
                record_sync_failure(function=FUNCTION, event_id=f"{key}:{name}", code=exc.code,
                                    detail=exc.detail, provider=exc.provider, status=exc.status)
                failed.append(name)
                return None

        tombstone = step(steps.TOMBSTONE, lambda: _tombstone(uid, profile, event)) or {}
        customers = tombstone.get("customers", [])
        step(steps.CLAIMS, lambda: set_pro_claim(uid, False))
        step(steps.STRIPE_CANCEL, lambda: cancel_subscriptions(uid, customers, policy.cancel))
        step(steps.CRM, lambda: update_crm(profile, policy.crm, correlation_id))
        ledger.update(key, completed=True, failed_steps=failed)
        log.info("account deletion done", failed_steps=failed or None)


# ---- steps -------------------------------------------------------------------------------------


def stripe_customers(uid: str, profile: dict[str, Any] | None) -> list[str]:
    """Every Stripe customer of the user: the profile's and every one linked in `stripe_customers/`."""
    found = set()
    customer = ((profile or {}).get("billing") or {}).get("customer_id")
    if isinstance(customer, str) and customer.startswith("cus_"):
        found.add(customer)
    for snapshot in db().collection("stripe_customers").where(filter=FieldFilter("uid", "==", uid)).stream():
        found.add(snapshot.id)
    return sorted(found)


def _tombstone(uid: str, profile: dict[str, Any] | None, event: CloudEvent) -> dict[str, Any]:
    customers = stripe_customers(uid, profile)
    write_tombstone(uid, stripe_customers=customers, cloud_event_id=event.get("id"))
    log.info("tombstone written", stripe_customers=customers)
    return {"customers": customers}


def cancel_subscriptions(uid: str, customers: list[str], cancel: str) -> dict[str, Any]:
    """End every live subscription of the customers now, or, with `cancel="period_end"`, let an active
    or trialing one run out and end any other live one now. A subscription canceled meanwhile counts as
    done."""
    actions = []
    for customer in customers:
        for subscription in stripe.subscriptions(customer):
            sub_id, status = subscription.id, subscription.status
            if status not in LIVE_STATUSES:
                continue
            if cancel == "period_end" and status in RUN_OUT_STATUSES:
                # The same flag every time: a repeat changes nothing, and the key makes it a replay.
                action = ("already_ending" if subscription.cancel_at_period_end else
                          stripe.cancel_at_period_end(sub_id, idempotency_key=f"deletion:{uid}:{sub_id}"))
            else:
                action = stripe.cancel_subscription(sub_id)
            log.info("stripe subscription ended", subscription=sub_id, status_before=status, action=action)
            actions.append({"customer": customer, "subscription": sub_id, "status_before": status,
                            "action": action})
    return {"subscriptions": actions}


def update_crm(profile: dict[str, Any] | None, mode: str, correlation_id: str) -> dict[str, Any]:
    state = crm.contact_state(profile or {})
    if state is None:
        log.warning("no email in the deleted profile, the CRM contact is left as it is")
        return {"action": "skipped_no_email"}
    try:
        if mode == "erase":
            hubspot.gdpr_delete_contact(state.email, correlation_id=correlation_id)
            log.info("crm contact erased (GDPR delete)")
            return {"action": "erased"}
        contact = hubspot.Contact(email=state.email, tags=state.tags | {crm.ACCOUNT_DELETED_TAG},
                                  lifecycle_stage=state.lifecycle_stage)
        contact_ids = hubspot.upsert_contacts([contact], correlation_id=correlation_id)
    except ValueError as exc:
        raise PermanentError("invalid_contact", str(exc), provider="hubspot") from exc
    log.info("crm contact marked deleted", hubspot_contact_ids=contact_ids)
    return {"action": "updated", "contact_ids": contact_ids}
