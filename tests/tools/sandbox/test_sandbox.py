"""The provider sandbox over real HTTP on 127.0.0.1: provider behaviour, recording and fault injection."""

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from stripe.params.checkout import SessionCreateParams

from tools.sandbox import SandboxServer
from tools.sandbox.forms import decode_form
from tools.sandbox.idempotency import IdempotencyStore, fingerprint
from tools.sandbox.messages import SandboxResponse
from tools.sandbox.recorder import credential_digest

REPO = Path(__file__).resolve().parents[3]
HUBSPOT_AUTH = {"Authorization": "Bearer pat-na1-test-token"}
ZENDESK_AUTH = {"Authorization": "Basic " + base64.b64encode(b"agent@example.com/token:zd-secret").decode()}
RESEND_AUTH = {"Authorization": "Bearer re_test_key"}
STRIPE_KEY = "sk_test_sandbox123"



def recorded(url: str, provider: str | None = None) -> list[dict]:
    params = {"provider": provider} if provider else {}
    return requests.get(f"{url}/_sandbox/requests", params=params, timeout=5).json()["requests"]


def state(url: str) -> dict:
    return requests.get(f"{url}/_sandbox/state", timeout=5).json()


def add_fault(url: str, **spec: Any) -> dict:
    response = requests.post(f"{url}/_sandbox/faults", json=spec, timeout=5)
    assert response.status_code == 201, response.text
    return response.json()["fault"]


def ticket_payload(subject: str = "Cannot log in", body: str = "The app says my password is wrong.") -> dict:
    return {
        "ticket": {
            "subject": subject,
            "comment": {"body": body},
            "requester": {"email": "ada@example.com", "name": "Ada"},
            "external_id": "SR-7F3K2Q",
            "priority": "normal",
            "tags": ["launchready", "category_account"],
        }
    }


def email_payload(subject: str = "We got your request") -> dict:
    return {
        "from": "Launch Ready <no-reply@example.com>",
        "to": ["ada@example.com"],
        "subject": subject,
        "html": "<p>Hi</p>",
        "text": "Hi",
        "tags": [{"name": "kind", "value": "support_ack"}],
    }


def contact_input(email: str, **properties: str) -> dict:
    return {"idProperty": "email", "id": email, "properties": properties}


def post_keyed(
    endpoint: str, payload: dict, key: str | None, auth: dict, timeout: float = 5
) -> requests.Response:
    """POST a JSON body as the workers do: with credentials, and with an Idempotency-Key when given."""
    headers = {**auth, "Idempotency-Key": key} if key else auth
    return requests.post(endpoint, json=payload, headers=headers, timeout=timeout)


def hubspot_upsert(url: str, inputs: list[dict], headers: dict | None = None) -> requests.Response:
    return requests.post(
        f"{url}/crm/objects/2026-09/contacts/batch/upsert",
        json={"inputs": inputs},
        headers=HUBSPOT_AUTH if headers is None else headers,
        timeout=5,
    )


# --- index and inspection ------------------------------------------------------------------------


def test_index_describes_the_sandbox(url: str) -> None:
    answer = requests.get(f"{url}/", timeout=5)
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert set(answer.json()["providers"]) == {"hubspot", "zendesk", "resend", "stripe", "app_store",
                                               "google_play"}


def test_start_sandbox_binds_to_loopback_only(sandbox: tuple[SandboxServer, str]) -> None:
    server, url = sandbox
    assert server.server_address[0] == "127.0.0.1"
    assert url.startswith("http://127.0.0.1:")


def test_unknown_paths_are_404_and_recorded_but_control_calls_are_not(url: str) -> None:
    assert requests.get(f"{url}/nowhere", timeout=5).status_code == 404
    assert requests.get(f"{url}/_sandbox/nothing", timeout=5).status_code == 404
    assert [(entry["provider"], entry["path"], entry["status"]) for entry in recorded(url)] == [
        ("unknown", "/nowhere", 404)
    ]


# --- HubSpot ---------------------------------------------------------------------------------------


def test_hubspot_rejects_missing_token_in_hubspot_error_shape(url: str) -> None:
    answer = hubspot_upsert(url, [contact_input("ada@example.com")], headers={})
    assert answer.status_code == 401
    body = answer.json()
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    assert body["correlationId"]
    assert state(url)["contacts"] == []


