"""Account deletion end to end on the emulators and the provider sandbox: user_deleted on the
`users/{uid}` delete event (protobuf DocumentEventData with `old_value`, as Eventarc and the local trigger
bridge send it), then what later events for the deleted account do."""

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cloudevents.http import CloudEvent
from firebase_admin import auth
from google.cloud import firestore
from launchready.handlers import billing_worker as billing
from launchready.handlers import crm_worker as crm
from launchready.handlers import user_deleted as deletion
from launchready.platform.clients import firebase_app
from launchready.platform.config import settings
from launchready.platform.errors import TransientError
from launchready.platform.ledger import Ledger
from launchready.providers import stripe as stripe_api

from tests.conftest import PROJECT
from tests.functions.domain.test_billing_state import checkout_session, stripe_event, subscription
from tests.functions.helpers import Sandbox, deliver_push, function_app
from tools.local.trigger_bridge import DELETED, document_event_data

pytestmark = pytest.mark.runs_as("user_deleted", "billing_worker", "crm_worker", "create_checkout")

PRICE = "price_1ProMonthly"
DATABASE = f"projects/{PROJECT}/databases/(default)"


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox], clean_firestore: str, pubsub_emulator: str,
            auth_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.delenv(deletion.CANCEL_SETTING, raising=False)
    monkeypatch.delenv(deletion.CRM_SETTING, raising=False)
    return provider_sandbox("stripe", "hubspot", STRIPE_API_KEY="sk_test_deletion",
                            HUBSPOT_TOKEN="pat-na1-deletion")


def paid_profile(uid: str, customer: str) -> dict[str, Any]:
    return {"email": f"{uid}@example.com", "display_name": "Ada Lovelace", "locale": "en",
            "marketing_opt_in": False, "created_at": datetime(2026, 1, 5, tzinfo=UTC),
            "billing": {"status": "active", "plan": PRICE, "customer_id": customer, "ever_paid": True,
                        "subscription_id": None},
            "entitlements": {"pro": True}}


def new_customer(db: firestore.Client, uid: str) -> str:
    customer = f"cus_{uuid.uuid4().hex[:14]}"
    db.collection("stripe_customers").document(customer).set({"uid": uid})
    return customer


def start_subscription(customer: str, **params: Any) -> str:
    created = stripe_api.client().v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": PRICE}], **params})  # type: ignore[arg-type]
    return created.id


def delete_event(uid: str, profile: dict[str, Any] | None, *, event_type: str = DELETED,
                 created: datetime = datetime(2026, 3, 1, tzinfo=UTC)) -> CloudEvent:
    """The CloudEvent Eventarc sends when users/{uid} is deleted (old_value = the profile as it was)."""
    name = f"{DATABASE}/documents/users/{uid}"
    moment = created
    data = document_event_data(name, profile, moment, moment, deleted=True) if profile is not None else b""
    return CloudEvent({
        "specversion": "1.0", "id": str(uuid.uuid4()), "type": event_type,
        "source": f"//firestore.googleapis.com/{DATABASE}", "subject": f"documents/users/{uid}",
        "time": moment.isoformat(), "datacontenttype": "application/protobuf",
        "database": "(default)", "namespace": "(default)", "document": f"users/{uid}"}, data=data)


def key_of(uid: str) -> str:
    """The ledger key of the deletion of the profile delete_event describes (created 2026-03-01)."""
    return f"deletion:{uid}:20260301T000000.000000Z"


def deleted_account(db: firestore.Client, **subscription_params: Any) -> tuple[str, str, str, dict[str, Any]]:
    """A paying user with a live subscription whose profile has just been deleted."""
    uid = f"uid-{uuid.uuid4().hex[:10]}"
    customer = new_customer(db, uid)
    sub_id = start_subscription(customer, **subscription_params)
    profile = paid_profile(uid, customer)
    return uid, customer, sub_id, profile


# ---- the flow ----------------------------------------------------------------------------------


