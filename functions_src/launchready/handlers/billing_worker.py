"""`billing_worker`: applies verified Stripe events from `billing-events` to `users/{uid}` in ledger steps
(apply, claims, crm, notify) under the message's event id, so a redelivery never applies an event twice.

An event that matches no user, or concerns a deleted account, is acknowledged and recorded, never
retried (docs/architecture.md, "Billing worker").
"""

from typing import Any

from google.api_core.exceptions import AlreadyExists
from google.cloud import firestore

from launchready.domain import billing_state, emails, steps
from launchready.platform import log
from launchready.platform.claims import set_pro_claim
from launchready.platform.clients import db
from launchready.platform.config import settings
from launchready.platform.errors import PermanentError, TransientError
from launchready.platform.ledger import EVENTS, Ledger, doc_id, now, published_record
from launchready.platform.pubsub import publish
from launchready.platform.push import PushMessage, worker
from launchready.providers import stripe
from launchready.providers.resend_queue import queue_email
from launchready.records.ops import record_dispute, record_sync_failure, record_unmatched
from launchready.records.tombstones import tombstone, tombstone_ref

FUNCTION = "billing_worker"
ACCOUNT_DELETED = "account_deleted"
MODE_MISMATCH = "mode_mismatch"
USERS = "users"
STRIPE_CUSTOMERS = "stripe_customers"
# charge / payment intent id -> uid, so a dispute (which names no customer) can be matched.
STRIPE_PAYMENTS = "stripe_payments"
CRM_TOPIC = "crm-sync"
MAX_UID_LENGTH = 128  # Firebase Auth's limit


class ProfileMissing(TransientError):
    """The users/{uid} profile is written by the app at sign-up and may lag a fast checkout."""


@worker(FUNCTION)
def billing_worker(message: PushMessage) -> None:
    event = message.data
    _check_event(event)
    key = message.event_id
    obj = billing_state.event_object(event)
    log.bind(event_type=event["type"], stripe_event_id=event["id"], stripe_object_id=obj.get("id"))
    ledger = Ledger()
    # The message is here, so it was published: recorded again because the webhook writes its own record
    # after answering Stripe (webhook.py), and recorded first for a message published another way.
    ledger.update(key, event_type=event["type"], event_created=event["created"],
                  **published_record(message.message_id))

    if bool(event.get("livemode")) != stripe.live_key():
        _mode_mismatch(ledger, key, event)
        return
    uid, matched_by = resolve_uid(event)
    if event["type"].startswith("charge.dispute."):
        record_dispute(event_id=key, event_type=event["type"], dispute=obj["id"], uid=uid)
    if uid is None:
        _unmatched(ledger, key, event, matched_by)
        return
    log.bind(uid=uid)
    _remember_links(uid, event)

    result = ledger.run_step(key, steps.APPLY, lambda: apply_event(uid, event, key))
    # billing_outcome, not status: the webhook owns `status` on the same ledger entry.
    ledger.update(key, billing_outcome=result["outcome"], uid=uid, matched_by=matched_by,
                  stage=result["stage"], billing_status=result.get("status"))
    log.info(f"billing event {result['outcome']}", stage=result["stage"], outcome=result["outcome"],
             reason=result.get("reason") or None, billing_status=result.get("status"), pro=result.get("pro"),
             matched_by=matched_by)
    if result["outcome"] == ACCOUNT_DELETED:
        _alert_dispute(ledger, key, event, uid)  # nothing else: no profile, claim or contact to update
        return
    if result["outcome"] == billing_state.APPLIED:
        _set_claims(ledger, key, uid)
    if result.get("crm_reason"):
        reason = result["crm_reason"]
        ledger.run_step(key, steps.CRM, lambda: publish_crm_sync(uid, reason, key, event["created"]))
    if result.get("notices"):
        ledger.run_step(key, steps.NOTIFY, lambda: send_notices(uid, result, event))


def _check_event(event: dict[str, Any]) -> None:
    data = event.get("data")
    if not (isinstance(event.get("id"), str) and isinstance(event.get("type"), str)
            and isinstance(event.get("created"), int) and isinstance(data, dict)
            and isinstance(data.get("object"), dict) and isinstance(data["object"].get("id"), str)):
        raise PermanentError("invalid_event",
                             "message data is not a Stripe event (id, type, created, data.object)")


# ---- matching the event to a user --------------------------------------------------------------


def _valid_uid(value: Any) -> str | None:
    if isinstance(value, str) and 0 < len(value) <= MAX_UID_LENGTH and "/" not in value:
        return value
    return None


