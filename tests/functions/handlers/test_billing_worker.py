"""billing_worker against the Firestore, Pub/Sub and Auth emulators.

Each test delivers Stripe events in Pub/Sub push envelopes (as the push subscription on
billing-events would), then checks users/{uid}, the custom claims in the Auth emulator, the ledger,
and what was published to crm-sync and notifications (pull subscriptions on the Pub/Sub emulator).
"""

import json
import time
import uuid
from typing import Any

import flask
import pytest
from firebase_admin import auth
from google.cloud import firestore, pubsub_v1
from launchready.domain import crm
from launchready.handlers import billing_worker as billing
from launchready.handlers import stripe_webhook as webhook
from launchready.platform.clients import db, firebase_app
from launchready.platform.ledger import Ledger
from launchready.records.tombstones import write_tombstone

from tests.functions.domain.test_billing_state import (
    CUSTOMER,
    SUBSCRIPTION,
    charge,
    checkout_session,
    dispute,
    invoice,
    payment_intent,
    stripe_event,
    subscription,
)
from tests.functions.helpers import (
    Subscription,
    decoded,
    deliver_push,
    ensure_topic,
    stripe_signature,
)

pytestmark = pytest.mark.runs_as("billing_worker", "stripe_webhook", "crm_worker")

OTHER_CLAIMS = {"role": "admin", "beta_features": ["export"]}


def deliver(event: dict[str, Any], *, attempt: int = 1, message_id: str | None = None) -> flask.Response:
    """Deliver a Stripe event as the webhook publishes it to billing-events."""
    attributes = {"event_id": f"stripe:{event['id']}", "correlation_id": f"corr-{event['id']}",
                  "source_topic": "billing-events", "event_type": event["type"]}
    message_id = message_id or f"m-{event['id']}"
    return deliver_push(billing.billing_worker, event, attributes, message_id=message_id, attempt=attempt)


# ---- fixtures ----------------------------------------------------------------------------------


@pytest.fixture
def emulators(clean_firestore: str, pubsub_emulator: str, auth_emulator: str) -> None:
    publisher = pubsub_v1.PublisherClient()
    for topic in ("crm-sync", "notifications"):
        ensure_topic(publisher, topic)


@pytest.fixture
def uid(emulators: None) -> str:
    """A signed-up user: an Auth account with unrelated custom claims, and the app-written profile."""
    uid = f"uid_{uuid.uuid4().hex[:12]}"
    auth.create_user(uid=uid, email=f"{uid}@example.com", display_name="Ada Lovelace", app=firebase_app())
    auth.set_custom_user_claims(uid, OTHER_CLAIMS, app=firebase_app())
    db().collection("users").document(uid).set({
        "email": f"{uid}@example.com", "display_name": "Ada Lovelace", "locale": "en",
        "marketing_opt_in": False, "created_at": firestore.SERVER_TIMESTAMP})
    return uid


def user_doc(uid: str) -> dict[str, Any]:
    return db().collection("users").document(uid).get().to_dict() or {}


def claims(uid: str) -> dict[str, Any]:
    return dict(auth.get_user(uid, app=firebase_app()).custom_claims or {})


def ledger_entry(event: dict[str, Any]) -> dict[str, Any]:
    return Ledger().get(f"stripe:{event['id']}") or {}


def done_steps(event: dict[str, Any]) -> set[str]:
    key = f"stripe:{event['id']}"
    return {step for step in ("apply", "claims", "crm", "notify") if Ledger().step_result(key, step)}


def emails(messages: list[pubsub_v1.types.PubsubMessage]) -> list[dict[str, Any]]:
    return [decoded(message) for message in messages]


def subscribed(uid: str, *, created: int = 1000) -> dict[str, Any]:
    """A paid checkout for `uid` (links the Stripe customer to the user)."""
    event = stripe_event("checkout.session.completed", checkout_session(uid=uid), created=created)
    assert deliver(event).status_code == 200
    return event


# ---- paid, canceled ----------------------------------------------------------------------------