def test_hubspot_upsert_creates_then_updates_the_same_contact(url: str) -> None:
    first = hubspot_upsert(
        url, [contact_input("Ada@Example.com", firstname="Ada", launchready_tags="signed_up")]
    )
    assert first.status_code == 200
    created = first.json()["results"][0]
    assert first.json()["status"] == "COMPLETE"
    assert created["new"] is True
    assert created["properties"]["email"] == "ada@example.com"

    second = hubspot_upsert(url, [contact_input("ada@example.com", launchready_tags="customer;signed_up")])
    updated = second.json()["results"][0]
    assert updated["id"] == created["id"]
    assert updated["new"] is False
    # Properties not in the second input are kept; the ones in it replace the stored value.
    assert updated["properties"]["firstname"] == "Ada"
    assert updated["properties"]["launchready_tags"] == "customer;signed_up"
    assert len(state(url)["contacts"]) == 1


def test_hubspot_partial_failure_is_a_207_with_per_input_errors(url: str) -> None:
    answer = hubspot_upsert(
        url,
        [
            contact_input("ok@example.com", lifecyclestage="lead"),
            contact_input("bad@example.com", lifecyclestage="vip"),
        ],
    )
    assert answer.status_code == 207
    body = answer.json()
    assert [result["properties"]["email"] for result in body["results"]] == ["ok@example.com"]
    assert body["numErrors"] == 1
    assert body["errors"][0]["category"] == "VALIDATION_ERROR"
    assert body["errors"][0]["context"] == {"id": ["bad@example.com"]}
    assert [c["properties"]["email"] for c in state(url)["contacts"]] == ["ok@example.com"]


def test_hubspot_all_invalid_or_duplicate_inputs_are_a_400(url: str) -> None:
    invalid = hubspot_upsert(url, [contact_input("not-an-email")])
    assert invalid.status_code == 400
    assert invalid.json()["category"] == "VALIDATION_ERROR"
    duplicate = hubspot_upsert(url, [contact_input("a@example.com"), contact_input("A@example.com")])
    assert duplicate.status_code == 400
    assert "Duplicate IDs" in duplicate.json()["message"]
    assert state(url)["contacts"] == []


# --- Zendesk ---------------------------------------------------------------------------------------


def create_ticket(
    url: str, payload: dict, key: str | None = "sr-1", auth: dict | None = None
) -> requests.Response:
    return post_keyed(f"{url}/api/v2/tickets.json", payload, key, ZENDESK_AUTH if auth is None else auth)


@pytest.mark.parametrize(
    "auth",
    [
        {},
        {"Authorization": "Bearer something"},
        {"Authorization": "Basic " + base64.b64encode(b"no-email/token:x").decode()},
        {"Authorization": "Basic " + base64.b64encode(b"agent@example.com/token:").decode()},
    ],
)
def test_zendesk_rejects_bad_credentials(url: str, auth: dict) -> None:
    answer = create_ticket(url, ticket_payload(), auth=auth)
    assert answer.status_code == 401
    assert answer.json() == {"error": "Couldn't authenticate you"}
    assert state(url)["tickets"] == []


def test_zendesk_creates_a_ticket_like_zendesk(url: str) -> None:
    answer = create_ticket(url, ticket_payload())
    assert answer.status_code == 201
    assert answer.headers["x-idempotency-lookup"] == "miss"
    ticket = answer.json()["ticket"]
    assert answer.headers["Location"] == ticket["url"] == f"{url}/api/v2/tickets/{ticket['id']}.json"
    assert ticket["external_id"] == "SR-7F3K2Q"
    assert ticket["description"] == "The app says my password is wrong."
    assert ticket["status"] == "new" and ticket["priority"] == "normal"
    fetched = requests.get(ticket["url"], headers=ZENDESK_AUTH, timeout=5).json()["ticket"]
    assert fetched == ticket


