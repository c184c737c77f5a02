"""create_checkout with stripe-python against the provider sandbox's Stripe API over real HTTP, ID tokens
from the Auth emulator and user profiles on the Firestore emulator."""

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask.testing
import pytest
from google.cloud import firestore
from launchready.platform.config import settings

from tests.functions.helpers import Sandbox, firestore_documents, function_app

pytestmark = pytest.mark.runs_as("create_checkout")

API_KEY = "sk_test_" + "4eC39HqLyjWDarjtT1zdp7dc"
PRICES = ("price_1PstarterMonthly", "price_1PproYearly")
APP_URL = "https://app.example.com"


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox]) -> Sandbox:
    return provider_sandbox("stripe", STRIPE_API_KEY=API_KEY, STRIPE_PRICE_ID=",".join(PRICES),
                            APP_URL=APP_URL)


@pytest.fixture
def client(tmp_path: Path, clean_firestore: str, auth_emulator: str,
           sandbox: Sandbox) -> flask.testing.FlaskClient:
    return function_app(tmp_path, "create_checkout").test_client()


def checkout(client: flask.testing.FlaskClient, token: str, body: dict[str, Any] | str) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post("/", data=data, content_type="application/json",
                       headers={"Authorization": f"Bearer {token}"})


def new_request(**fields: Any) -> dict[str, Any]:
    return {"client_request_id": str(uuid.uuid4()), **fields}


# --- sessions ------------------------------------------------------------------------------------

def test_a_subscription_session_is_created_for_the_signed_in_user(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox,
        db: firestore.Client) -> None:
    uid, token = user
    body = new_request()

    response = checkout(client, token, body)

    assert response.status_code == 200
    answer = response.get_json()
    assert answer["id"].startswith("cs_test_") and answer["url"] == f"{sandbox.url}/c/pay/{answer['id']}"
    [sent] = sandbox.recorded()
    assert (sent["method"], sent["path"], sent["status"]) == ("POST", "/v1/checkout/sessions", 200)
    assert sent["headers"]["Authorization"] == "Bearer [redacted]"
    assert sent["idempotency_key"] == f"checkout:{uid}:{body['client_request_id']}"
    params = sent["body"]
    assert params["mode"] == "subscription"
    assert params["line_items"] == [{"price": PRICES[0], "quantity": "1"}]
    assert params["client_reference_id"] == uid
    assert params["metadata"] == {"uid": uid, "client_request_id": body["client_request_id"]}
    assert params["subscription_data"] == {"metadata": {"uid": uid}}
    assert params["customer_email"].endswith("ada@example.com") and "customer" not in params
    assert params["success_url"] == f"{APP_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert params["cancel_url"] == f"{APP_URL}/billing/cancel"
    # Checkout records only the request and its session; the webhook records the outcome.
    [(path, record)] = firestore_documents(db).items()
    assert path == f"checkout_requests/{uid}:{body['client_request_id']}"
    assert (record["session_id"], record["attempt"], record["price_id"]) == (answer["id"], 1, PRICES[0])


def test_a_retried_request_returns_the_same_session(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox) -> None:
    body = new_request(price_id=PRICES[1])

    first, retry = checkout(client, user[1], body), checkout(client, user[1], body)

    assert first.status_code == retry.status_code == 200
    assert retry.get_json() == first.get_json()
    assert len(sandbox.state()["checkout_sessions"]) == 1
    # The retry finds the recorded session; it does not depend on Stripe's 24-hour idempotency key.
    assert [(sent["method"], sent["path"]) for sent in sandbox.recorded()] == [
        ("POST", "/v1/checkout/sessions"), ("GET", f"/v1/checkout/sessions/{first.get_json()['id']}")]


def test_an_allowed_price_can_be_chosen(client: flask.testing.FlaskClient, user: tuple[str, str],
                                        sandbox: Sandbox) -> None:
    assert checkout(client, user[1], new_request(price_id=PRICES[1])).status_code == 200
    assert sandbox.recorded()[0]["body"]["line_items"] == [{"price": PRICES[1], "quantity": "1"}]


