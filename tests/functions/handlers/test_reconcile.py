"""reconcile against the Firestore, Pub/Sub and Auth emulators and the provider sandbox's Stripe: drift
planted on our side and changes made on Stripe's side without an event are both healed, each repair is
recorded, and a second run finds nothing and changes nothing."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import flask
import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore, pubsub_v1
from launchready.handlers import reconcile as reconciliation
from launchready.platform.clients import firebase_app
from launchready.providers import stripe as stripe_api

from tests.functions.helpers import Sandbox, Subscription, decoded, ensure_topic

pytestmark = pytest.mark.runs_as("reconcile")

PRICE = "price_1ProMonthly"
OTHER_CLAIMS = {"role": "admin"}


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox], clean_firestore: str, pubsub_emulator: str,
            auth_emulator: str) -> Sandbox:
    publisher = pubsub_v1.PublisherClient()
    for topic in ("crm-sync", "notifications"):
        ensure_topic(publisher, topic)
    return provider_sandbox("stripe", STRIPE_API_KEY="sk_test_reconcile")


def call() -> flask.Response:
    headers = {"X-Correlation-Id": "rec-1"}
    with flask.Flask(__name__).test_request_context("/", method="POST", headers=headers):
        return reconciliation.reconcile(flask.request)


def subscriber(db: firestore.Client, *, pro: bool, status: str, period_end: int | None = None,
               claim: bool | None = None) -> tuple[str, str]:
    """A user linked to a Stripe customer with one subscription, and the profile and claim our side
    holds for them (which may differ from Stripe: that is the drift)."""
    uid = f"uid-{uuid.uuid4().hex[:10]}"
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    subscription = stripe_api.client().v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": PRICE}]})  # type: ignore[arg-type]
    db.collection("stripe_customers").document(customer).set({"uid": uid})
    auth.create_user(uid=uid, email=f"{uid}@example.com", app=firebase_app())
    claims = {**OTHER_CLAIMS, **({"pro": True} if (pro if claim is None else claim) else {})}
    auth.set_custom_user_claims(uid, claims, app=firebase_app())
    db.collection("users").document(uid).set({
        "email": f"{uid}@example.com", "created_at": datetime(2026, 1, 5, tzinfo=UTC),
        "billing": {"status": status, "customer_id": customer, "subscription_id": subscription.id,
                    "current_period_end": period_end if period_end is not None else _period_end(subscription),
                    "ever_paid": True},
        "entitlements": {"pro": pro}})
    return uid, subscription.id


def _period_end(subscription: Any) -> int:
    return min(item["current_period_end"] for item in subscription.to_dict()["items"]["data"])


def stripe_side(sandbox: Sandbox, subscription_id: str, action: str) -> None:
    """Change the subscription in Stripe without delivering any event (a missed webhook)."""
    response = requests.post(f"{sandbox.url}/_sandbox/stripe/subscriptions/{subscription_id}/{action}",
                             json={"deliver": False}, timeout=5)
    assert response.status_code == 200, response.text


def profile(db: firestore.Client, uid: str) -> dict[str, Any]:
    return db.collection("users").document(uid).get().to_dict() or {}


def updated(db: firestore.Client, uid: str) -> Any:
    return db.collection("users").document(uid).get().update_time


def claims(uid: str) -> dict[str, Any]:
    return dict(auth.get_user(uid, app=firebase_app()).custom_claims or {})


def repairs(db: firestore.Client) -> dict[tuple[str, str], dict[str, Any]]:
    stored = (document.to_dict() for document in db.collection("reconciliation_repairs").stream())
    return {(record["uid"], record["field"]): record for record in stored}


def test_drift_on_both_sides_is_healed_recorded_and_a_second_run_changes_nothing(
        sandbox: Sandbox, db: firestore.Client, crm_sync: Subscription, outbox: Subscription) -> None:
    # Our side changed behind Stripe's back: access revoked, status, period end and claim wrong.
    behind, _ = subscriber(db, pro=False, status="canceled", period_end=1_000)
    # Stripe's side changed with no event delivered: canceled, and paused.
    canceled, canceled_sub = subscriber(db, pro=True, status="active")
    paused, paused_sub = subscriber(db, pro=True, status="active")
    stripe_side(sandbox, canceled_sub, "cancel")
    stripe_side(sandbox, paused_sub, "pause")
    # A user who is right on every count.
    in_step, _ = subscriber(db, pro=True, status="active")

    first = call()

    assert first.status_code == 200
    report = first.get_json()
    assert report["customers"] == 4 and report["repairs"] == 10 and report["alerted"] is False
    healed = {uid: profile(db, uid) for uid in (behind, canceled, paused)}
    assert healed[behind]["entitlements"]["pro"] is True and healed[behind]["billing"]["status"] == "active"
    assert healed[behind]["billing"]["current_period_end"] > 1_000
    assert healed[canceled]["entitlements"]["pro"] is False
    assert healed[canceled]["billing"]["status"] == "canceled"
    assert healed[paused]["entitlements"]["pro"] is False and healed[paused]["billing"]["status"] == "paused"
    assert claims(behind) == {**OTHER_CLAIMS, "pro": True}
    assert claims(canceled) == OTHER_CLAIMS and claims(paused) == OTHER_CLAIMS
    recorded = repairs(db)
    access = ("entitlements.pro", "billing.status", "claims.pro")
    assert set(recorded) == {(behind, "billing.current_period_end"), *((behind, f) for f in access),
                             *((canceled, f) for f in access), *((paused, f) for f in access)}
    assert recorded[(behind, "billing.status")]["before"] == "canceled"
    assert recorded[(behind, "billing.status")]["after"] == "active"
    assert recorded[(behind, "billing.current_period_end")]["before"] == 1_000
    assert (recorded[(canceled, "claims.pro")]["before"], recorded[(canceled, "claims.pro")]["after"]) == (
        True, False)
    assert recorded[(paused, "billing.status")]["reference"] == paused_sub
    assert not [key for key in recorded if key[0] == in_step]
    synced = [decoded(m) for m in crm_sync.drain()]
    assert sorted(m["uid"] for m in synced) == sorted([behind, canceled, paused])
    assert {m["reason"] for m in synced} == {"reconciled"}  # the CRM follows through crm_worker

    before = {uid: updated(db, uid) for uid in (behind, canceled, paused)}
    second = call().get_json()
    assert second["repairs"] == 0 and second["customers"] == 4
    assert len(repairs(db)) == 10 and crm_sync.drain() == [] and outbox.drain() == []
    assert {uid: updated(db, uid) for uid in before} == before


def test_more_repairs_than_the_threshold_alert_ops(sandbox: Sandbox, db: firestore.Client,
                                                  outbox: Subscription,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(reconciliation.ALERT_SETTING, "0")
    subscriber(db, pro=False, status="active")

    report = call().get_json()

    assert report["repairs"] == 2 and report["alerted"] is True  # entitlements.pro and the claim
    [alert] = [decoded(m) for m in outbox.drain()]
    assert alert["key"] == f"reconcile-alert:{report['run_id']}" and "2" in alert["text"]
    run = db.collection("reconciliation_runs").document(report["run_id"]).get().to_dict()
    assert run["repairs"] == 2 and run["alerted"] is True


def test_a_stripe_429_fails_the_run_for_the_scheduler_to_retry(sandbox: Sandbox,
                                                               db: firestore.Client) -> None:
    uid, _ = subscriber(db, pro=False, status="active")
    sandbox.fault(mode="status", status=429)

    assert call().status_code == 500
    assert db.collection("users").document(uid).get().to_dict()["entitlements"]["pro"] is False