def test_zendesk_idempotency_key_returns_the_original_ticket(url: str) -> None:
    first = create_ticket(url, ticket_payload())
    repeat = create_ticket(url, ticket_payload())
    assert repeat.status_code == 201
    assert repeat.headers["x-idempotency-lookup"] == "hit"
    assert repeat.json()["ticket"]["id"] == first.json()["ticket"]["id"]
    assert len(state(url)["tickets"]) == 1
    assert [entry["replayed"] for entry in recorded(url, "zendesk")] == [False, True]


def test_zendesk_same_key_with_another_body_is_a_400(url: str) -> None:
    create_ticket(url, ticket_payload())
    conflict = create_ticket(url, ticket_payload(subject="Something else"))
    assert conflict.status_code == 400
    assert conflict.json()["error"] == "IdempotentRequestError"
    assert len(state(url)["tickets"]) == 1


def test_zendesk_without_a_key_every_post_is_a_new_ticket(url: str) -> None:
    ids = {create_ticket(url, ticket_payload(), key=None).json()["ticket"]["id"] for _ in range(2)}
    assert len(ids) == 2


def test_zendesk_validation_errors_are_422_record_invalid(url: str) -> None:
    answer = create_ticket(url, ticket_payload(body=" "))
    assert answer.status_code == 422
    assert answer.json()["error"] == "RecordInvalid"
    assert "description" in answer.json()["details"]
    # A rejected request stores nothing under its key: the corrected retry is not a conflict.
    assert create_ticket(url, ticket_payload()).status_code == 201


# --- Resend ----------------------------------------------------------------------------------------


def send_email(
    url: str, payload: dict, key: str | None = "ack/SR-1", auth: dict | None = None
) -> requests.Response:
    return post_keyed(f"{url}/emails", payload, key, RESEND_AUTH if auth is None else auth)


def test_resend_rejects_a_missing_api_key(url: str) -> None:
    answer = send_email(url, email_payload(), auth={})
    assert answer.status_code == 401
    assert answer.json()["name"] == "missing_api_key"
    assert answer.json()["statusCode"] == 401


def test_resend_idempotency_same_body_same_id_other_body_409(url: str) -> None:
    first = send_email(url, email_payload())
    assert first.status_code == 200
    repeat = send_email(url, email_payload())
    assert repeat.json() == first.json()
    conflict = send_email(url, email_payload(subject="Different"))
    assert conflict.status_code == 409
    assert conflict.json()["name"] == "invalid_idempotent_request"
    emails = state(url)["emails"]
    assert [email["id"] for email in emails] == [first.json()["id"]]
    fetched = requests.get(f"{url}/emails/{first.json()['id']}", headers=RESEND_AUTH, timeout=5).json()
    assert fetched["subject"] == "We got your request" and fetched["to"] == ["ada@example.com"]
    assert "tags" not in fetched  # not in Resend's Email schema, so not returned


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"from": "nobody"}, "from"),
        ({"to": ["not-an-address"]}, "to"),
        ({"html": None, "text": None}, "html"),
        ({"tags": [{"name": "kind", "value": "has space"}]}, "Tags"),
    ],
)
def test_resend_validation_errors_are_422(url: str, change: dict, message: str) -> None:
    payload = {**email_payload(), **change}
    answer = send_email(url, payload)
    assert answer.status_code == 422
    assert answer.json()["name"] == "validation_error"
    assert message in answer.json()["message"]
    assert state(url)["emails"] == []


def test_resend_idempotency_key_longer_than_256_is_rejected(url: str) -> None:
    answer = send_email(url, email_payload(), key="k" * 257)
    assert answer.status_code == 400
    assert answer.json()["name"] == "invalid_idempotency_key"


# --- Stripe Checkout, through stripe-python ----------------------------------------------------------


def stripe_client(url: str, key: str = STRIPE_KEY) -> stripe.StripeClient:
    return stripe.StripeClient(key, base_addresses={"api": url}, max_network_retries=0)


CHECKOUT_PARAMS: SessionCreateParams = {
    "mode": "subscription",
    "client_reference_id": "uid_123",
    "line_items": [{"price": "price_pro_monthly", "quantity": 1}],
    "metadata": {"uid": "uid_123", "request_id": "req-1"},
    "success_url": "https://app.example.com/paid",
    "cancel_url": "https://app.example.com/cancel",
}


