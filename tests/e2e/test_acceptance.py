"""Acceptance criteria, end to end on the local stack.

Every test goes through the real chain: an HTTP function (signed Stripe webhook or Firebase-authenticated
app call) -> the Firestore ledger -> Pub/Sub push delivery (emulator) -> a worker -> the provider sandbox.
What was APPLIED is counted from the sandbox: distinct contacts, tickets and emails, and the provider calls
attributed to one event through the correlation id that every hop carries.

Waits are polls with deadlines. "Nothing more happens" is checked by polling that a count stays put for a
short window after the ledger shows the work finished, which catches a concurrent duplicate; a duplicate
caused by a redelivery would need a failed delivery, and the timeout test provokes exactly that.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
import requests

from tools.journey.local_stack import LocalStack
from tools.journey.stripe_events import (
    checkout_session_completed,
    failed_invoice,
    stripe_event,
    stripe_signature,
)
from tools.journey.target import AuthUser, contact_tags, email_tags, wait_until

PAYMENT_TO_CRM_BOUND = 60.0  # a successful payment reaches the CRM within 60 s
SUPPORT_BOUND = 120.0  # ticket and acknowledgement within 2 minutes
STEP_TIMEOUT = 60.0
# Long enough for a concurrent duplicate to surface (a push hop takes well under a second here).
QUIET_SECONDS = 3.0
# Two faulted hops, each a 5 s provider timeout plus Pub/Sub's redelivery backoff (10 s minimum in the
# subscription's policy), fit easily.
RETRY_BOUND = 120.0
PRICE_ID = "price_local_pro"
UPSERT_PATH = "/crm/objects/2026-09/contacts/batch/upsert"
TICKETS_PATH = "/api/v2/tickets.json"
EMAILS_PATH = "/emails"


# ---- helpers ------------------------------------------------------------------------------------


def holds_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll `check` for `seconds`; fail as soon as it stops holding."""
    deadline = time.monotonic() + seconds
    while True:
        assert check(), f"no longer true: {what}"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def new_id(prefix: str, length: int = 14) -> str:
    return prefix + secrets.token_hex(length // 2)


def signed_up(stack: LocalStack, name: str = "Ada Founder") -> AuthUser:
    """An app user with the users/{uid} profile the app writes, once its sign-up reached the CRM as a lead
    (so later CRM writes can be attributed to what the test does next)."""
    user = stack.sign_up(display_name=name)
    response = stack.create_profile(user, display_name=name)
    assert response.status_code == 200, response.text
    wait_until(lambda: upserts_of(stack, user.email), timeout=STEP_TIMEOUT, what="the sign-up's CRM upsert")
    return user


def upserts_of(stack: LocalStack, email: str) -> list[dict[str, Any]]:
    """HubSpot upserts that were applied (200) for this contact, oldest first."""
    return [
        entry
        for entry in stack.sandbox_requests("hubspot")
        if entry["path"] == UPSERT_PATH
        and entry["status"] == 200
        and any(item.get("id") == email.lower() for item in (entry["body"] or {}).get("inputs", []))
    ]


def upsert_properties(entry: dict[str, Any]) -> dict[str, str]:
    return entry["body"]["inputs"][0]["properties"]


def tags_of(properties: dict[str, str]) -> set[str]:
    return {tag for tag in (properties.get("launchready_tags") or "").split(";") if tag}


def calls_with(stack: LocalStack, provider: str, correlation_ids: set[str]) -> list[dict[str, Any]]:
    return [e for e in stack.sandbox_requests(provider) if e.get("correlation_id") in correlation_ids]


def wait_for_calls(
    stack: LocalStack, provider: str, correlation_ids: set[str], what: str, timeout: float = STEP_TIMEOUT
) -> list[dict[str, Any]]:
    return wait_until(lambda: calls_with(stack, provider, correlation_ids), timeout=timeout, what=what)


def sandbox_seconds(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(entry["time"]).timestamp()


def profile(stack: LocalStack, user: AuthUser) -> dict[str, Any]:
    # Read as the user, under the security rules, as the app reads it.
    return stack.get_document(f"users/{user.uid}", as_user=user) or {}


def ledger(stack: LocalStack, key: str) -> dict[str, Any] | None:
    return stack.get_document(f"events/{key}")


def billing_outcome(stack: LocalStack, key: str) -> str | None:
    """applied | stale | ignored, as billing_worker's apply transaction recorded it on the ledger."""
    return ((ledger(stack, key) or {}).get("billing_apply") or {}).get("outcome")


def post_signed(stack: LocalStack, event: dict[str, Any]) -> requests.Response:
    """One Stripe delivery with its own signature (a fresh session: safe from any thread)."""
    payload = json.dumps(event, separators=(",", ":")).encode()
    return requests.post(
        stack.url("stripe_webhook"),
        data=payload,
        timeout=30,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": stripe_signature(payload, stack.endpoints["stripe_webhook_secret"]),
        },
    )


def deliver_concurrently(count: int, send: Callable[[], requests.Response]) -> list[requests.Response]:
    """`count` deliveries released together from a barrier."""
    barrier = threading.Barrier(count)

    def one(_: int) -> requests.Response:
        barrier.wait(timeout=30)
        return send()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


def support_body(**overrides: Any) -> dict[str, Any]:
    return {
        "subject": "Receipt shows the wrong company",
        "message": "Please change the company name on my receipts to Analytical Engines Ltd.",
        "category": "billing",
        "client_request_id": str(uuid.uuid4()),
        **overrides,
    }


def paid_checkout(user: AuthUser) -> dict[str, Any]:
    """checkout.session.completed for a paid subscription of `user`, with fresh ids."""
    session = checkout_session_completed(
        new_id("cs_test_", 24), user.uid, user.email, new_id("cus_"), new_id("sub_")
    )
    return stripe_event("checkout.session.completed", session)


def wait_for_outcome(stack: LocalStack, event: dict[str, Any], outcome: str, what: str) -> None:
    wait_until(
        lambda: billing_outcome(stack, f"stripe:{event['id']}") == outcome, timeout=STEP_TIMEOUT, what=what
    )


def tickets_for(stack: LocalStack, reference: str) -> list[dict[str, Any]]:
    return stack.tickets(reference)


def acknowledgements(stack: LocalStack, user: AuthUser) -> list[dict[str, Any]]:
    return [email for email in stack.emails_to(user.email) if email_tags(email).get("kind") == "support_ack"]


def assert_one_ticket_and_one_acknowledgement(stack: LocalStack, reference: str, user: AuthUser) -> None:
    """Exactly one of each, still after QUIET_SECONDS: a duplicate would have arrived by then."""
    holds_for(
        lambda: len(tickets_for(stack, reference)) == 1 and len(acknowledgements(stack, user)) == 1,
        QUIET_SECONDS,
        "one ticket and one acknowledgement",
    )


def support_requests_of(stack: LocalStack, user: AuthUser) -> list[dict[str, Any]]:
    return [doc for doc in stack.list_documents("support_requests") if doc.get("uid") == user.uid]


def add_fault(stack: LocalStack, **spec: Any) -> None:
    response = stack.http.post(f"{stack.sandbox_url}/_sandbox/faults", json=spec, timeout=10)
    assert response.status_code == 201, response.text


def clear_faults(stack: LocalStack) -> None:
    stack.http.delete(f"{stack.sandbox_url}/_sandbox/faults", timeout=10).raise_for_status()


def _documents_url(stack: LocalStack) -> str:
    return (
        f"http://{stack.endpoints['emulators']['firestore']}/v1/projects/{stack.project_id}"
        "/databases/(default)/documents"
    )


def database_snapshot(stack: LocalStack) -> dict[str, str]:
    """Every document of the database (ledger steps included) with its update time."""
    owner = {"Authorization": "Bearer owner"}  # the emulator's admin access, past the rules
    response = stack.http.post(
        f"{_documents_url(stack)}:listCollectionIds", json={}, headers=owner, timeout=10
    )
    response.raise_for_status()
    snapshot: dict[str, str] = {}
    for collection in {*response.json().get("collectionIds", []), "steps"}:
        query = {"structuredQuery": {"from": [{"collectionId": collection, "allDescendants": True}]}}
        answer = stack.http.post(f"{_documents_url(stack)}:runQuery", json=query, headers=owner, timeout=30)
        answer.raise_for_status()
        for row in answer.json():
            if "document" in row:
                snapshot[row["document"]["name"]] = row["document"]["updateTime"]
    return snapshot


def settled_snapshot(stack: LocalStack) -> dict[str, str]:
    """A snapshot once earlier tests' work has finished (two reads a second apart agree)."""
    previous: list[dict[str, str]] = [database_snapshot(stack)]

    def settled() -> dict[str, str] | None:
        time.sleep(1.0)
        current = database_snapshot(stack)
        same = current == previous[0]
        previous[0] = current
        return current if same else None

    return wait_until(settled, timeout=STEP_TIMEOUT, interval=0, what="the database to settle")


def snapshot_changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(
        [f"new {name}" for name in after.keys() - before.keys()]
        + [f"deleted {name}" for name in before.keys() - after.keys()]
        + [f"updated {name}" for name in before.keys() & after.keys() if before[name] != after[name]]
    )


def assert_database_unchanged(stack: LocalStack, before: dict[str, str]) -> None:
    """Polls for QUIET_SECONDS: a write that follows the answer (through Pub/Sub) shows up too."""
    deadline = time.monotonic() + QUIET_SECONDS
    while True:
        changes = snapshot_changes(before, database_snapshot(stack))
        assert not changes, f"the database changed: {changes[:10]}"
        if time.monotonic() >= deadline:
            return
        time.sleep(0.25)


def unsigned_token(stack: LocalStack, **claims: Any) -> str:
    """A token shaped like the Auth emulator's (alg none), carrying the claims a forger would choose."""
    now = int(time.time())
    project = stack.project_id
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "auth_time": now,
        "iat": now,
        "exp": now + 3600,
        "sub": "forged-uid",
        "user_id": "forged-uid",
        "email": "mallory@example.com",
        "firebase": {"identities": {}, "sign_in_provider": "password"},
        **claims,
    }

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(payload)}."