def test_a_returning_customer_pays_on_their_existing_stripe_customer(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox,
        db: firestore.Client) -> None:
    uid, token = user
    db.collection("users").document(uid).set(
        {"email": "ada@example.com", "billing": {"status": "canceled", "customer_id": "cus_Qabc123"}})

    assert checkout(client, token, new_request()).status_code == 200
    params = sandbox.recorded()[0]["body"]
    assert params["customer"] == "cus_Qabc123" and "customer_email" not in params


def test_the_same_request_id_for_a_different_checkout_is_a_conflict(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox) -> None:
    body = new_request(price_id=PRICES[0])
    checkout(client, user[1], body)

    response = checkout(client, user[1], {**body, "price_id": PRICES[1]})

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_conflict"
    assert len(sandbox.state()["checkout_sessions"]) == 1


# --- Stripe failures -----------------------------------------------------------------------------

@pytest.mark.parametrize(("fault", "code"), [
    pytest.param({"mode": "status", "status": 503, "count": 2}, "stripe_unavailable", id="5xx"),
    pytest.param({"mode": "status", "status": 429, "count": 2}, "stripe_unavailable", id="rate limited"),
    pytest.param({"mode": "delay", "seconds": 2, "count": 2}, "stripe_unavailable", id="timeout"),
    pytest.param({"mode": "status", "status": 400, "code": "resource_missing",
                  "message": "No such price: 'price_1PstarterMonthly'"}, "stripe_rejected",
                 id="price deleted"),
])
def test_stripe_failures_answer_502_with_a_code(
        fault: dict[str, Any], code: str, client: flask.testing.FlaskClient, user: tuple[str, str],
        sandbox: Sandbox) -> None:
    sandbox.fault(**fault)

    response = checkout(client, user[1], new_request())

    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == code
    assert sandbox.state()["checkout_sessions"] == []