def test_stripe_checkout_session_round_trip_with_stripe_python(url: str) -> None:
    client = stripe_client(url)
    session = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options={"idempotency_key": "req-1"})
    assert session.object == "checkout.session"
    assert session.id.startswith("cs_test_")
    assert session.url == f"{url}/c/pay/{session.id}"
    assert session.client_reference_id == "uid_123"
    assert session.mode == "subscription" and session.status == "open" and session.livemode is False
    assert session.metadata is not None and session.url is not None
    assert session.metadata.to_dict() == {"uid": "uid_123", "request_id": "req-1"}
    assert client.v1.checkout.sessions.retrieve(session.id).id == session.id
    page = requests.get(session.url, timeout=5)
    assert page.status_code == 200 and session.id in page.text

    entry = recorded(url, "stripe")[0]
    assert entry["body"]["line_items"] == [{"price": "price_pro_monthly", "quantity": "1"}]
    assert entry["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


def test_stripe_idempotency_replays_and_rejects_other_params(url: str) -> None:
    client = stripe_client(url)
    first = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options={"idempotency_key": "req-1"})
    repeat = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options={"idempotency_key": "req-1"})
    assert repeat.id == first.id
    assert repeat.last_response is not None
    assert repeat.last_response.headers["Idempotent-Replayed"] == "true"
    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params={**CHECKOUT_PARAMS, "client_reference_id": "someone_else"},
            options={"idempotency_key": "req-1"},
        )
    assert len(state(url)["checkout_sessions"]) == 1


def test_stripe_invalid_params_are_invalid_request_errors(url: str) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        stripe_client(url).v1.checkout.sessions.create(params={"mode": "payment"})
    assert missing.value.code == "parameter_missing" and missing.value.param == "line_items"
    with pytest.raises(stripe.InvalidRequestError) as no_price:
        stripe_client(url).v1.checkout.sessions.create(
            params={**CHECKOUT_PARAMS, "line_items": [{"price": "x"}]}
        )
    assert no_price.value.code == "resource_missing"
    assert state(url)["checkout_sessions"] == []


def test_stripe_requires_a_test_mode_secret_key(url: str) -> None:
    with pytest.raises(stripe.AuthenticationError):
        stripe_client(url, key="sk_live_abc123").v1.checkout.sessions.create(params=CHECKOUT_PARAMS)
    missing = requests.post(f"{url}/v1/checkout/sessions", data={"mode": "setup"}, timeout=5)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "invalid_request_error"
    assert "API key" in missing.json()["error"]["message"]


def test_stripe_python_sends_the_correlation_header_and_survives_a_lost_response(url: str) -> None:
    # How create_checkout calls Stripe: short timeout, no SDK retries, the request id as idempotency key.
    client = stripe.StripeClient(
        STRIPE_KEY,
        base_addresses={"api": url},
        http_client=stripe.RequestsClient(timeout=0.3),
        max_network_retries=0,
    )
    options: stripe.RequestOptions = {
        "idempotency_key": "req-1",
        "headers": {"X-Correlation-Id": "corr-checkout1"},
    }
    add_fault(url, provider="stripe", mode="lost_response", seconds=1.5)
    with pytest.raises(stripe.APIConnectionError):
        client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options=options)
    session = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options=options)
    assert [s["id"] for s in state(url)["checkout_sessions"]] == [session.id]
    assert [(e["correlation_id"], e["fault"], e["replayed"]) for e in recorded(url, "stripe")] == [
        ("corr-checkout1", "lost_response", False),
        ("corr-checkout1", None, True),
    ]


# --- recording -----------------------------------------------------------------------------------


def test_every_request_is_recorded_with_secrets_redacted(url: str) -> None:
    send_email(url, email_payload(), auth={**RESEND_AUTH, "X-Correlation-Id": "corr-12345678"})
    create_ticket(url, ticket_payload())
    stripe_client(url).v1.checkout.sessions.create(params=CHECKOUT_PARAMS)

    entries = recorded(url)
    assert [entry["provider"] for entry in entries] == ["resend", "zendesk", "stripe"]
    email = entries[0]
    assert email["method"] == "POST" and email["path"] == "/emails" and email["status"] == 200
    assert email["body"] == email_payload()
    assert email["idempotency_key"] == "ack/SR-1"
    assert email["correlation_id"] == "corr-12345678"
    assert email["headers"]["Authorization"] == "Bearer [redacted]"
    assert entries[1]["headers"]["Authorization"] == "Basic [redacted]"
    assert email["credential_sha256"] == credential_digest(RESEND_AUTH["Authorization"])
    assert email["credential_sha256"] != credential_digest("Bearer another_key")
    dumped = json.dumps(entries)
    for secret in ("re_test_key", STRIPE_KEY, ZENDESK_AUTH["Authorization"].split()[1]):
        assert secret not in dumped
    assert [entry["provider"] for entry in recorded(url, "zendesk")] == ["zendesk"]


