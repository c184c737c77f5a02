"""`user_deleted`: what deleting an account does, triggered by the delete of its `users/{uid}` profile.

Steps, each recorded under the ledger key `deletion:{uid}:{profile create time}` (one per deleted profile)
so a redelivered event resumes where the last attempt stopped and repeats nothing:
  tombstone  `deleted_users/{uid}` first, so Stripe events and CRM messages that arrive later are
             acknowledged and recorded as concerning a deleted account instead of retried
  claims     the `pro` custom claim is revoked at once, if the Auth user still exists (other claims kept)
  stripe     the user's live Stripe subscriptions are canceled, now or at the end of the paid period
             (ACCOUNT_DELETION_CANCEL)
  crm        the HubSpot contact is updated (tag `account_deleted`) or erased with HubSpot's GDPR delete
             (ACCOUNT_DELETION_CRM=erase, for privacy requests)
Every side effect here is safe to repeat however late a retry comes, so none needs a second guard
beyond a provider's idempotency window: the subscriptions are listed again and only live ones are
ended (a cancel of a canceled one counts as done), the CRM update is an upsert of the same state, and a
repeated GDPR delete only blocklists the address again.
The billing ledger is kept: `events/`, `stripe_customers/`, `stripe_payments/` and the Stripe customer
itself stay, as bookkeeping needs them. A step that fails permanently is recorded in `sync_failures`
(the ops digest lists it) and the others still run; a transient failure fails the delivery so the
trigger retries it.

The deleted profile comes from the event's `old_value` (the protobuf DocumentEventData Eventarc sends,
https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/firestore/v1/data.proto);
without it the Stripe customers are still found through `stripe_customers/` but the CRM has no email.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import flask
import functions_framework
import stripe
from cloudevents.exceptions import GenericException
from cloudevents.http import CloudEvent, from_http
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.types import Document

from launchready.handlers import crm_worker as crm
from launchready.handlers.create_checkout import failure_rule, stripe_client
from launchready.handlers.user_created import uid_from_subject
from launchready.platform import log
from launchready.platform.claims import set_pro_claim
from launchready.platform.clients import db
from launchready.platform.errors import PermanentError, TransientError
from launchready.platform.ledger import Ledger
from launchready.platform.web import HttpError, endpoint, json_response
from launchready.providers import hubspot
from launchready.providers.http import Failure
from launchready.records.ops import record_sync_failure
from launchready.records.tombstones import write_tombstone

FUNCTION = "user_deleted"
DELETED_EVENT_TYPE = "google.cloud.firestore.document.v1.deleted"
CANCEL_SETTING = "ACCOUNT_DELETION_CANCEL"
CRM_SETTING = "ACCOUNT_DELETION_CRM"
CANCEL_CHOICES = ("now", "period_end")
CRM_CHOICES = ("update", "erase")
DELETED_TAG = "account_deleted"
# Statuses that can still charge the customer; a subscription in another one is over already.
LIVE_STATUSES = frozenset({"active", "trialing", "past_due", "unpaid", "incomplete", "paused"})
# Only time that was paid for (or a trial) is worth running out; any other live status is ended now.
RUN_OUT_STATUSES = frozenset({"active", "trialing"})
STRIPE_PAGE_SIZE = 100


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
    try:
        event = from_http(dict(request.headers), request.get_data())
    except GenericException as exc:
        raise HttpError(400, "invalid_cloud_event", f"not a CloudEvent: {exc}") from exc
    handle_deleted(event)
    return json_response({"status": "ok"})


def deletion_key(uid: str | None, profile: "DeletedProfile | None") -> str:
    """One ledger entry per deleted profile: a profile written again under the same uid and deleted
    later is a new deletion (the old profile's create time tells them apart when the event carries it)."""
    created = profile.create_time if profile else None
    return f"deletion:{uid}:{created:%Y%m%dT%H%M%S.%fZ}" if created else f"deletion:{uid}"


def handle_deleted(event: CloudEvent) -> None:
    uid = uid_from_subject(event.get("subject"))
    deleted = read_deleted_profile(event) if uid else None
    profile = deleted.data if deleted else None
    key = deletion_key(uid, deleted)
    ledger = Ledger()
    earlier = ledger.get(key) if uid else None
    correlation_id = (earlier or {}).get("correlation_id") or log.new_correlation_id()
    with log.bound(function=FUNCTION, correlation_id=correlation_id, event_id=key if uid else None,
                   cloud_event_id=event.get("id"), uid=uid):
        if event.get("type") != DELETED_EVENT_TYPE or uid is None:
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

        customers = (step("tombstone", lambda: _tombstone(uid, profile, event)) or {}).get("customers", [])
        step("claims", lambda: set_pro_claim(uid, False))
        step("stripe", lambda: cancel_subscriptions(uid, customers, policy.cancel))
        step("crm", lambda: update_crm(uid, profile, policy.crm, correlation_id))
        ledger.update(key, completed=True, failed_steps=failed)
        log.info("account deletion done", failed_steps=failed or None)


# ---- the deleted profile -----------------------------------------------------------------------


def _varint(data: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if not byte & 0x80:
            return value, offset
        shift += 7


def _message_fields(data: bytes) -> dict[int, bytes]:
    """The length-delimited fields of a protobuf message, by field number (others skipped)."""
    fields: dict[int, bytes] = {}
    offset = 0
    while offset < len(data):
        key, offset = _varint(data, offset)
        wire_type = key & 0x7
        if wire_type == 0:
            _, offset = _varint(data, offset)
        elif wire_type == 1:
            offset += 8
        elif wire_type == 5:
            offset += 4
        elif wire_type == 2:
            length, offset = _varint(data, offset)
            fields[key >> 3] = data[offset:offset + length]
            offset += length
        else:
            raise ValueError(f"unsupported protobuf wire type {wire_type}")
    return fields


@dataclass(frozen=True)
class DeletedProfile:
    data: dict[str, Any]
    create_time: datetime | None


def read_deleted_profile(event: CloudEvent) -> DeletedProfile | None:
    """`old_value` (field 2 of DocumentEventData), or None when the event does not carry it."""
    data = event.get_data()
    if not isinstance(data, bytes) or not data:
        log.warning("the delete event carries no document data")
        return None
    try:
        old_value = _message_fields(data).get(2)
        if old_value is None:
            log.warning("the delete event carries no old_value")
            return None
        document = Document.deserialize(old_value)
        created = document.create_time if "create_time" in document else None
        return DeletedProfile(_helpers.decode_dict(document.fields, db()), created or None)
    except (ValueError, IndexError, TypeError) as exc:
        log.warning("the delete event's document data cannot be read", error=repr(exc))
        return None


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
    """Cancel every live subscription of the customers (https://docs.stripe.com/api/subscriptions/cancel),
    or, with `cancel="period_end"`, let an active or trialing one run out
    (https://docs.stripe.com/api/subscriptions/update#update_subscription-cancel_at_period_end) and end
    any other live one now. A subscription canceled meanwhile counts as done."""
    client = stripe_client()
    actions = []
    for customer in customers:
        listed = _stripe_call(lambda c=customer: client.v1.subscriptions.list(
            params={"customer": c, "status": "all", "limit": STRIPE_PAGE_SIZE}))
        for subscription in listed.auto_paging_iter():
            sub_id, status = subscription.id, subscription.status
            if status not in LIVE_STATUSES:
                continue
            if cancel == "period_end" and status in RUN_OUT_STATUSES:
                if subscription.cancel_at_period_end:
                    action = "already_ending"
                else:
                    # The same flag every time: a repeat changes nothing, and the key makes it a replay.
                    action = _ended_already_or(lambda s=sub_id: client.v1.subscriptions.update(
                        s, params={"cancel_at_period_end": True},
                        options={"idempotency_key": f"deletion:{uid}:{s}"}), "cancel_at_period_end")
            else:
                # DELETE is idempotent by definition; Stripe ignores idempotency keys on it
                # (https://docs.stripe.com/api/idempotent_requests).
                action = _ended_already_or(lambda s=sub_id: client.v1.subscriptions.cancel(s), "canceled")
            log.info("stripe subscription ended", subscription=sub_id, status_before=status, action=action)
            actions.append({"customer": customer, "subscription": sub_id, "status_before": status,
                            "action": action})
    return {"subscriptions": actions}


def _ended_already_or(call: Callable[[], Any], action: str) -> str:
    """Run `call`; a subscription that ended since it was listed answers 404 (cancel) or 400 (update),
    which means the work is done (stripe/stripe-go#1887, BasedHardware/omi#11289)."""
    try:
        _stripe_call(call)
    except PermanentError as exc:
        if exc.code == "resource_missing" or "canceled subscription" in exc.detail:
            return "already_canceled"
        raise
    return action


def _stripe_call(call: Callable[[], Any]) -> Any:
    """`call()`, its Stripe failure classified by the Stripe adapter's one table (checkout.FAILURES)."""
    try:
        return call()
    except stripe.StripeError as exc:
        if failure_rule(exc).failure == Failure.PERMANENT:
            raise PermanentError(str(exc.code or type(exc).__name__), str(exc.user_message or exc),
                                 provider="stripe", status=exc.http_status) from exc
        raise TransientError(f"stripe: {type(exc).__name__}: {exc.user_message}") from exc


def update_crm(uid: str, profile: dict[str, Any] | None, mode: str, correlation_id: str) -> dict[str, Any]:
    email = str((profile or {}).get("email") or "").strip().lower()
    if "@" not in email:
        log.warning("no email in the deleted profile, the CRM contact is left as it is")
        return {"action": "skipped_no_email"}
    try:
        if mode == "erase":
            hubspot.gdpr_delete_contact(email, correlation_id=correlation_id)
            log.info("crm contact erased (GDPR delete)")
            return {"action": "erased"}
        state = crm.contact_state(profile or {})
        contact = hubspot.Contact(email=state.email, tags=state.tags | {DELETED_TAG},
                                  lifecycle_stage=state.lifecycle_stage)
        contact_ids = hubspot.upsert_contacts([contact], correlation_id=correlation_id)
    except ValueError as exc:
        raise PermanentError("invalid_contact", str(exc), provider="hubspot") from exc
    log.info("crm contact marked deleted", hubspot_contact_ids=contact_ids)
    return {"action": "updated", "contact_ids": contact_ids}