def subscription(sub_id: str, customer: str, uid: str, status: str) -> dict[str, Any]:
    """A Subscription object as customer.subscription.* events carry it (current API shape)."""
    now = int(time.time())
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": customer,
        "status": status,
        "cancel_at_period_end": False,
        "items": {
            "object": "list",
            "data": [
                {
                    "id": new_id("si_"),
                    "object": "subscription_item",
                    "price": {"id": PRICE_ID, "object": "price"},
                    "current_period_start": now - 30 * 86400,
                    "current_period_end": now,
                }
            ],
        },
        "metadata": {"uid": uid},
        "livemode": False,
    }


# ---- a successful payment -----------------------------------------------------------------------


def test_a_successful_payment_updates_the_crm_exactly_once_within_60_seconds(local_stack: LocalStack) -> None:
    user = signed_up(local_stack)
    event = paid_checkout(user)

    sent = time.time()
    response = local_stack.post_stripe_event(event)
    assert response.status_code == 200 and response.json()["status"] == "published", response.text
    correlation_id = response.headers["X-Correlation-Id"]

    upsert = wait_for_calls(
        local_stack, "hubspot", {correlation_id}, "the payment's HubSpot upsert", timeout=PAYMENT_TO_CRM_BOUND
    )[0]
    elapsed = sandbox_seconds(upsert) - sent
    print(f"\npayment -> CRM upsert: {elapsed:.2f} s (bound {PAYMENT_TO_CRM_BOUND:.0f} s)")
    assert elapsed < PAYMENT_TO_CRM_BOUND

    properties = upsert_properties(upsert)
    assert upsert["status"] == 200
    assert properties["lifecyclestage"] == "customer"
    assert tags_of(properties) == {"signed_up", "customer"}
    wait_for_outcome(local_stack, event, "applied", "the event applied in the ledger")
    holds_for(
        lambda: len(calls_with(local_stack, "hubspot", {correlation_id})) == 1,
        QUIET_SECONDS,
        "one CRM upsert for the payment",
    )
    contact = local_stack.contact(user.email)
    assert contact is not None and contact["properties"]["lifecyclestage"] == "customer"
    assert contact_tags(contact) == {"signed_up", "customer"}
    assert profile(local_stack, user)["billing"]["status"] == "active"
    assert local_stack.custom_claims(user).get("pro") is True