def test_reset_forgets_state_requests_and_faults(url: str) -> None:
    create_ticket(url, ticket_payload())
    add_fault(url, provider="resend", mode="status", status=500)
    assert requests.post(f"{url}/_sandbox/reset", timeout=5).json() == {"reset": True}
    assert state(url) == {"contacts": [], "gdpr_deleted": [], "tickets": [], "emails": [],
                          "checkout_sessions": [], "subscriptions": [], "customers": [], "invoices": [],
                          "charges": [], "stripe_events": [], "app_store_subscriptions": [],
                          "app_store_notifications": [], "play_subscriptions": [], "play_notifications": []}
    assert recorded(url) == []
    assert requests.get(f"{url}/_sandbox/faults", timeout=5).json() == {"faults": []}
    # Idempotency keys are forgotten too: the same key creates a fresh ticket.
    assert create_ticket(url, ticket_payload()).headers["x-idempotency-lookup"] == "miss"


# --- fault injection -----------------------------------------------------------------------------


def test_status_fault_answers_in_provider_shape_without_applying(url: str) -> None:
    add_fault(url, provider="resend", mode="status", status=429, count=2)
    for _ in range(2):
        answer = send_email(url, email_payload())
        assert answer.status_code == 429
        assert answer.json()["name"] == "rate_limit_exceeded"
        assert answer.headers["Retry-After"] == "1"
    assert state(url)["emails"] == []
    assert send_email(url, email_payload()).status_code == 200  # the fault is used up
    assert [entry["fault"] for entry in recorded(url)] == ["status", "status", None]


def test_status_fault_can_carry_a_provider_error_code(url: str) -> None:
    add_fault(url, provider="resend", mode="status", status=409, code="concurrent_idempotent_requests")
    answer = send_email(url, email_payload())
    assert answer.status_code == 409 and answer.json()["name"] == "concurrent_idempotent_requests"


def test_fault_path_filter_only_hits_matching_requests(url: str) -> None:
    add_fault(url, provider="zendesk", path="/api/v2/users", mode="status", status=500)
    assert create_ticket(url, ticket_payload()).status_code == 201
    assert len(requests.get(f"{url}/_sandbox/faults", timeout=5).json()["faults"]) == 1


@pytest.mark.parametrize(
    ("provider", "send"),
    [
        ("hubspot", lambda url: hubspot_upsert(url, [contact_input("ada@example.com")])),
        ("zendesk", lambda url: create_ticket(url, ticket_payload())),
        ("resend", lambda url: send_email(url, email_payload())),
        ("stripe", lambda url: requests.post(f"{url}/v1/checkout/sessions", timeout=5)),
    ],
)
def test_server_error_fault_uses_each_providers_error_shape(url: str, provider: str, send) -> None:
    add_fault(url, provider=provider, mode="status", status=503)
    answer = send(url)
    assert answer.status_code == 503
    body = answer.json()
    shape = {"hubspot": "category", "zendesk": "error", "resend": "name", "stripe": "error"}[provider]
    assert shape in body
    assert all(not rows for rows in state(url).values())


def test_delay_fault_times_the_client_out_and_applies_nothing(url: str) -> None:
    add_fault(url, provider="zendesk", mode="delay", seconds=1.5)
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        post_keyed(f"{url}/api/v2/tickets.json", ticket_payload(), "sr-1", ZENDESK_AUTH, timeout=0.3)
    assert time.monotonic() - started < 1.4
    assert state(url)["tickets"] == []
    assert recorded(url)[0]["fault"] == "delay"
    # Nothing was stored under the key either: the retry creates the ticket.
    assert create_ticket(url, ticket_payload()).headers["x-idempotency-lookup"] == "miss"