def test_deleting_a_paying_account_cancels_tags_the_contact_and_leaves_a_tombstone(
        sandbox: Sandbox, db: firestore.Client) -> None:
    uid, customer, sub_id, profile = deleted_account(db)

    deletion.handle_deleted(delete_event(uid, profile))

    [sub] = sandbox.state()["subscriptions"]
    assert sub["id"] == sub_id and sub["status"] == "canceled"
    delete_calls = [r for r in sandbox.recorded("stripe") if r["method"] == "DELETE"]
    assert [r["path"] for r in delete_calls] == [f"/v1/subscriptions/{sub_id}"]
    [contact] = sandbox.state()["contacts"]
    assert contact["properties"]["email"] == f"{uid}@example.com"
    assert contact["properties"]["launchready_tags"] == "account_deleted;customer;signed_up"
    assert contact["properties"]["lifecyclestage"] == "customer"

    tombstone = db.collection("deleted_users").document(uid).get().to_dict()
    assert tombstone["uid"] == uid and tombstone["stripe_customers"] == [customer]
    assert "email" not in tombstone and isinstance(tombstone["deleted_at"], datetime)
    entry = Ledger(db).get(key_of(uid))
    assert entry["completed"] is True and entry["failed_steps"] == []
    assert all(Ledger(db).step_result(key_of(uid), step) for step in ("tombstone", "claims", "stripe", "crm"))
    # The billing ledger stays.
    assert db.collection("stripe_customers").document(customer).get().exists


def test_the_pro_claim_is_revoked_and_other_claims_are_kept(sandbox: Sandbox, db: firestore.Client) -> None:
    uid, _, _, profile = deleted_account(db)
    auth.create_user(uid=uid, email=f"{uid}@example.com", app=firebase_app())
    auth.set_custom_user_claims(uid, {"pro": True, "role": "admin"}, app=firebase_app())

    deletion.handle_deleted(delete_event(uid, profile))

    assert auth.get_user(uid, app=firebase_app()).custom_claims == {"role": "admin"}
    # Without an Auth user (deleted with the account) there is nothing to revoke.
    other, _, _, other_profile = deleted_account(db)
    deletion.handle_deleted(delete_event(other, other_profile))
    assert Ledger(db).step_result(key_of(other), "claims")["result"]["skipped"] == "auth_user_not_found"


def test_a_redelivered_delete_event_repeats_nothing(sandbox: Sandbox, db: firestore.Client) -> None:
    uid, _, _, profile = deleted_account(db)
    event = delete_event(uid, profile)
    deletion.handle_deleted(event)
    calls = len(sandbox.recorded())

    deletion.handle_deleted(event)
    deletion.handle_deleted(delete_event(uid, profile))  # another delivery of the same delete

    assert len(sandbox.recorded()) == calls


def test_concurrent_deliveries_end_the_subscription_once(sandbox: Sandbox, db: firestore.Client) -> None:
    uid, _, sub_id, profile = deleted_account(db)
    event = delete_event(uid, profile)

    def deliver(_: int) -> str:
        try:
            deletion.handle_deleted(event)
        except TransientError as exc:  # answered 500: the trigger retries the event later
            return type(exc).__name__
        return "ok"

    with ThreadPoolExecutor(max_workers=5) as pool:
        outcomes = list(pool.map(deliver, range(5)))
    while Ledger(db).get(key_of(uid)).get("completed") is not True:  # what the trigger's retries finish
        deliver(0)

    assert set(outcomes) <= {"ok", "StepInProgress"}, outcomes
    deletes = [r for r in sandbox.recorded("stripe") if r["method"] == "DELETE"]
    assert [r["path"] for r in deletes] == [f"/v1/subscriptions/{sub_id}"]
    assert len([r for r in sandbox.recorded("hubspot") if r["status"] == 200]) == 1


def test_a_profile_written_again_and_deleted_again_is_a_new_deletion(sandbox: Sandbox,
                                                                     db: firestore.Client) -> None:
    uid, customer, first_sub, profile = deleted_account(db)
    deletion.handle_deleted(delete_event(uid, profile))
    second_sub = start_subscription(customer)  # the user came back and subscribed again

    deletion.handle_deleted(delete_event(uid, profile, created=datetime(2026, 6, 1, tzinfo=UTC)))

    subs = {sub["id"]: sub["status"] for sub in sandbox.state()["subscriptions"]}
    assert subs == {first_sub: "canceled", second_sub: "canceled"}


