"""Account deletion end to end on the local stack: the server deletes `users/{uid}`, the trigger bridge
delivers the Firestore delete event to `user_deleted`, which ends the Stripe subscription in the sandbox
and tags the CRM contact; a Stripe event that arrives afterwards is acknowledged and recorded as
concerning a deleted account on its first delivery."""

from __future__ import annotations

import time

import requests
import stripe

from tests.e2e.test_acceptance import PRICE_ID, STEP_TIMEOUT, new_id, signed_up, wait_for_outcome
from tools.journey.local_stack import LocalStack
from tools.journey.stripe_events import checkout_session_completed, stripe_event
from tools.journey.target import contact_tags, wait_until


def test_deleting_a_paying_account_ends_it_and_later_events_are_recorded(local_stack: LocalStack) -> None:
    user = signed_up(local_stack)
    customer = new_id("cus_")
    stripe_client = stripe.StripeClient("sk_test_e2e_deletion",
                                        base_addresses={"api": local_stack.sandbox_url})
    subscription = stripe_client.v1.subscriptions.create(
        params={"customer": customer, "items": [{"price": PRICE_ID}], "metadata": {"uid": user.uid}})
    paid = stripe_event("checkout.session.completed", checkout_session_completed(
        new_id("cs_test_", 24), user.uid, user.email, customer, subscription.id))
    assert local_stack.post_stripe_event(paid).status_code == 200
    wait_for_outcome(local_stack, paid, "applied", "the checkout applied")
    wait_until(lambda: local_stack.custom_claims(user).get("pro"), timeout=STEP_TIMEOUT, what="the pro claim")

    documents = (f"http://{local_stack.endpoints['emulators']['firestore']}/v1/projects/"
                 f"{local_stack.project_id}/databases/(default)/documents")
    # Deleted as the server does it (the emulator's owner token is the Admin SDK's access).
    deleted = requests.delete(f"{documents}/users/{user.uid}", headers={"Authorization": "Bearer owner"},
                              timeout=10)
    assert deleted.status_code == 200, deleted.text

    tombstone = wait_until(lambda: local_stack.get_document(f"deleted_users/{user.uid}"),
                           timeout=STEP_TIMEOUT, what="the tombstone")
    assert tombstone["stripe_customers"] == [customer] and "email" not in tombstone
    wait_until(lambda: "pro" not in local_stack.custom_claims(user), timeout=STEP_TIMEOUT,
               what="the pro claim revoked (the Auth user remains)")
    wait_until(lambda: [s for s in local_stack.sandbox_state()["subscriptions"]
                        if s["id"] == subscription.id and s["status"] == "canceled"],
               timeout=STEP_TIMEOUT, what="the Stripe subscription canceled")
    wait_until(lambda: "account_deleted" in contact_tags(local_stack.contact(user.email)
                                                         or {"properties": {}}),
               timeout=STEP_TIMEOUT, what="the contact tagged account_deleted")

    ended = stripe_event("customer.subscription.deleted", {
        "id": subscription.id, "object": "subscription", "status": "canceled", "customer": customer,
        "metadata": {"uid": user.uid}, "items": {"object": "list", "data": []}})
    response = local_stack.post_stripe_event(ended)
    assert response.status_code == 200 and response.json()["status"] == "published"
    wait_for_outcome(local_stack, ended, "account_deleted", "the late event recorded for a deleted account")
    time.sleep(1)
    dead = [d for d in local_stack.list_documents("dead_letters") if ended["id"] in str(d.get("event_id"))]
    assert dead == []
    assert local_stack.get_document(f"users/{user.uid}") is None