def test_delay_fault_answers_504_to_a_patient_client(url: str) -> None:
    add_fault(url, provider="resend", mode="delay", seconds=0.2)
    answer = send_email(url, email_payload())
    assert answer.status_code == 504
    assert state(url)["emails"] == []


def test_lost_response_applies_the_call_but_the_client_times_out(url: str) -> None:
    add_fault(url, provider="resend", mode="lost_response", seconds=1.5)
    with pytest.raises(requests.Timeout):
        post_keyed(f"{url}/emails", email_payload(), "ack/SR-1", RESEND_AUTH, timeout=0.3)
    assert len(state(url)["emails"]) == 1
    retry = send_email(url, email_payload())
    assert retry.json()["id"] == state(url)["emails"][0]["id"]
    assert [entry["fault"] for entry in recorded(url)] == ["lost_response", None]


def test_lost_response_closes_the_connection_for_a_patient_client(url: str) -> None:
    add_fault(url, provider="zendesk", mode="lost_response", seconds=0.1)
    with pytest.raises(requests.ConnectionError):
        create_ticket(url, ticket_payload())
    assert len(state(url)["tickets"]) == 1


@pytest.mark.parametrize(
    "spec",
    [
        {"provider": "mailchimp", "mode": "status"},
        {"provider": "resend", "mode": "explode"},
        {"provider": "resend", "mode": "status", "status": 200},
        {"provider": "resend", "mode": "status", "count": 0},
        {"provider": "resend", "mode": "delay", "seconds": "soon"},
    ],
)
def test_invalid_faults_are_rejected(url: str, spec: dict) -> None:
    answer = requests.post(f"{url}/_sandbox/faults", json=spec, timeout=5)
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_fault"


# --- building blocks -------------------------------------------------------------------------------


def test_decode_form_reads_stripe_bracket_notation() -> None:
    text = (
        "mode=subscription&line_items[0][price]=price_a&line_items[0][quantity]=2"
        "&line_items[1][price]=price_b&metadata[uid]=u1&payment_method_types[]=card&payment_method_types[]=link"
        "&subscription_data[metadata][plan]=pro"
    )
    assert decode_form(text) == {
        "mode": "subscription",
        "line_items": [{"price": "price_a", "quantity": "2"}, {"price": "price_b"}],
        "metadata": {"uid": "u1"},
        "payment_method_types": ["card", "link"],
        "subscription_data": {"metadata": {"plan": "pro"}},
    }


def test_idempotency_store_expires_keys_after_their_ttl() -> None:
    store = IdempotencyStore(ttl_seconds=60, clock=lambda: 0.0)
    key_print = fingerprint("POST", "/emails", {"a": 1})
    store.store("k", key_print, SandboxResponse(200, {"id": "x"}), now=1000)
    replay = store.lookup("k", key_print, now=1059).response
    assert replay is not None and replay.body == {"id": "x"}
    assert store.lookup("k", fingerprint("POST", "/emails", {"a": 2}), now=1059).conflict
    assert store.lookup("k", key_print, now=1061).response is None


def test_fingerprint_ignores_json_key_order() -> None:
    assert fingerprint("POST", "/x", {"a": 1, "b": 2}) == fingerprint("POST", "/x", {"b": 2, "a": 1})


# --- command line --------------------------------------------------------------------------------


