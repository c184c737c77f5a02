"""`reconcile`: the scheduled comparison of every linked Stripe customer's current subscriptions with what
the stack holds for the user (`entitlements.pro`, `billing.status` and `billing.current_period_end`, the
`pro` claim), called by Cloud Scheduler with an OIDC token. Each difference is healed and recorded in
`reconciliation_repairs` (what differed, before, after); a run that finds nothing changes no user.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from firebase_admin import auth

from launchready.domain import emails
from launchready.domain.billing_state import SUBSCRIPTION_STATUSES
from launchready.domain.entitlements import Entitlements, entitled, stripe_state
from launchready.platform import log
from launchready.platform.claims import PRO_CLAIM, set_pro_claim
from launchready.platform.clients import db, firebase_app
from launchready.platform.config import MissingSetting, settings
from launchready.platform.pubsub import publish
from launchready.platform.web import endpoint, json_response
from launchready.providers import stripe
from launchready.providers.resend_queue import queue_email

FUNCTION = "reconcile"
RUNS = "reconciliation_runs"
REPAIRS = "reconciliation_repairs"
USERS = "users"
STRIPE_CUSTOMERS = "stripe_customers"
CRM_TOPIC = "crm-sync"
# Catalog settings (components/data/catalog.json, this function's `env`).
GRACE_SETTING = "PAST_DUE_GRACE_DAYS"
ALERT_SETTING = "RECONCILE_ALERT_REPAIRS"


def now() -> datetime:
    return datetime.now(UTC)


def _setting(name: str) -> int:
    value = os.environ.get(name, "").strip()
    if not value.isdigit():
        raise MissingSetting(f"{name} must be a whole number (a catalog setting of {FUNCTION})")
    return int(value)


@endpoint(FUNCTION, methods=("POST",))
def reconcile(request: flask.Request) -> flask.Response:
    return json_response(run(now()))


def run(started: datetime) -> dict[str, Any]:
    """One pass over every customer in `stripe_customers`; returns the run record. A Stripe outage or 429
    raises TransientError (the endpoint answers 500 and Cloud Scheduler retries the run; a repeat heals
    only what is still different)."""
    run_id = started.strftime("%Y%m%dT%H%M%S%fZ")
    grace, alert_above = timedelta(days=_setting(GRACE_SETTING)), _setting(ALERT_SETTING)
    live = stripe.live_key()
    customers, repairs = 0, 0
    for link in db().collection(STRIPE_CUSTOMERS).stream():
        uid = (link.to_dict() or {}).get("uid")
        if not isinstance(uid, str) or not uid:
            continue
        customers += 1
        # One list call per customer (100 subscriptions a page), so a run stays under Stripe's read
        # limit (https://docs.stripe.com/rate-limits) as long as the calls are sequential.
        states = [stripe_state(subscription.to_dict(), confirmed_at=started, past_due_grace=grace)
                  for subscription in stripe.subscriptions(link.id) if bool(subscription.livemode) == live]
        repairs += heal(uid, link.id, entitled(states), run_id)
    record = {"run_id": run_id, "started_at": started, "finished_at": now(), "customers": customers,
              "repairs": repairs, "alerted": repairs > alert_above}
    db().collection(RUNS).document(run_id).set(record)
    log.info("reconciliation finished", customers=customers, repairs=repairs)
    if record["alerted"]:
        _alert(run_id, repairs, alert_above)
    return {**record, "started_at": started.isoformat(), "finished_at": record["finished_at"].isoformat()}


def _epoch(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None


def differences(user: dict[str, Any], found: Entitlements) -> dict[str, tuple[Any, Any]]:
    """field path -> (what the stack holds, what the provider's state gives). Status and period end are
    compared only when Stripe has a subscription for the customer (a profile without one keeps the
    billing its events gave it); access is always compared."""
    billing = user.get("billing") or {}
    held_pro = bool((user.get("entitlements") or {}).get("pro"))
    changed: dict[str, tuple[Any, Any]] = {}
    if held_pro != found.pro:
        changed["entitlements.pro"] = (held_pro, found.pro)
    if found.source == "stripe":
        status = SUBSCRIPTION_STATUSES.get(found.status)
        if status is not None and billing.get("status") != status:
            changed["billing.status"] = (billing.get("status"), status)
        period_end = _epoch(found.period_end)
        if period_end is not None and billing.get("current_period_end") != period_end:
            changed["billing.current_period_end"] = (billing.get("current_period_end"), period_end)
        if billing.get("subscription_id") != found.reference:
            changed["billing.subscription_id"] = (billing.get("subscription_id"), found.reference)
    return changed


def heal(uid: str, customer: str, found: Entitlements, run_id: str) -> int:
    """Bring the profile, the claim and (through crm-sync) the CRM contact to the provider's state; returns
    the number of repairs recorded. A deleted profile is left alone (user_deleted ended the account)."""
    user_ref = db().collection(USERS).document(uid)
    snapshot = user_ref.get()
    if not snapshot.exists:
        return 0
    changed = differences(snapshot.to_dict() or {}, found)
    if changed:
        user_ref.update({path: after for path, (_, after) in changed.items()})
        # crm_worker derives the whole contact from the profile: the same path as an event's sync.
        payload = {"uid": uid, "reason": "reconciled", "source_event_id": f"reconcile:{run_id}",
                   "event_created": int(now().timestamp())}
        publish(CRM_TOPIC, payload, event_id=f"crm:{uid}:reconcile:{run_id}")
    claim = _held_claim(uid)
    if claim is not None and claim != found.pro:
        set_pro_claim(uid, found.pro)
        changed["claims.pro"] = (claim, found.pro)
    for path, (before, after) in changed.items():
        db().collection(REPAIRS).document(f"{run_id}:{uid}:{path}").set({
            "run_id": run_id, "uid": uid, "customer": customer, "field": path, "before": before,
            "after": after, "source": found.source, "reference": found.reference, "repaired_at": now()})
        log.warning("drift repaired", uid=uid, field=path, before=before, after=after)
    return len(changed)


def _held_claim(uid: str) -> bool | None:
    """The user's `pro` claim as a bool, None without an Auth user (nothing to heal)."""
    try:
        user = auth.get_user(uid, app=firebase_app())
    except auth.UserNotFoundError:
        return None
    return bool((user.custom_claims or {}).get(PRO_CLAIM))


def _alert(run_id: str, repairs: int, alert_above: int) -> None:
    log.error("reconciliation repaired more than the alert threshold", repairs=repairs, threshold=alert_above)
    email = emails.ops_alert(
        environment=settings().environment, title="Billing drift repaired",
        summary=f"The reconciliation repaired {repairs} differences between Stripe and the app "
                f"(alert above {alert_above}). Check for a disabled webhook endpoint or a failing worker.",
        details={"run": run_id, "repairs": repairs})
    queue_email(key=f"reconcile-alert:{run_id}", to=settings().ops_email, subject=email.subject,
                text=email.text, html=email.html, tags={"category": "ops_reconcile"})