def test_a_crash_after_canceling_resumes_at_the_crm_step(sandbox: Sandbox, db: firestore.Client,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    uid, _, _, profile = deleted_account(db)
    event = delete_event(uid, profile)
    with monkeypatch.context() as patched, pytest.raises(RuntimeError):
        patched.setattr(deletion, "update_crm", _raises(RuntimeError("instance died")))
        deletion.handle_deleted(event)
    stripe_calls = len(sandbox.recorded("stripe"))

    deletion.handle_deleted(event)

    assert len(sandbox.recorded("stripe")) == stripe_calls  # not listed or canceled again
    assert len(sandbox.state()["contacts"]) == 1
    assert Ledger(db).get(key_of(uid))["completed"] is True


def _raises(exc: Exception) -> Callable[..., Any]:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc
    return fail


def test_at_period_end_lets_paid_time_and_trials_run_out(sandbox: Sandbox, db: firestore.Client,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deletion.CANCEL_SETTING, "period_end")
    uid, customer, paid_sub, profile = deleted_account(db)
    trial_sub = start_subscription(customer, trial_period_days=14)

    deletion.handle_deleted(delete_event(uid, profile))

    subs = {sub["id"]: sub for sub in sandbox.state()["subscriptions"]}
    for sub_id in (paid_sub, trial_sub):
        assert subs[sub_id]["cancel_at_period_end"] is True and subs[sub_id]["status"] != "canceled"
    updates = [r for r in sandbox.recorded("stripe")
               if r["method"] == "POST" and r["path"] != "/v1/subscriptions"]
    assert sorted(r["body"]["cancel_at_period_end"] for r in updates) == ["true", "true"]
    assert {r["headers"].get("Idempotency-Key") for r in updates} == {
        f"deletion:{uid}:{paid_sub}", f"deletion:{uid}:{trial_sub}"}


def test_erase_deletes_the_contact_with_hubspots_gdpr_delete(sandbox: Sandbox, db: firestore.Client,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deletion.CRM_SETTING, "erase")
    uid, _, _, profile = deleted_account(db)
    crm_message = {"uid": uid, "reason": "signed_up", "source_event_id": f"signup:{uid}",
                   "event_created": None}
    # The contact exists from sign-up.
    db.collection("users").document(uid).set(profile)
    assert _deliver_crm(crm_message).status_code == 200
    db.collection("users").document(uid).delete()

    deletion.handle_deleted(delete_event(uid, profile))

    [erase] = [r for r in sandbox.recorded("hubspot") if r["path"].endswith("/gdpr-delete")]
    assert erase["method"] == "POST" and erase["path"] == "/crm/objects/2026-09/contacts/gdpr-delete"
    assert erase["body"] == {"objectId": f"{uid}@example.com", "idProperty": "email"}
    assert sandbox.state()["contacts"] == []

    # A CRM message queued before the deletion must not bring the erased contact back.
    late = {**crm_message, "reason": "subscription_canceled", "source_event_id": "stripe:evt_late"}
    response = _deliver_crm(late)
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    assert sandbox.state()["contacts"] == []
    assert list(db.collection("sync_failures").stream()) == []


def _deliver_crm(data: dict[str, Any]) -> Any:
    attributes = {"event_id": f"crm:{data['uid']}:{data['source_event_id']}", "source_topic": "crm-sync"}
    return deliver_push(crm.crm_worker, data, attributes, message_id=f"m-{uuid.uuid4().hex[:8]}")


def test_a_subscription_canceled_meanwhile_counts_as_done(sandbox: Sandbox, db: firestore.Client) -> None:
    uid, _, sub_id, _ = deleted_account(db)
    stripe_api.client().v1.subscriptions.cancel(sub_id)

    # Stripe answers a second cancel with 404 and an update of a canceled one with 400.
    assert stripe_api.cancel_subscription(sub_id) == "already_canceled"
    assert stripe_api.cancel_at_period_end(sub_id, idempotency_key=f"test:{sub_id}") == "already_canceled"


def test_without_old_value_the_customers_are_found_by_their_link(sandbox: Sandbox,
                                                                  db: firestore.Client) -> None:
    uid, _, sub_id, _ = deleted_account(db)

    deletion.handle_deleted(delete_event(uid, None))

    assert [s["status"] for s in sandbox.state()["subscriptions"]] == ["canceled"]
    # Without old_value the key cannot name the profile's incarnation.
    assert Ledger(db).step_result(f"deletion:{uid}", "crm")["result"] == {"action": "skipped_no_email"}


def test_a_permanent_provider_failure_is_recorded_and_the_other_steps_still_run(
        sandbox: Sandbox, db: firestore.Client) -> None:
    uid, _, _, profile = deleted_account(db)
    sandbox.fault(provider="hubspot", mode="status", status=400)

    deletion.handle_deleted(delete_event(uid, profile))

    assert [s["status"] for s in sandbox.state()["subscriptions"]] == ["canceled"]
    failure = db.collection("sync_failures").document(f"user_deleted:{key_of(uid)}:crm").get().to_dict()
    assert failure["provider"] == "hubspot" and failure["status"] == 400
    assert Ledger(db).get(key_of(uid))["failed_steps"] == ["crm"]


# ---- later events for the deleted account ------------------------------------------------------


def test_a_stripe_event_after_the_deletion_is_recorded_on_its_first_delivery(
        sandbox: Sandbox, db: firestore.Client, auth_emulator: str) -> None:
    uid, customer, sub_id, profile = deleted_account(db)
    db.collection("users").document(uid).set(profile)
    db.collection("users").document(uid).delete()
    deletion.handle_deleted(delete_event(uid, profile))

    canceled = stripe_event("customer.subscription.deleted",
                            {**subscription("canceled", sub_id=sub_id, customer=customer)}, created=2000)
    attributes = {"event_id": f"stripe:{canceled['id']}", "source_topic": "billing-events"}
    response = deliver_push(billing.billing_worker, canceled, attributes, message_id="m-1", attempt=1)

    assert response.status_code == 200
    assert Ledger(db).get(f"stripe:{canceled['id']}")["billing_outcome"] == "account_deleted"
    assert list(db.collection("dead_letters").stream()) == []
    assert not db.collection("users").document(uid).get().exists


def test_a_profile_that_is_only_slow_to_appear_is_still_retried(sandbox: Sandbox, db: firestore.Client,
                                                                 auth_emulator: str) -> None:
    session = checkout_session(uid="uid-not-written-yet", customer="cus_SlowProfile")
    event = stripe_event("checkout.session.completed", session, created=100)
    attributes = {"event_id": f"stripe:{event['id']}", "source_topic": "billing-events"}

    response = deliver_push(billing.billing_worker, event, attributes, message_id="m-2", attempt=1)

    assert response.status_code == 500  # no tombstone: the profile may still come


# ---- the trigger -------------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", ["google.cloud.firestore.document.v1.created",
                                        "google.cloud.firestore.document.v1.updated"])