# ---- a failed payment ---------------------------------------------------------------------------


def _failed_checkout(user: AuthUser) -> dict[str, Any]:
    session = checkout_session_completed(
        new_id("cs_test_", 24), user.uid, user.email, new_id("cus_"), new_id("sub_")
    )
    session["payment_status"] = "unpaid"  # a bank debit that bounced
    return stripe_event("checkout.session.async_payment_failed", session)


def _failed_first_invoice(user: AuthUser) -> dict[str, Any]:
    invoice = failed_invoice(new_id("in_", 24), new_id("cus_"), new_id("sub_"), user.email, PRICE_ID)
    invoice["billing_reason"] = "subscription_create"
    # Subscription invoices name their user through the subscription's metadata (create_checkout sets it).
    invoice["parent"]["subscription_details"]["metadata"] = {"uid": user.uid}
    return stripe_event("invoice.payment_failed", invoice)


FAILED_PAYMENTS = {
    "checkout.session.async_payment_failed": _failed_checkout,
    "invoice.payment_failed": _failed_first_invoice,
}


@pytest.mark.parametrize("event_type", list(FAILED_PAYMENTS))
def test_a_failed_payment_grants_no_access_and_records_nothing_false(
    local_stack: LocalStack, event_type: str
) -> None:
    user = signed_up(local_stack)
    event = FAILED_PAYMENTS[event_type](user)

    response = local_stack.post_stripe_event(event)
    assert response.status_code == 200 and response.json()["status"] == "published", response.text
    correlation_id = response.headers["X-Correlation-Id"]

    # Everything the failure does: billing recorded, the CRM told, one recovery email to the user.
    wait_for_outcome(local_stack, event, "applied", "the failed payment applied in the ledger")
    upsert = wait_for_calls(local_stack, "hubspot", {correlation_id}, "the CRM update of the failure")[0]
    wait_for_calls(local_stack, "resend", {correlation_id}, "the recovery email")

    billing = profile(local_stack, user)["billing"]
    assert billing["status"] == "payment_failed"
    assert billing["payment_failed"] is True and billing["ever_paid"] is False
    assert profile(local_stack, user)["entitlements"]["pro"] is False
    assert "pro" not in local_stack.custom_claims(local_stack.sign_in(user))
    properties = upsert_properties(upsert)
    assert properties["lifecyclestage"] == "lead"
    assert tags_of(properties) == {"signed_up", "payment_failed"}
    holds_for(
        lambda: (
            len(calls_with(local_stack, "hubspot", {correlation_id})) == 1
            and len(calls_with(local_stack, "resend", {correlation_id})) == 1
            and all(
                "customer" not in tags_of(upsert_properties(e)) for e in upserts_of(local_stack, user.email)
            )
        ),
        QUIET_SECONDS,
        "one CRM update, one email, never a customer",
    )
    emails = local_stack.emails_to(user.email)
    assert [email_tags(email).get("category") for email in emails] == ["payment_recovery"]
    assert "didn't go through" in emails[0]["subject"]