def test_command_line_prints_its_url_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "tools", "sandbox", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("http://127.0.0.1:")
        assert requests.get(line, timeout=5).json()["status"] == "ok"
        os.killpg(process.pid, signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


# --- clock, idempotency windows, in-flight keys ------------------------------------------------------


def advance(url: str, seconds: float) -> requests.Response:
    return requests.post(f"{url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=5)


def test_the_clock_moves_forward_only_and_reset_puts_it_back(url: str) -> None:
    before = requests.get(f"{url}/_sandbox/clock", timeout=5).json()
    moved = advance(url, 3600).json()
    assert moved["offset_seconds"] == 3600 and moved["now"] - before["now"] >= 3600
    for bad in ({"advance_seconds": -1}, {"advance_seconds": "1h"}, {}):
        answer = requests.post(f"{url}/_sandbox/clock", json=bad, timeout=5)
        assert answer.status_code == 400 and answer.json()["error"] == "invalid_clock"
    requests.post(f"{url}/_sandbox/reset", timeout=5)
    assert requests.get(f"{url}/_sandbox/clock", timeout=5).json()["offset_seconds"] == 0


@pytest.mark.parametrize(
    ("send", "window_hours"),
    [
        (lambda url: create_ticket(url, ticket_payload()), 2),  # Zendesk keeps keys two hours
        (lambda url: send_email(url, email_payload()), 24),  # Resend: 24 hours
    ],
    ids=["zendesk", "resend"],
)
def test_idempotency_keys_expire_after_the_providers_window(url: str, send, window_hours: int) -> None:
    send(url)
    advance(url, window_hours * 3600 - 60)
    assert send(url).status_code in (200, 201) and len([r for r in recorded(url) if r["replayed"]]) == 1
    advance(url, 120)
    send(url)
    assert sum(len(rows) for rows in state(url).values()) == 2  # the forgotten key created a second one


def test_stripe_saves_a_500_under_the_key_and_replays_it(url: str) -> None:
    add_fault(url, provider="stripe", mode="status", status=500)
    client = stripe_client(url)
    for _ in range(2):
        with pytest.raises(stripe.APIError) as failure:
            client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options={"idempotency_key": "req-1"})
        assert failure.value.http_status == 500
    assert [(e["status"], e["replayed"]) for e in recorded(url, "stripe")] == [(500, False), (500, True)]
    # A new key is a new request; after 24 h the old key is forgotten too.
    client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options={"idempotency_key": "req-2"})
    advance(url, 24 * 3600 + 1)
    client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS, options={"idempotency_key": "req-1"})
    assert len(state(url)["checkout_sessions"]) == 2


def test_a_status_fault_can_apply_the_call_before_failing(url: str) -> None:
    add_fault(url, provider="stripe", mode="status", status=500, apply=True)
    with pytest.raises(stripe.APIError):
        stripe_client(url).v1.checkout.sessions.create(params=CHECKOUT_PARAMS,
                                                       options={"idempotency_key": "k"})
    assert len(state(url)["checkout_sessions"]) == 1


@pytest.mark.parametrize(
    ("provider", "send", "conflict"),
    [
        ("stripe", lambda url, timeout: requests.post(
            f"{url}/v1/checkout/sessions", data={"mode": "setup"}, timeout=timeout,
            headers={"Authorization": f"Bearer {STRIPE_KEY}", "Idempotency-Key": "k1"}),
         lambda body: body["error"]["code"] == "idempotency_key_in_use"),
        ("resend", lambda url, timeout: post_keyed(f"{url}/emails", email_payload(), "k1", RESEND_AUTH,
                                                   timeout=timeout),
         lambda body: body["name"] == "concurrent_idempotent_requests"),
    ],
)
def test_a_second_request_while_the_key_is_in_flight_gets_409(
    url: str, provider: str, send, conflict
) -> None:
    add_fault(url, provider=provider, mode="delay", seconds=1.0)
    with pytest.raises(requests.Timeout):
        send(url, 0.2)  # the first request is still being answered
    second = send(url, 5)
    assert second.status_code == 409 and conflict(second.json())
    time.sleep(1.0)  # the first request finished (with a 504, nothing applied): the key is free again
    assert send(url, 5).status_code == 200


def test_stripe_lists_sessions_newest_first_with_filters_and_expiry(url: str) -> None:
    client = stripe_client(url)
    first = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS)
    advance(url, 10)
    second = client.v1.checkout.sessions.create(params=CHECKOUT_PARAMS)
    page = client.v1.checkout.sessions.list(params={"limit": 1})
    assert [s.id for s in page.data] == [second.id] and page.has_more
    assert [s.id for s in page.auto_paging_iter()] == [second.id, first.id]
    recent = client.v1.checkout.sessions.list(params={"created": {"gte": second.created}})
    assert [s.id for s in recent.data] == [second.id]
    advance(url, 24 * 3600)
    assert client.v1.checkout.sessions.retrieve(first.id).status == "expired"


# --- HubSpot's portal: defined properties and options, forward-only lifecycle --------------------------