def test_events_other_than_a_delete_are_ignored(sandbox: Sandbox, db: firestore.Client,
                                                event_type: str) -> None:
    uid, _, _, profile = deleted_account(db)
    deletion.handle_deleted(delete_event(uid, profile, event_type=event_type))
    assert [s["status"] for s in sandbox.state()["subscriptions"]] == ["active"]
    assert not db.collection("deleted_users").document(uid).get().exists


def test_a_profile_written_again_is_not_deleted(sandbox: Sandbox, db: firestore.Client) -> None:
    uid, _, _, profile = deleted_account(db)
    db.collection("users").document(uid).set(profile)
    deletion.handle_deleted(delete_event(uid, profile))
    assert [s["status"] for s in sandbox.state()["subscriptions"]] == ["active"]


def test_an_unknown_policy_is_a_clear_error_and_nothing_is_done(sandbox: Sandbox, db: firestore.Client,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(deletion.CANCEL_SETTING, "tomorrow")
    uid, _, _, profile = deleted_account(db)
    with pytest.raises(deletion.InvalidSetting, match="ACCOUNT_DELETION_CANCEL"):
        deletion.handle_deleted(delete_event(uid, profile))
    assert [s["status"] for s in sandbox.state()["subscriptions"]] == ["active"]
    assert Ledger(db).get(key_of(uid)) is None


def test_a_binary_mode_http_delivery_is_handled(tmp_path: Path, sandbox: Sandbox,
                                                db: firestore.Client) -> None:
    uid, _, _, profile = deleted_account(db)
    event = delete_event(uid, profile)
    headers = {f"ce-{name}": value for name, value in event.get_attributes().items()
               if name != "datacontenttype"}
    app = function_app(tmp_path, "user_deleted")

    response = app.test_client().post("/", data=event.get_data(), headers=headers,
                                      content_type="application/protobuf")

    assert response.status_code == 200
    assert db.collection("deleted_users").document(uid).get().exists
    assert app.test_client().get("/").get_json() == {"status": "ok", "function": "user_deleted"}


def test_a_deleted_account_cannot_start_a_new_checkout(tmp_path: Path, sandbox: Sandbox, db: firestore.Client,
                                                       user: tuple[str, str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    uid, token = user  # the Auth account still exists; its profile was deleted
    monkeypatch.setenv("STRIPE_PRICE_ID", PRICE)
    settings.cache_clear()
    deletion.handle_deleted(delete_event(uid, {"email": f"{uid}@example.com"}))
    calls = len(sandbox.recorded("stripe"))
    app = function_app(tmp_path, "create_checkout")

    response = app.test_client().post("/", json={"client_request_id": str(uuid.uuid4())},
                                      headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403 and response.get_json()["error"]["code"] == "account_deleted"
    assert len(sandbox.recorded("stripe")) == calls
    db.collection("users").document(uid).set({"email": f"{uid}@example.com"})  # signed up again
    again = app.test_client().post("/", json={"client_request_id": str(uuid.uuid4())},
                                   headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 200