# ---- support ------------------------------------------------------------------------------------


def test_a_support_request_creates_one_ticket_and_one_acknowledgement_within_2_minutes(
    local_stack: LocalStack,
) -> None:
    user = local_stack.sign_up(display_name="Grace Hopper")

    response = local_stack.call("support_request", user, support_body())
    answered = time.time()
    assert response.status_code == 202, response.text
    reference = response.json()["reference"]

    ticket = wait_until(
        lambda: tickets_for(local_stack, reference), timeout=SUPPORT_BOUND, what="the Zendesk ticket"
    )[0]
    email = wait_until(
        lambda: acknowledgements(local_stack, user), timeout=SUPPORT_BOUND, what="the acknowledgement email"
    )[0]
    emails = [
        e for e in local_stack.sandbox_requests("resend") if user.email in (e["body"] or {}).get("to", [])
    ]
    elapsed = sandbox_seconds(emails[0]) - answered
    print(f"\nsupport answered -> acknowledgement email: {elapsed:.2f} s (bound {SUPPORT_BOUND:.0f} s)")
    assert elapsed < SUPPORT_BOUND

    assert ticket["external_id"] == reference
    assert reference in email["subject"] and email["to"] == [user.email]
    wait_until(
        lambda: (support_requests_of(local_stack, user) or [{}])[0].get("ticket_id") == ticket["id"],
        timeout=STEP_TIMEOUT,
        what="the ticket id written back to the request",
    )
    assert_one_ticket_and_one_acknowledgement(local_stack, reference, user)