def test_hubspot_rejects_an_unknown_property_and_an_undefined_option(url: str) -> None:
    answer = hubspot_upsert(url, [contact_input("ada@example.com", favourite_colour="blue")])
    assert answer.status_code == 400 and answer.json()["subCategory"] == "PROPERTY_DOESNT_EXIST"
    answer = hubspot_upsert(url, [contact_input("ada@example.com", launchready_tags="signed_up;vip")])
    assert answer.status_code == 400 and answer.json()["subCategory"] == "INVALID_OPTION"
    assert state(url)["contacts"] == []
    # A portal admin adds the option; now it is accepted.
    definition = {"name": "launchready_tags", "type": "enumeration", "fieldType": "checkbox",
                  "options": ["signed_up", "vip"]}
    assert requests.post(f"{url}/_sandbox/hubspot/properties", json=definition, timeout=5).status_code == 201
    assert hubspot_upsert(url, [contact_input("ada@example.com", launchready_tags="signed_up;vip")]).ok
    listed = requests.get(f"{url}/_sandbox/hubspot/properties", timeout=5).json()["properties"]
    names = [definition["name"] for definition in listed]
    assert "launchready_tags" in names and "lifecyclestage" in names


def test_hubspot_lifecycle_stage_only_moves_forward_unless_cleared(url: str) -> None:
    def stage_after(value: str) -> str:
        return hubspot_upsert(url, [contact_input("ada@example.com", lifecyclestage=value)]).json()[
            "results"][0]["properties"]["lifecyclestage"]

    assert stage_after("lead") == "lead"
    assert stage_after("customer") == "customer"
    assert stage_after("lead") == "customer"  # backwards is not applied
    assert stage_after("") == ""
    assert stage_after("lead") == "lead"  # after clearing, any stage


@pytest.mark.parametrize("path", ["/crm/v3/objects/contacts/batch/upsert",
                                  "/crm/objects/2026-03/contacts/batch/upsert"])
def test_hubspot_still_serves_the_older_versions(url: str, path: str) -> None:
    answer = requests.post(f"{url}{path}", json={"inputs": [contact_input("ada@example.com")]},
                           headers=HUBSPOT_AUTH, timeout=5)
    assert answer.status_code == 200


@pytest.mark.parametrize(
    ("fault", "status", "retry_after"),
    [
        ({"provider": "hubspot", "mode": "status", "status": 423}, 423, None),
        ({"provider": "hubspot", "mode": "status", "status": 477}, 477, "3600"),
        ({"provider": "hubspot", "mode": "status", "status": 477, "retry_after": 60}, 477, "60"),
    ],
)
def test_hubspot_423_and_477_are_injectable(
    url: str, fault: dict, status: int, retry_after: str | None
) -> None:
    add_fault(url, **fault)
    answer = hubspot_upsert(url, [contact_input("ada@example.com")])
    assert answer.status_code == status and answer.json()["status"] == "error"
    assert answer.headers.get("Retry-After") == retry_after
    assert state(url)["contacts"] == []


def test_hubspot_daily_limit_names_its_policy(url: str) -> None:
    add_fault(url, provider="hubspot", mode="status", status=429, code="DAILY")
    body = hubspot_upsert(url, [contact_input("ada@example.com")]).json()
    assert (body["errorType"], body["policyName"]) == ("RATE_LIMIT", "DAILY")


def test_resend_quota_errors_are_injectable_in_resends_shape(url: str) -> None:
    add_fault(url, provider="resend", mode="status", status=429, code="daily_quota_exceeded")
    answer = send_email(url, email_payload())
    assert answer.status_code == 429
    assert answer.json() == {"statusCode": 429, "name": "daily_quota_exceeded",
                             "message": "You have reached your daily email sending quota."}
    assert state(url)["emails"] == []


@pytest.mark.parametrize("spec", [{"provider": "hubspot", "mode": "status", "retry_after": -1},
                                  {"provider": "hubspot", "mode": "status", "apply": "yes"}])
def test_invalid_retry_after_or_apply_is_rejected(url: str, spec: dict) -> None:
    assert requests.post(f"{url}/_sandbox/faults", json=spec, timeout=5).status_code == 400