def test_a_live_or_wrong_api_key_is_reported_as_misconfiguration(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_API_KEY", "sk_live_" + "x" * 24)

    response = checkout(client, user[1], new_request())

    assert response.status_code == 502
    assert response.get_json()["error"]["code"] == "stripe_misconfigured"


def test_without_configured_prices_checkout_is_unavailable(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STRIPE_PRICE_ID", "")
    settings.cache_clear()

    response = checkout(client, user[1], new_request(price_id=PRICES[0]))

    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "checkout_not_configured"
    assert sandbox.recorded() == []


# --- rejections: a clear 4xx, nothing sent to Stripe, nothing written ----------------------------

REJECTIONS = {
    "price not in the allow-list": (new_request(price_id="price_1PsomethingElse"), 400, "price_not_allowed"),
    "missing client_request_id": ({}, 400, "invalid_request"),
    "client_request_id not a UUID": ({"client_request_id": "tap-1"}, 400, "invalid_request"),
    "price_id not a Stripe price id": (new_request(price_id="prod_123"), 400, "invalid_request"),
    "unexpected field": (new_request(quantity=3), 400, "invalid_request"),
    "malformed JSON": ('{"client_request_id": ', 400, "malformed_json"),
    "oversized body": (json.dumps(new_request(padding="x" * 9000)), 413, "body_too_large"),
}


@pytest.mark.parametrize("case", list(REJECTIONS))
def test_invalid_requests_are_rejected_before_stripe_is_called(
        case: str, client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox,
        db: firestore.Client) -> None:
    body, status, code = REJECTIONS[case]

    response = checkout(client, user[1], body)

    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert sandbox.recorded() == []
    assert firestore_documents(db) == {}


def test_wrong_content_type_is_rejected(client: flask.testing.FlaskClient, user: tuple[str, str],
                                        sandbox: Sandbox) -> None:
    response = client.post("/", data=json.dumps(new_request()),
                           content_type="application/x-www-form-urlencoded",
                           headers={"Authorization": f"Bearer {user[1]}"})

    assert response.status_code == 415
    assert response.get_json()["error"]["code"] == "unsupported_media_type"
    assert sandbox.recorded() == []


@pytest.mark.parametrize(("authorization", "code"), [
    pytest.param(None, "missing_id_token", id="no token"),
    pytest.param("Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.", "invalid_id_token", id="forged token"),
])
def test_requests_without_a_valid_id_token_are_rejected(
        authorization: str | None, code: str, client: flask.testing.FlaskClient, sandbox: Sandbox,
        db: firestore.Client) -> None:
    response = client.post("/", data=json.dumps(new_request()), content_type="application/json",
                           headers={"Authorization": authorization} if authorization else {})

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code
    assert sandbox.recorded() == []
    assert firestore_documents(db) == {}


# --- retries after a failure Stripe may have saved -----------------------------------------------

def test_a_retry_after_a_saved_stripe_500_gets_a_working_checkout(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox) -> None:
    uid, token = user
    body = new_request()
    # Stripe saves a 500 under the idempotency key and replays it for 24 h.
    sandbox.fault(mode="status", status=500)

    failed = checkout(client, token, body)
    retry = checkout(client, token, body)

    assert failed.status_code == 502 and failed.get_json()["error"]["retryable"] is True
    assert retry.status_code == 200
    [session] = sandbox.state()["checkout_sessions"]
    assert retry.get_json()["id"] == session["id"]
    creates = [sent for sent in sandbox.recorded() if sent["method"] == "POST"]
    key = f"checkout:{uid}:{body['client_request_id']}"
    # The SDK's own retry got Stripe's saved 500 back; the app's retry used the next attempt's key.
    assert [(sent["idempotency_key"], sent["status"], sent["replayed"]) for sent in creates] == [
        (key, 500, False), (key, 500, True), (f"{key}:2", 200, False)]


def test_a_session_created_despite_the_500_is_found_not_created_again(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox) -> None:
    body = new_request()
    sandbox.fault(mode="status", status=500, apply=True)  # the session exists, the answer is a 500

    assert checkout(client, user[1], body).status_code == 502
    retry = checkout(client, user[1], body)

    [session] = sandbox.state()["checkout_sessions"]
    assert retry.status_code == 200 and retry.get_json()["id"] == session["id"]
    # The SDK's retry got the saved 500; the app's retry looked the session up instead of creating one.
    assert [(sent["method"], sent["replayed"]) for sent in sandbox.recorded()] == [
        ("POST", False), ("POST", True), ("GET", False)]


def test_a_lost_answer_then_a_retry_returns_the_session_created_meanwhile(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox) -> None:
    body = new_request()
    sandbox.fault(mode="lost_response", seconds=3, count=2)  # also eats the SDK's own retry

    assert checkout(client, user[1], body).status_code == 502
    retry = checkout(client, user[1], body)

    [session] = sandbox.state()["checkout_sessions"]
    assert retry.status_code == 200 and retry.get_json()["id"] == session["id"]


def test_a_retry_after_the_session_expired_gets_a_new_working_session(
        client: flask.testing.FlaskClient, user: tuple[str, str], sandbox: Sandbox) -> None:
    body = new_request()
    first = checkout(client, user[1], body).get_json()
    sandbox.advance_clock(25 * 3600)  # Checkout Sessions expire after 24 h, and so does Stripe's key

    retry = checkout(client, user[1], body)

    assert retry.status_code == 200 and retry.get_json()["id"] != first["id"]
    statuses = sorted(session["status"] for session in sandbox.state()["checkout_sessions"])
    assert statuses == ["expired", "open"]


@pytest.mark.parametrize(("fault", "code", "retryable"), [
    pytest.param({"mode": "status", "status": 409, "code": "idempotency_key_in_use"}, "stripe_unavailable",
                 True, id="key in flight"),
    pytest.param({"mode": "status", "status": 429, "code": "lock_timeout"}, "stripe_unavailable", True,
                 id="lock timeout"),
    pytest.param({"mode": "status", "status": 403}, "stripe_misconfigured", False, id="restricted key"),
])
def test_stripe_failures_follow_stripes_documented_classes(
        fault: dict[str, Any], code: str, retryable: bool, client: flask.testing.FlaskClient,
        user: tuple[str, str], sandbox: Sandbox) -> None:
    sandbox.fault(count=2, **fault)  # the SDK's own retry meets it too

    response = checkout(client, user[1], new_request())

    assert response.status_code == 502
    error = response.get_json()["error"]
    assert (error["code"], error["retryable"]) == (code, retryable)


def test_every_stripe_failure_row_cites_stripes_docs() -> None:
    from launchready.providers import stripe as stripe_api

    assert all(rule.doc.startswith("https://docs.stripe.com/") for rule in stripe_api.FAILURES.values())