def test_an_offline_replay_of_a_support_request_gets_the_same_reference_and_no_second_ticket(
    local_stack: LocalStack,
) -> None:
    user = local_stack.sign_up(display_name="Grace Hopper")
    body = support_body()

    first = local_stack.call("support_request", user, body)
    # The app's offline queue flushes the request again before it saw the first answer.
    queued_again = local_stack.call("support_request", user, body)
    assert first.status_code == 202 and queued_again.status_code == 202, (first.text, queued_again.text)
    reference = first.json()["reference"]
    assert queued_again.json()["reference"] == reference

    wait_until(
        lambda: tickets_for(local_stack, reference) and acknowledgements(local_stack, user),
        timeout=SUPPORT_BOUND,
        what="the ticket and the acknowledgement",
    )
    # Much later, after a restart with a refreshed token, the queue replays it once more.
    replay = local_stack.call("support_request", local_stack.sign_in(user), body)
    assert replay.status_code == 202 and replay.json()["reference"] == reference, replay.text

    assert_one_ticket_and_one_acknowledgement(local_stack, reference, user)
    requests_filed = support_requests_of(local_stack, user)
    assert [doc["reference"] for doc in requests_filed] == [reference]


# ---- duplicates ---------------------------------------------------------------------------------


def test_the_same_webhook_delivered_twice_is_applied_once(local_stack: LocalStack) -> None:
    user = signed_up(local_stack)
    event = paid_checkout(user)

    first = local_stack.post_stripe_event(event)
    assert first.status_code == 200 and first.json()["status"] == "published", first.text
    wait_for_outcome(local_stack, event, "applied", "the first delivery applied")
    second = local_stack.post_stripe_event(event)  # Stripe's retry: same event, fresh signature
    assert second.status_code == 200 and second.json()["status"] == "duplicate", second.text

    correlation_ids = {first.headers["X-Correlation-Id"], second.headers["X-Correlation-Id"]}
    wait_for_calls(local_stack, "hubspot", correlation_ids, "the CRM upsert")
    holds_for(
        lambda: (
            len(calls_with(local_stack, "hubspot", correlation_ids)) == 1
            and len(
                [
                    e
                    for e in upserts_of(local_stack, user.email)
                    if upsert_properties(e)["lifecyclestage"] == "customer"
                ]
            )
            == 1
        ),
        QUIET_SECONDS,
        "one CRM upsert for the event",
    )
    assert (
        len(
            [
                c
                for c in local_stack.sandbox_state()["contacts"]
                if c["properties"]["email"] == user.email.lower()
            ]
        )
        == 1
    )


CONCURRENT_DELIVERIES = 20


@pytest.mark.parametrize("event_type", ["checkout.session.completed", "invoice.payment_failed"])
def test_the_same_webhook_delivered_20_times_concurrently_is_applied_once(
    local_stack: LocalStack, event_type: str
) -> None:
    user = signed_up(local_stack)
    if event_type == "checkout.session.completed":
        event = paid_checkout(user)
    else:
        event = _failed_first_invoice(user)

    answers = deliver_concurrently(CONCURRENT_DELIVERIES, lambda: post_signed(local_stack, event))

    statuses = [(a.status_code, (a.json().get("status") or a.json()["error"]["code"])) for a in answers]
    # One delivery publishes; the others are told it is a duplicate, or (409) to come back later.
    assert statuses.count((200, "published")) == 1, statuses
    assert set(statuses) <= {(200, "published"), (200, "duplicate"), (409, "event_in_progress")}, statuses
    correlation_ids = {a.headers["X-Correlation-Id"] for a in answers}
    wait_for_outcome(local_stack, event, "applied", "the event applied")
    wait_for_calls(local_stack, "hubspot", correlation_ids, "the CRM upsert")
    expected_emails = 1 if event_type == "invoice.payment_failed" else 0
    if expected_emails:
        wait_for_calls(local_stack, "resend", correlation_ids, "the recovery email")
    holds_for(
        lambda: (
            len(calls_with(local_stack, "hubspot", correlation_ids)) == 1
            and len(calls_with(local_stack, "resend", correlation_ids)) == expected_emails
            and len(local_stack.emails_to(user.email)) == expected_emails
        ),
        QUIET_SECONDS,
        "one CRM upsert and at most one email for the event",
    )
    billing = profile(local_stack, user)["billing"]
    if event_type == "invoice.payment_failed":
        assert billing["failed_payment_count"] == 1  # counted once, not once per delivery
    else:
        assert billing["status"] == "active"