def test_paid_checkout_unlocks_pro_and_keeps_other_claims(uid: str, crm_sync: Subscription,
                                                          outbox: Subscription) -> None:
    event = stripe_event("checkout.session.completed", checkout_session(uid=uid), created=1000)
    response = deliver(event)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}

    profile = user_doc(uid)
    assert profile["entitlements"] == {"pro": True}
    assert profile["billing"]["status"] == "active" and profile["billing"]["ever_paid"] is True
    assert profile["billing"]["customer_id"] == CUSTOMER
    assert profile["billing"]["applied"] == {"cs_test_a1B2c3": 1000, SUBSCRIPTION: 1000}
    assert profile["email"] == f"{uid}@example.com"  # the app's fields are untouched
    assert claims(uid) == {**OTHER_CLAIMS, "pro": True}
    assert db().collection("stripe_customers").document(CUSTOMER).get().to_dict()["uid"] == uid

    [message] = crm_sync.drain()
    assert decoded(message) == {"uid": uid, "reason": "checkout_completed",
                                "source_event_id": f"stripe:{event['id']}", "event_created": 1000}
    assert message.attributes["event_id"] == f"crm:{uid}:stripe:{event['id']}"
    assert message.attributes["correlation_id"] == f"corr-{event['id']}"
    assert outbox.drain() == []
    assert ledger_entry(event)["billing_outcome"] == "applied"
    assert done_steps(event) == {"apply", "claims", "crm"}


def test_cancellation_revokes_pro_and_keeps_other_claims(uid: str, crm_sync: Subscription) -> None:
    subscribed(uid)
    assert claims(uid)["pro"] is True
    canceled = stripe_event("customer.subscription.deleted", subscription("canceled"), created=2000)
    assert deliver(canceled).status_code == 200

    assert claims(uid) == OTHER_CLAIMS
    profile = user_doc(uid)
    assert profile["entitlements"]["pro"] is False and profile["billing"]["status"] == "canceled"
    reasons = [decoded(message)["reason"] for message in crm_sync.drain()]
    assert reasons == ["checkout_completed", "subscription_canceled"]


def test_free_trial_grants_the_plan_for_the_trial_but_is_not_a_payment(uid: str,
                                                                       crm_sync: Subscription) -> None:
    trial = stripe_event("customer.subscription.created", subscription("trialing"), created=1000)
    session = {**checkout_session(uid=uid, payment_status="no_payment_required"), "amount_subtotal": 0,
               "amount_total": 0}
    completed = stripe_event("checkout.session.completed", session, created=1000)
    assert deliver(completed).status_code == 200
    assert deliver(trial).status_code == 200

    profile = user_doc(uid)
    assert profile["billing"]["status"] == "trialing" and profile["billing"]["ever_paid"] is False
    assert profile["billing"]["plan"] == "price_1ProMonthly"
    assert profile["entitlements"]["pro"] is True and claims(uid)["pro"] is True
    contact = crm.contact_state(profile)  # what crm_worker sends for each crm-sync message below
    assert contact is not None and contact.lifecycle_stage == "lead" and "customer" not in contact.tags
    assert [decoded(m)["reason"] for m in crm_sync.drain()] == ["checkout_completed", "subscription_updated"]


def test_stale_update_is_dropped_without_side_effects(uid: str, crm_sync: Subscription) -> None:
    subscribed(uid, created=1)
    newer = stripe_event("customer.subscription.updated", subscription("active"), created=3)
    older = stripe_event("customer.subscription.updated", subscription("past_due"), created=2)
    assert deliver(newer).status_code == 200
    assert deliver(older).status_code == 200

    assert user_doc(uid)["billing"]["status"] == "active"
    assert ledger_entry(older)["billing_outcome"] == "stale" and done_steps(older) == {"apply"}
    assert [decoded(m)["source_event_id"] for m in crm_sync.drain()][-1] == f"stripe:{newer['id']}"


# ---- Stripe mode: a live event never changes a test stack, nor the other way round -----------------


@pytest.mark.parametrize(("key", "event_livemode"), [("sk_test_" + "k" * 24, True),
                                                      ("rk_live_" + "k" * 24, False)])
def test_an_event_in_the_other_mode_than_the_key_is_recorded_never_applied(
        uid: str, crm_sync: Subscription, monkeypatch: pytest.MonkeyPatch, key: str,
        event_livemode: bool) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", key)
    event = {**stripe_event("checkout.session.completed", {**checkout_session(uid=uid),
                                                            "livemode": event_livemode}, created=1000),
             "livemode": event_livemode}
    assert deliver(event).status_code == 200  # acknowledged: a redelivery cannot change the mode

    assert "billing" not in user_doc(uid) and claims(uid) == OTHER_CLAIMS
    assert not db().collection("stripe_customers").document(CUSTOMER).get().exists
    assert crm_sync.drain() == []
    assert ledger_entry(event)["billing_outcome"] == "mode_mismatch" and done_steps(event) == set()
    record = db().collection("unmatched_events").document(f"stripe:{event['id']}").get().to_dict()
    assert record["reason"] == "mode_mismatch" and record["customer"] == CUSTOMER  # the ops console lists it