def resolve_uid(event: dict[str, Any]) -> tuple[str | None, str]:
    """(uid, how it was found) or (None, why not). Order: the checkout's client_reference_id, the
    customer mapping, the payments a dispute refers to, then `metadata.uid`."""
    obj = billing_state.event_object(event)
    if event["type"].startswith("checkout.session."):
        uid = _valid_uid(obj.get("client_reference_id"))
        if uid:
            return uid, "client_reference_id"
    customer = billing_state.expandable_id(obj.get("customer"))
    if customer:
        snapshot = db().collection(STRIPE_CUSTOMERS).document(doc_id(customer)).get()
        uid = _valid_uid((snapshot.to_dict() or {}).get("uid")) if snapshot.exists else None
        if uid:
            return uid, "customer"
    if event["type"].startswith("charge.dispute."):
        for payment in billing_state.dispute_payment_ids(obj):
            snapshot = db().collection(STRIPE_PAYMENTS).document(doc_id(payment)).get()
            uid = _valid_uid((snapshot.to_dict() or {}).get("uid")) if snapshot.exists else None
            if uid:
                return uid, "payment"
    uid = _valid_uid(billing_state.metadata_uid(obj))
    if uid:
        return uid, "metadata"
    return None, "unknown_customer" if customer else "no_customer_reference"


def _remember_links(uid: str, event: dict[str, Any]) -> None:
    """Record customer -> uid (and payment -> uid) so later events of this customer can be matched."""
    obj = billing_state.event_object(event)
    customer = billing_state.expandable_id(obj.get("customer"))
    if customer:
        ref = db().collection(STRIPE_CUSTOMERS).document(doc_id(customer))
        try:
            ref.create({"uid": uid, "linked_at": now(), "source_event_id": event["id"]})
            log.info("stripe customer linked", customer=customer)
        except AlreadyExists:
            linked = (ref.get().to_dict() or {}).get("uid")
            if linked != uid:  # the first link wins; a conflict needs a human
                log.warning("stripe customer already linked to another user", customer=customer,
                            linked_uid=linked)
    for payment in billing_state.payment_ids(event["type"], obj):
        db().collection(STRIPE_PAYMENTS).document(doc_id(payment)).set(
            {"uid": uid, "customer": customer, "linked_at": now()}, merge=True)


def _unmatched(ledger: Ledger, key: str, event: dict[str, Any], reason: str) -> None:
    obj = billing_state.event_object(event)
    customer = billing_state.expandable_id(obj.get("customer"))
    log.warning("billing event matches no user, recorded as unmatched", reason=reason, customer=customer)
    record_unmatched(event_id=key, event_type=event["type"], reason=reason, customer=customer)
    ledger.update(key, billing_outcome="unmatched", unmatched_reason=reason)
    _alert_dispute(ledger, key, event)


def _mode_mismatch(ledger: Ledger, key: str, event: dict[str, Any]) -> None:
    """A live event on a stack holding a test key, or the other way round: a misrouted endpoint. Applying
    it would grant access from money that does not exist in this stack's mode."""
    customer = billing_state.expandable_id(billing_state.event_object(event).get("customer"))
    log.error("billing event in the other Stripe mode than the key, not applied",
              event_livemode=bool(event.get("livemode")), customer=customer)
    record_unmatched(event_id=key, event_type=event["type"], reason=MODE_MISMATCH, customer=customer)
    ledger.update(key, billing_outcome=MODE_MISMATCH)


def _alert_dispute(ledger: Ledger, key: str, event: dict[str, Any], uid: str | None = None) -> None:
    obj = billing_state.event_object(event)
    if event["type"] == "charge.dispute.created":
        # Money is at stake whether or not the user is known (or still has an account): ops hear about
        # every dispute.
        dispute = billing_state.Notice(billing_state.OPS_DISPUTE, obj["id"], {
            "amount": obj.get("amount"), "currency": obj.get("currency"), "reason": obj.get("reason"),
            "charge": billing_state.expandable_id(obj.get("charge")), "status": obj.get("status")})
        ledger.run_step(key, steps.NOTIFY, lambda: send_notices(uid, {"notices": [dispute.as_dict()]}, event))


# ---- steps -------------------------------------------------------------------------------------


def apply_event(uid: str, event: dict[str, Any], key: str) -> dict[str, Any]:
    """The `apply` step: transition users/{uid}.billing in one transaction with the ledger record."""
    client = db()
    user_ref = client.collection(USERS).document(uid)
    event_ref = client.collection(EVENTS).document(doc_id(key))

    @firestore.transactional
    def apply(transaction: firestore.Transaction) -> dict[str, Any]:
        recorded = event_ref.get(transaction=transaction)
        earlier = (recorded.to_dict() or {}).get("billing_apply") if recorded.exists else None
        if earlier:  # committed by a delivery that stopped before recording the step
            return earlier
        snapshot = user_ref.get(transaction=transaction)
        if not snapshot.exists:
            deleted = tombstone(uid, transaction=transaction)
            if deleted is None:
                raise ProfileMissing(f"users/{uid} does not exist yet")
            result = _deleted_account_result(uid, deleted)
            transaction.set(event_ref, {"billing_apply": result}, merge=True)
            return result
        user = snapshot.to_dict() or {}
        change = billing_state.transition(user.get("billing"), event)
        result = {**change.summary(), "uid": uid, "email": user.get("email") or None,
                  "name": user.get("display_name") or None}
        if change.billing is not None:
            transaction.update(user_ref, {
                "billing": {**change.billing, "updated_at": firestore.SERVER_TIMESTAMP},
                "entitlements.pro": change.pro,
            })
        transaction.set(event_ref, {"billing_apply": result}, merge=True)
        return result

    return apply(client.transaction())