def test_one_support_request_submitted_20_times_concurrently_creates_one_ticket_and_one_email(
    local_stack: LocalStack,
) -> None:
    user = local_stack.sign_up(display_name="Grace Hopper")
    body = support_body()
    url = local_stack.url("support_request")

    answers = deliver_concurrently(
        CONCURRENT_DELIVERIES,
        lambda: requests.post(
            url, json=body, headers={"Authorization": f"Bearer {user.id_token}"}, timeout=30
        ),
    )

    accepted = [a for a in answers if a.status_code == 202]
    assert accepted, [a.text for a in answers]
    assert all(a.status_code in (202, 409) for a in answers), [a.text for a in answers]
    references = {a.json()["reference"] for a in accepted}
    references |= {a.json()["error"]["reference"] for a in answers if a.status_code == 409}
    assert len(references) == 1, references
    reference = references.pop()
    wait_until(
        lambda: tickets_for(local_stack, reference) and acknowledgements(local_stack, user),
        timeout=SUPPORT_BOUND,
        what="the ticket and the acknowledgement",
    )
    assert_one_ticket_and_one_acknowledgement(local_stack, reference, user)
    assert len(support_requests_of(local_stack, user)) == 1


# ---- a provider timeout after the call was applied ---------------------------------------------


def test_a_provider_timeout_after_the_call_applied_is_retried_without_writing_twice(
    local_stack: LocalStack,
) -> None:
    user = local_stack.sign_up(display_name="Grace Hopper")
    clear_faults(local_stack)
    # Applied, then no answer for longer than the functions' provider timeout (5 s).
    add_fault(local_stack, provider="zendesk", mode="lost_response", path=TICKETS_PATH, seconds=6)
    add_fault(local_stack, provider="resend", mode="lost_response", path=EMAILS_PATH, seconds=6)
    try:
        response = local_stack.call("support_request", user, support_body())
        assert response.status_code == 202, response.text
        reference = response.json()["reference"]

        def ticket_calls() -> list[dict[str, Any]]:
            # The ticket's create, and the repeat's lookup of it by external_id.
            return [
                e
                for e in local_stack.sandbox_requests("zendesk")
                if e["path"] == TICKETS_PATH
                and ((e["body"] or {}).get("ticket", {}).get("external_id") == reference
                     or (e.get("query") or {}).get("external_id") == [reference])
            ]

        def email_calls() -> list[dict[str, Any]]:
            return [
                e
                for e in local_stack.sandbox_requests("resend")
                if e["path"] == EMAILS_PATH and user.email in (e["body"] or {}).get("to", [])
            ]

        # Each call is repeated on Pub/Sub's redelivery: the ticket is looked up by its reference, the email
        # is answered from the idempotency key.
        wait_until(
            lambda: len(ticket_calls()) >= 2 and len(email_calls()) >= 2,
            timeout=RETRY_BOUND,
            what="the redelivered ticket and email calls",
        )
    finally:
        clear_faults(local_stack)

    assert_one_ticket_and_one_acknowledgement(local_stack, reference, user)
    # The first call applied and timed out; the redelivery found the ticket by its reference (a guard that
    # outlives Zendesk's 2-hour key) and got the email from Resend's idempotency key.
    tickets, emails = ticket_calls(), email_calls()
    assert [(e["method"], e["fault"]) for e in tickets] == [("POST", "lost_response"), ("GET", None)]
    assert [(e["fault"], e["replayed"]) for e in emails] == [("lost_response", False), (None, True)]
    assert tickets[0]["idempotency_key"] == reference
    ticket_id = tickets_for(local_stack, reference)[0]["id"]
    wait_until(
        lambda: (support_requests_of(local_stack, user) or [{}])[0].get("ticket_id") == ticket_id,
        timeout=STEP_TIMEOUT,
        what="the ticket id written back once",
    )
    step = local_stack.get_document(f"events/support:{reference}/steps/zendesk_ticket") or {}
    assert step.get("state") == "done" and step.get("attempts") == 2


# ---- ordering -----------------------------------------------------------------------------------