def test_an_event_in_the_key_s_mode_is_applied(uid: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_" + "k" * 24)
    event = {**stripe_event("checkout.session.completed", {**checkout_session(uid=uid), "livemode": True},
                            created=1000), "livemode": True}
    assert deliver(event).status_code == 200
    assert user_doc(uid)["entitlements"] == {"pro": True}


# ---- custom claims Firebase refuses --------------------------------------------------------------


def test_claims_with_no_room_left_are_a_recorded_failure_and_billing_and_crm_still_run(
        uid: str, crm_sync: Subscription) -> None:
    """An admin tool filled the claims (Firebase caps their JSON at 1000 bytes, firebase-admin checks it
    before calling): the pro claim cannot be added, which no retry changes."""
    crowded = {**OTHER_CLAIMS, "notes": "x" * (1000 - len('{"role": "admin", "beta_features": ["export"], '
                                                         '"notes": ""}'))}
    auth.set_custom_user_claims(uid, crowded, app=firebase_app())
    event = stripe_event("checkout.session.completed", checkout_session(uid=uid), created=1000)

    response = deliver(event, attempt=1)

    assert response.status_code == 200  # acknowledged: never retried into a dead letter
    assert claims(uid) == crowded  # the other claims are kept as they were
    assert user_doc(uid)["entitlements"] == {"pro": True} and user_doc(uid)["billing"]["status"] == "active"
    assert [decoded(m)["reason"] for m in crm_sync.drain()] == ["checkout_completed"]
    assert done_steps(event) == {"apply", "crm"}
    failure = db().collection("sync_failures").document(f"billing_worker:stripe:{event['id']}").get()
    assert failure.to_dict()["code"] == "claims_rejected" and "1000" in failure.to_dict()["detail"]
    assert list(db().collection("dead_letters").stream()) == []


# ---- matching ----------------------------------------------------------------------------------


def test_unknown_customer_is_acknowledged_and_recorded_unmatched(emulators: None,
                                                                 crm_sync: Subscription) -> None:
    event = stripe_event("invoice.paid", {**invoice(customer="cus_NobodyKnows"), "parent": None}, created=50)
    response = deliver(event)

    assert response.status_code == 200
    record = db().collection("unmatched_events").document(f"stripe:{event['id']}").get().to_dict()
    assert record["event_type"] == "invoice.paid" and record["customer"] == "cus_NobodyKnows"
    assert record["reason"] == "unknown_customer"
    assert ledger_entry(event)["billing_outcome"] == "unmatched"
    assert crm_sync.drain() == []


def test_uid_from_subscription_metadata_links_the_customer(uid: str) -> None:
    renewal = invoice("in_1Meta", customer="cus_MetaOnly")
    renewal["parent"]["subscription_details"]["metadata"] = {"uid": uid}
    assert deliver(stripe_event("invoice.paid", renewal, created=10)).status_code == 200

    assert user_doc(uid)["billing"]["status"] == "active"
    assert db().collection("stripe_customers").document("cus_MetaOnly").get().to_dict()["uid"] == uid
    later = stripe_event("customer.subscription.updated", subscription("active", customer="cus_MetaOnly"),
                         created=20)
    assert deliver(later).status_code == 200
    assert ledger_entry(later)["matched_by"] == "customer"


def test_missing_profile_is_retried_and_writes_nothing(emulators: None) -> None:
    session = checkout_session(uid="uid_not_signed_up_yet")
    event = stripe_event("checkout.session.completed", session, created=5)
    response = deliver(event)
    assert response.status_code == 500
    assert not db().collection("users").document("uid_not_signed_up_yet").get().exists


def test_an_event_for_a_deleted_account_is_recorded_on_the_first_delivery(
        uid: str, crm_sync: Subscription, outbox: Subscription) -> None:
    subscribed(uid, created=100)
    crm_sync.drain()
    db().collection("users").document(uid).delete()
    write_tombstone(uid, stripe_customers=[CUSTOMER])

    canceled = stripe_event("customer.subscription.deleted", subscription("canceled"), created=200)
    response = deliver(canceled)

    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    entry = ledger_entry(canceled)
    assert entry["billing_outcome"] == "account_deleted" and entry["uid"] == uid
    assert done_steps(canceled) == {"apply"}
    assert not db().collection("users").document(uid).get().exists  # nothing recreated
    assert list(db().collection("dead_letters").stream()) == []
    assert list(db().collection("sync_failures").stream()) == []
    assert crm_sync.drain() == [] and outbox.drain() == []


def test_a_dispute_for_a_deleted_account_still_alerts_ops(uid: str, outbox: Subscription) -> None:
    one_off = payment_intent("pi_1Gone", charge="ch_1Gone", customer="cus_Gone")
    one_off["metadata"] = {"uid": uid}
    assert deliver(stripe_event("payment_intent.succeeded", one_off, created=100)).status_code == 200
    db().collection("users").document(uid).delete()
    write_tombstone(uid)

    event = stripe_event("charge.dispute.created", dispute("du_1Gone", charge_id="ch_1Gone",
                                                           payment_intent_id="pi_1Gone"), created=200)
    assert deliver(event).status_code == 200
    assert ledger_entry(event)["billing_outcome"] == "account_deleted"
    [alert] = emails(outbox.drain())
    assert alert["key"] == "ops-dispute:du_1Gone" and uid in alert["text"]


def test_malformed_event_is_recorded_as_a_permanent_failure(emulators: None) -> None:
    attributes = {"event_id": "stripe:evt_broken", "source_topic": "billing-events"}
    response = deliver_push(billing.billing_worker, {"id": "evt_broken", "type": "invoice.paid"}, attributes,
                            message_id="m-broken")
    assert response.status_code == 200 and response.get_json()["status"] == "failed_permanently"
    failure = db().collection("sync_failures").document("billing_worker:stripe:evt_broken").get().to_dict()
    assert failure["code"] == "invalid_event"


# ---- failed payments ---------------------------------------------------------------------------


def test_failed_first_payment_grants_nothing_and_emails_once_even_if_delivered_twice(
        uid: str, crm_sync: Subscription, outbox: Subscription) -> None:
    first = invoice("in_1FirstTry", status="open")
    first["parent"]["subscription_details"]["metadata"] = {"uid": uid}
    event = stripe_event("invoice.payment_failed", first, created=100)

    assert deliver(event).status_code == 200
    assert deliver(event).status_code == 200  # Pub/Sub redelivery of the same message

    profile = user_doc(uid)
    assert profile["billing"]["status"] == "payment_failed" and profile["entitlements"]["pro"] is False
    assert profile["billing"]["failed_payment_count"] == 1
    assert claims(uid) == OTHER_CLAIMS
    [email] = emails(outbox.drain())
    assert email["key"] == f"payment-failed:{uid}:in_1FirstTry"
    assert email["to"] == [f"{uid}@example.com"]
    assert "not active yet" in email["text"] and "19.00 EUR" in email["text"]
    assert [decoded(m)["reason"] for m in crm_sync.drain()] == ["payment_failed"]


def test_repeated_failure_alerts_ops_once(uid: str, outbox: Subscription) -> None:
    subscribed(uid, created=100)
    renewal = invoice("in_2Renewal", status="open")
    for attempt, created in enumerate((200, 300, 400), start=1):
        renewal["attempt_count"] = attempt
        assert deliver(stripe_event("invoice.payment_failed", renewal, created=created)).status_code == 200

    profile = user_doc(uid)
    assert profile["billing"]["status"] == "past_due" and profile["billing"]["failed_payment_count"] == 3
    assert profile["entitlements"]["pro"] is True  # Stripe is still retrying: access stays for now
    queued = emails(outbox.drain())
    assert sorted(email["key"] for email in queued) == sorted(
        [f"payment-failed:{uid}:in_2Renewal", f"ops-payment-failures:{uid}:200"])
    ops = next(email for email in queued if email["key"].startswith("ops-"))
    assert ops["to"] == ["ops@example.com"] and "Repeated payment failure" in ops["subject"]
    recovery = next(email for email in queued if email["key"].startswith("payment-failed:"))
    assert "access stays on" in recovery["text"]


def test_a_crash_after_the_apply_transaction_does_not_apply_twice(uid: str, outbox: Subscription) -> None:
    subscribed(uid, created=100)
    event = stripe_event("invoice.payment_failed", invoice("in_2Renewal", status="open"), created=200)
    # The first delivery committed the transaction and then died before recording the step.
    billing.apply_event(uid, event, f"stripe:{event['id']}")
    assert user_doc(uid)["billing"]["failed_payment_count"] == 1

    assert deliver(event).status_code == 200
    assert user_doc(uid)["billing"]["failed_payment_count"] == 1
    assert [email["key"] for email in emails(outbox.drain())] == [f"payment-failed:{uid}:in_2Renewal"]


# ---- refunds and disputes ----------------------------------------------------------------------


def test_dispute_is_matched_through_the_payment_and_alerts_ops(uid: str, outbox: Subscription,
                                                               crm_sync: Subscription) -> None:
    one_off = payment_intent("pi_1Lifetime", charge="ch_1Lifetime", customer="cus_OneOff")
    one_off["metadata"] = {"uid": uid}
    assert deliver(stripe_event("payment_intent.succeeded", one_off, created=100)).status_code == 200
    assert claims(uid)["pro"] is True

    event = stripe_event("charge.dispute.created", dispute("du_1Fraud", charge_id="ch_1Lifetime",
                                                           payment_intent_id="pi_1Lifetime"), created=200)
    assert deliver(event).status_code == 200

    assert user_doc(uid)["billing"]["disputed"] is True
    assert ledger_entry(event)["matched_by"] == "payment"
    [alert] = emails(outbox.drain())
    assert alert["key"] == "ops-dispute:du_1Fraud" and alert["to"] == ["ops@example.com"]
    assert "fraudulent" in alert["text"]
    assert [decoded(m)["reason"] for m in crm_sync.drain()] == ["payment_succeeded", "disputed"]


def test_unmatched_dispute_still_alerts_ops(emulators: None, outbox: Subscription) -> None:
    event = stripe_event("charge.dispute.created", dispute("du_2Orphan", charge_id="ch_unknown",
                                                           payment_intent_id="pi_unknown"), created=5)
    assert deliver(event).status_code == 200
    assert ledger_entry(event)["billing_outcome"] == "unmatched"
    [alert] = emails(outbox.drain())
    assert alert["key"] == "ops-dispute:du_2Orphan" and "unmatched" in alert["text"]


def test_full_refund_of_the_one_off_payment_revokes_pro(uid: str) -> None:
    one_off = payment_intent("pi_1Lifetime", charge="ch_1Lifetime", customer="cus_Refund")
    one_off["metadata"] = {"uid": uid}
    assert deliver(stripe_event("payment_intent.succeeded", one_off, created=100)).status_code == 200
    refund = charge("ch_1Lifetime", payment_intent_id="pi_1Lifetime", customer="cus_Refund")
    assert deliver(stripe_event("charge.refunded", refund, created=200)).status_code == 200

    profile = user_doc(uid)
    assert profile["billing"]["refunded"] is True and profile["entitlements"]["pro"] is False
    assert claims(uid) == OTHER_CLAIMS


# ---- from the webhook --------------------------------------------------------------------------


def test_a_signed_webhook_delivery_reaches_the_user_through_billing_events(
        uid: str, billing_events: Subscription, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "whsec_billing_flow_test_secret"
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", secret)
    session = checkout_session(uid=uid)
    event = stripe_event("checkout.session.completed", session, created=int(time.time()))
    payload = json.dumps(event)
    headers = {"Stripe-Signature": stripe_signature(payload, secret)}
    with flask.Flask(__name__).test_request_context("/", method="POST", data=payload, headers=headers,
                                                    content_type="application/json"):
        assert webhook.stripe_webhook(flask.request).status_code == 200

    [published] = billing_events.drain()
    assert decoded(published) == event
    assert deliver_push(billing.billing_worker, decoded(published), dict(published.attributes),
                        message_id=published.message_id).status_code == 200

    assert user_doc(uid)["entitlements"]["pro"] is True and claims(uid)["pro"] is True
    entry = ledger_entry(event)
    assert entry["billing_outcome"] == "applied" and entry["source"] == "stripe_webhook"
    assert done_steps(event) == {"apply", "claims", "crm"}