def _deleted_account_result(uid: str, deleted: dict[str, Any]) -> dict[str, Any]:
    return {"outcome": ACCOUNT_DELETED, "stage": ACCOUNT_DELETED, "uid": uid, "status": None, "pro": False,
            "reason": f"users/{uid} was deleted ({tombstone_ref(uid).path}, {deleted.get('deleted_at')})",
            "crm_reason": None, "notices": []}


def _set_claims(ledger: Ledger, key: str, uid: str) -> None:
    """The `claims` step. Claims Firebase refuses (PermanentError) are recorded for ops, and the CRM and
    notification steps still run: the billing state is already written, and the app reads
    `entitlements.pro` from users/{uid} as well."""
    try:
        ledger.run_step(key, steps.CLAIMS, lambda: set_pro_claim(uid, current_pro(uid)))
    except PermanentError as exc:
        log.error("custom claims refused, billing and CRM still updated", error_code=exc.code,
                  reason=exc.detail, provider=exc.provider)
        record_sync_failure(function=FUNCTION, event_id=key, code=exc.code, detail=exc.detail,
                            provider=exc.provider)


def current_pro(uid: str) -> bool:
    """The entitlement as it is now, not as this event left it: if events are processed concurrently,
    whichever claims step runs last still sets the claim the latest state asks for."""
    snapshot = db().collection(USERS).document(uid).get()
    return bool(((snapshot.to_dict() or {}).get("entitlements") or {}).get("pro"))


def publish_crm_sync(uid: str, reason: str, source_event_id: str, event_created: int) -> dict[str, Any]:
    payload = {"uid": uid, "reason": reason, "source_event_id": source_event_id,
               "event_created": event_created}
    message_id = publish(CRM_TOPIC, payload, event_id=f"crm:{uid}:{source_event_id}")
    return {"message_id": message_id}


def send_notices(uid: str | None, result: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Queue the emails the applied event calls for; each key names its email for good, so even a
    repeat of this step sends each email once."""
    queued: list[str] = []
    environment = settings().environment
    for notice in result.get("notices") or []:
        kind, ref, details = notice["kind"], notice["ref"], notice.get("details") or {}
        if kind == billing_state.PAYMENT_RECOVERY:
            if not result.get("email"):
                log.warning("no email on the profile, recovery email not sent", uid=uid)
                continue
            key = f"payment-failed:{uid}:{ref}"
            _queue(key, _recovery_email(result.get("name"), details), result["email"], "payment_recovery")
        elif kind == billing_state.OPS_REPEATED_PAYMENT_FAILURE:
            key = f"ops-payment-failures:{uid}:{ref}"
            email = emails.ops_alert(
                environment=environment,
                title="Repeated payment failure",
                summary=f"A customer's payment failed {details.get('failed_payment_count')} times in a row.",
                details={"uid": uid, "email": result.get("email"), "status": result.get("status"),
                         "failed_payment_count": details.get("failed_payment_count"),
                         "last_failed_object": details.get("last_failed_object"),
                         "stripe_event": event["id"]})
            _queue(key, email, settings().ops_email, "ops_repeated_payment_failure")
        elif kind == billing_state.OPS_DISPUTE:
            key = f"ops-dispute:{ref}"
            email = emails.ops_alert(
                environment=environment,
                title="Payment disputed",
                summary="A customer opened a dispute (chargeback). Respond with evidence in the Stripe "
                        "Dashboard before the deadline.",
                details={"dispute": ref, "uid": uid or "unmatched", "amount": details.get("amount"),
                         "currency": details.get("currency"), "reason": details.get("reason"),
                         "charge": details.get("charge"), "stripe_event": event["id"]})
            _queue(key, email, settings().ops_email, "ops_dispute")
        else:
            log.warning("unknown notice kind", kind=kind)
            continue
        queued.append(key)
    return {"queued": queued}


def _queue(key: str, email: emails.Email, to: str, category: str) -> None:
    queue_email(key=key, to=to, subject=email.subject, text=email.text, html=email.html,
                tags={"category": category})


def _recovery_email(name: str | None, details: dict[str, Any]) -> emails.Email:
    billing_url = f"{settings().app_url}/billing"
    if details.get("had_access"):
        return emails.payment_failed(name=name, billing_url=billing_url, amount=_amount(details))
    return emails.first_payment_failed(name=name, billing_url=billing_url, amount=_amount(details))


def _amount(details: dict[str, Any]) -> str | None:
    amount, currency = details.get("amount"), details.get("currency")
    if not isinstance(amount, int) or not currency:
        return None
    # Stripe amounts are in the currency's minor unit; two decimals covers the common currencies.
    return f"{amount / 100:.2f} {str(currency).upper()}"