def test_out_of_order_subscription_updates_end_in_the_state_of_the_newest(local_stack: LocalStack) -> None:
    user = signed_up(local_stack)
    customer, sub_id = new_id("cus_"), new_id("sub_")
    now = int(time.time())
    paid = stripe_event(
        "checkout.session.completed",
        checkout_session_completed(new_id("cs_test_", 24), user.uid, user.email, customer, sub_id),
        created=now - 120,
    )
    assert local_stack.post_stripe_event(paid).status_code == 200
    wait_until(
        lambda: local_stack.custom_claims(user).get("pro") is True,
        timeout=STEP_TIMEOUT,
        what="access granted by the payment",
    )

    # Card retries exhausted (newest) ... then a late renewal update from a minute earlier.
    newest = stripe_event(
        "customer.subscription.updated", subscription(sub_id, customer, user.uid, "unpaid"), created=now
    )
    older = stripe_event(
        "customer.subscription.updated", subscription(sub_id, customer, user.uid, "active"), created=now - 60
    )
    assert local_stack.post_stripe_event(newest).status_code == 200
    wait_for_outcome(local_stack, newest, "applied", "the newest update applied")
    late = local_stack.post_stripe_event(older)
    assert late.status_code == 200 and late.json()["status"] == "published", late.text
    wait_for_outcome(local_stack, older, "stale", "the older update recognised as stale")

    billing = profile(local_stack, user)["billing"]
    assert billing["status"] == "unpaid"
    assert billing["applied"][sub_id] == now
    assert profile(local_stack, user)["entitlements"]["pro"] is False
    assert "pro" not in local_stack.custom_claims(user)

    def canceled_contact() -> dict[str, Any] | None:
        contact = local_stack.contact(user.email)
        return contact if contact and "canceled" in contact_tags(contact) else None

    contact = wait_until(
        canceled_contact,
        timeout=STEP_TIMEOUT,
        what="the CRM contact in the newest state",
    )
    holds_for(
        lambda: (
            not calls_with(local_stack, "hubspot", {late.headers["X-Correlation-Id"]})
            and contact_tags(local_stack.contact(user.email) or {"properties": {}})
            == {"signed_up", "canceled"}
        ),
        QUIET_SECONDS,
        "the stale update changes nothing in the CRM",
    )
    assert contact["properties"]["lifecyclestage"] == "customer"  # once paid, never back to lead


# ---- rejections ---------------------------------------------------------------------------------


def _webhook_rejections(stack: LocalStack) -> dict[str, tuple[dict[str, Any], int, str]]:
    """case -> (request keyword arguments, expected status, expected error code)."""
    secret = stack.endpoints["stripe_webhook_secret"]

    def event_payload() -> bytes:
        obj = checkout_session_completed(
            new_id("cs_test_", 24), "uid-x", "x@example.com", new_id("cus_"), new_id("sub_")
        )
        return json.dumps(stripe_event("checkout.session.completed", obj)).encode()

    def signed(
        payload: bytes,
        *,
        timestamp: int | None = None,
        key: str = secret,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        return {
            "data": payload,
            "headers": {
                "Content-Type": content_type,
                "Stripe-Signature": stripe_signature(payload, key, timestamp),
            },
        }

    genuine = json.loads(event_payload())
    tampered = signed(json.dumps(genuine).encode())
    genuine["data"]["object"]["client_reference_id"] = "someone-else"  # changed after signing
    tampered["data"] = json.dumps(genuine).encode()
    oversized = json.loads(event_payload())
    oversized["data"]["object"]["metadata"]["padding"] = "x" * (300 * 1024)
    now = int(time.time())
    return {
        "signed with another secret": (
            signed(event_payload(), key="whsec_" + "f" * 48),
            400,
            "invalid_signature",
        ),
        "no Stripe-Signature header": (
            {"data": event_payload(), "headers": {"Content-Type": "application/json"}},
            400,
            "missing_signature",
        ),
        "body changed after signing": (tampered, 400, "invalid_signature"),
        "stale timestamp": (signed(event_payload(), timestamp=now - 3600), 400, "stale_timestamp"),
        "timestamp from the future": (signed(event_payload(), timestamp=now + 3600), 400, "stale_timestamp"),
        "malformed JSON": (signed(b'{"id": "evt_1", "object": "event",'), 400, "malformed_json"),
        "not an event": (signed(b'{"object": "charge", "id": "ch_1"}'), 400, "invalid_event"),
        "oversized body": (signed(json.dumps(oversized).encode()), 413, "body_too_large"),
        "wrong content type": (
            signed(event_payload(), content_type="text/plain"),
            415,
            "unsupported_media_type",
        ),
    }


def test_rejected_webhooks_are_answered_4xx_and_change_nothing(local_stack: LocalStack) -> None:
    cases = _webhook_rejections(local_stack)
    before = settled_snapshot(local_stack)
    provider_calls = len(local_stack.sandbox_requests())

    answers = {}
    for case, (request, _, _) in cases.items():
        response = requests.post(local_stack.url("stripe_webhook"), timeout=30, **request)
        answers[case] = (response.status_code, (response.json().get("error") or {}).get("code"))

    assert answers == {case: (status, code) for case, (_, status, code) in cases.items()}
    assert_database_unchanged(local_stack, before)
    assert len(local_stack.sandbox_requests()) == provider_calls


def _app_rejections(stack: LocalStack) -> dict[str, tuple[str, dict[str, Any], int, str]]:
    """case -> (function, request keyword arguments, expected status, expected error code)."""
    user = stack.sign_up(display_name="Grace Hopper")
    valid = {"Authorization": f"Bearer {user.id_token}"}
    # The emulator's tokens are unsigned and firebase-admin skips signature and expiry checks against it,
    # so the forgeries tested here are the ones it still catches: no token, garbage, unknown user, wrong
    # project. Signatures are checked against Google's keys in the cloud.
    other_project = "someone-elses-app"
    forged = {
        "no ID token": {},
        "not a bearer token": {"Authorization": "Basic Z3JhY2U6aG9wcGVy"},
        "garbage token": {"Authorization": "Bearer not-a-jwt"},
        "forged token for an unknown user": {"Authorization": f"Bearer {unsigned_token(stack)}"},
        "token of another project": {
            "Authorization": "Bearer "
            + unsigned_token(
                stack,
                sub=user.uid,
                user_id=user.uid,
                aud=other_project,
                iss=f"https://securetoken.google.com/{other_project}",
            )
        },
    }
    cases: dict[str, tuple[str, dict[str, Any], int, str]] = {}
    for function, body in (
        ("support_request", support_body()),
        ("create_checkout", {"client_request_id": str(uuid.uuid4())}),
    ):
        for case, headers in forged.items():
            code = (
                "missing_id_token"
                if "Authorization" not in headers or "Basic" in headers["Authorization"]
                else "invalid_id_token"
            )
            cases[f"{function}: {case}"] = (function, {"json": body, "headers": headers}, 401, code)
    json_headers = {**valid, "Content-Type": "application/json"}
    cases.update(
        {
            "support_request: malformed JSON": (
                "support_request",
                {"data": b'{"subject": "Hi",', "headers": json_headers},
                400,
                "malformed_json",
            ),
            "support_request: oversized body": (
                "support_request",
                {"json": support_body(message="x" * (20 * 1024)), "headers": valid},
                413,
                "body_too_large",
            ),
            "support_request: wrong content type": (
                "support_request",
                {
                    "data": json.dumps(support_body()).encode(),
                    "headers": {**valid, "Content-Type": "text/plain"},
                },
                415,
                "unsupported_media_type",
            ),
            "support_request: invalid fields": (
                "support_request",
                {"json": support_body(category="urgent!!", client_request_id="42"), "headers": valid},
                400,
                "invalid_request",
            ),
            "create_checkout: price not offered": (
                "create_checkout",
                {
                    "json": {"client_request_id": str(uuid.uuid4()), "price_id": "price_free_forever"},
                    "headers": valid,
                },
                400,
                "price_not_allowed",
            ),
        }
    )
    return cases


def test_rejected_app_requests_are_answered_4xx_and_change_nothing(local_stack: LocalStack) -> None:
    cases = _app_rejections(local_stack)
    before = settled_snapshot(local_stack)
    provider_calls = len(local_stack.sandbox_requests())

    answers = {}
    for case, (function, request, _, _) in cases.items():
        response = requests.post(local_stack.url(function), timeout=30, **request)
        answers[case] = (response.status_code, (response.json().get("error") or {}).get("code"))

    assert answers == {case: (status, code) for case, (_, _, status, code) in cases.items()}
    assert_database_unchanged(local_stack, before)
    assert len(local_stack.sandbox_requests()) == provider_calls
