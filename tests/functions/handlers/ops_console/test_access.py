"""Who can load the ops console, CSRF protection of its POSTs, and replaying a dead letter from it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flask
import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore
from launchready.handlers.ops_console import queries
from launchready.handlers.ops_console.access import csrf_token_for, mask_email
from launchready.platform.clients import firebase_app
from launchready.records.ops import record_dead_letter

from tests.conftest import PROJECT
from tests.functions.handlers.ops_console.fixtures import seed_payment, seed_problems
from tests.functions.helpers import Subscription, decoded, function_app

pytestmark = pytest.mark.runs_as("ops_console")

HOST = "console.test"
ORIGIN = f"http://{HOST}"
DATA_PAGES = ["/ops/", "/ops/timeline", "/ops/journey/abc", "/ops/customer?q=ada@example.com", "/ops/sandbox"]


@pytest.fixture
def console(tmp_path: Path) -> flask.Flask:
    return function_app(tmp_path, "ops_console")


def sign_in(auth_host: str, claims: dict[str, Any] | None) -> str:
    """An ID token from the Auth emulator for a new password user with `claims`."""
    email, password = f"{uuid.uuid4().hex[:8]}@example.com", uuid.uuid4().hex
    user = auth.create_user(email=email, password=password, app=firebase_app())
    if claims:
        auth.set_custom_user_claims(user.uid, claims, app=firebase_app())
    response = requests.post(
        f"http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=fake-api-key",
        json={"email": email, "password": password, "returnSecureToken": True},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["idToken"]


def unsigned_token(project: str, uid: str, **claims: Any) -> str:
    """A token shaped like the Auth emulator's (alg none), for another project or a missing user."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    now = int(time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project}",
        "aud": project,
        "sub": uid,
        "user_id": uid,
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        "firebase": {"identities": {}, "sign_in_provider": "password"},
        **claims,
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.fixture
def operator_token(auth_emulator: str) -> str:
    return sign_in(auth_emulator, {"ops": True})


@pytest.fixture
def seeded(db: firestore.Client) -> dict[str, Any]:
    seed_payment(db, uid="u-ada", email="ada.lovelace@example.com", customer="cus_ada")
    return seed_problems(db)


def get(console: flask.Flask, path: str, token: str | None = None, *, cookie: bool = False) -> Any:
    client = console.test_client()
    headers = {}
    if token and cookie:
        client.set_cookie("__session", token, domain=HOST)
    elif token:
        headers["Authorization"] = f"Bearer {token}"
    return client.get(path, headers=headers, base_url=ORIGIN)


def assert_nothing_leaks(response: Any) -> None:
    body = response.get_data(as_text=True)
    for secret in ("ada", "u-ada", "cus_ada", "crm_worker", "hubspot"):
        assert secret not in body.lower(), f"{secret!r} in a refused answer"


@pytest.mark.parametrize("path", DATA_PAGES)
def test_without_a_token_every_page_is_401_and_shows_nothing(
    console: flask.Flask, seeded: dict[str, Any], path: str
) -> None:
    response = get(console, path)
    assert response.status_code == 401
    assert response.headers["Cache-Control"] == "private, no-store"
    assert_nothing_leaks(response)


@pytest.mark.parametrize("path", DATA_PAGES)
def test_a_signed_in_user_without_the_ops_role_gets_403(
    console: flask.Flask, seeded: dict[str, Any], auth_emulator: str, path: str
) -> None:
    token = sign_in(auth_emulator, {"pro": True, "admin": True})
    for cookie in (False, True):
        response = get(console, path, token, cookie=cookie)
        assert response.status_code == 403
        assert_nothing_leaks(response)


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(unsigned_token("another-project", "u-ops", ops=True), id="another-projects-token"),
        pytest.param(unsigned_token(PROJECT, "no-such-user", ops=True), id="token-of-no-existing-user"),
        pytest.param("not-a-jwt", id="garbage"),
    ],
)
def test_tokens_not_of_an_existing_user_of_this_project_get_401(
    console: flask.Flask, seeded: dict[str, Any], auth_emulator: str, token: str
) -> None:
    for cookie in (False, True):
        response = get(console, "/ops/", token, cookie=cookie)
        assert response.status_code == 401
        assert_nothing_leaks(response)


def test_the_health_answer_and_sign_in_page_need_no_token_and_hold_no_data(
    console: flask.Flask, seeded: dict[str, Any]
) -> None:
    health = get(console, "/ops/healthz")
    assert health.status_code == 200 and health.get_json() == {"status": "ok", "function": "ops_console"}
    signin = get(console, "/ops/signin")
    assert signin.status_code == 200
    assert_nothing_leaks(signin)


def test_an_operator_sees_health_attention_and_the_timeline_with_masked_emails(
    console: flask.Flask, seeded: dict[str, Any], operator_token: str
) -> None:
    response = get(console, "/ops/", operator_token, cookie=True)
    assert response.status_code == 200, response.get_data(as_text=True)
    page = response.get_data(as_text=True)
    for part in ('id="health"', 'id="attention"', 'id="timeline"', "crm_worker", seeded["record_id"]):
        assert part in page
    customer = get(console, "/ops/customer?q=cus_ada", operator_token).get_data(as_text=True)
    assert "ada.lovelace@example.com" in customer  # the customer asked for, in full
    assert mask_email("ada.lovelace@example.com") == "a***@example.com"


def test_sign_in_sets_an_httponly_strict_session_cookie_for_operators_only(
    console: flask.Flask, auth_emulator: str, operator_token: str
) -> None:
    client = console.test_client()
    ok = client.post(
        "/ops/session",
        data={"id_token": operator_token, "next": "/ops/timeline"},
        headers={"Origin": ORIGIN},
        base_url=ORIGIN,
    )
    assert ok.status_code == 303 and ok.headers["Location"] == "/ops/timeline"
    cookie = ok.headers["Set-Cookie"]
    assert cookie.startswith("__session=") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    not_ops = sign_in(auth_emulator, None)
    refused = client.post(
        "/ops/session", data={"id_token": not_ops}, headers={"Origin": ORIGIN}, base_url=ORIGIN
    )
    assert refused.status_code == 403 and "Set-Cookie" not in refused.headers
    cross_site = client.post(
        "/ops/session",
        data={"id_token": operator_token},
        headers={"Origin": "https://evil.example"},
        base_url=ORIGIN,
    )
    assert cross_site.status_code == 403 and "Set-Cookie" not in cross_site.headers
    open_redirect = client.post(
        "/ops/session",
        data={"id_token": operator_token, "next": "//evil.example/"},
        headers={"Origin": ORIGIN},
        base_url=ORIGIN,
    )
    assert open_redirect.headers["Location"] == "/ops/"


@pytest.fixture
def crm_sync(subscribe: Callable[[str], Subscription]) -> Subscription:
    return subscribe("crm-sync")


def test_replay_needs_same_origin_and_the_form_token_then_publishes_once_with_an_audit_record(
    console: flask.Flask,
    db: firestore.Client,
    seeded: dict[str, Any],
    operator_token: str,
    crm_sync: Subscription,
) -> None:
    client = console.test_client()
    client.set_cookie("__session", operator_token, domain=HOST)
    path = f"/ops/dead-letters/{seeded['record_id']}/replay"
    good = {"csrf_token": csrf_token_for(operator_token)}
    refused = [
        client.post(path, data=good, base_url=ORIGIN),  # no Origin or Referer
        client.post(path, data=good, headers={"Origin": "https://evil.example"}, base_url=ORIGIN),
        client.post(path, data={}, headers={"Origin": ORIGIN}, base_url=ORIGIN),
        client.post(
            path,
            data={"csrf_token": csrf_token_for("another-session")},
            headers={"Origin": ORIGIN},
            base_url=ORIGIN,
        ),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    record = db.collection("dead_letters").document(seeded["record_id"]).get().to_dict() or {}
    assert record["status"] == "open" and not list(db.collection("ops_audit").stream())

    done = client.post(path, data=good, headers={"Origin": ORIGIN}, base_url=ORIGIN)
    assert done.status_code == 303
    assert done.headers["Location"].startswith(f"/ops/journey/{seeded['correlation_id']}?notice=")
    messages = crm_sync.drain()
    assert len(messages) == 1
    message = messages[0]
    assert decoded(message)["uid"] == "u-dead"
    attributes = dict(message.attributes)
    assert (
        attributes["event_id"] == seeded["event_id"]
        and attributes["correlation_id"] == seeded["correlation_id"]
    )
    assert attributes["replayed_from"] == seeded["record_id"]
    assert not any(name.startswith("CloudPubSubDeadLetter") for name in attributes)
    record = db.collection("dead_letters").document(seeded["record_id"]).get().to_dict() or {}
    assert record["status"] == "replayed" and record["replay_message_id"] == message.message_id
    audits = [doc.to_dict() or {} for doc in db.collection("ops_audit").stream()]
    assert len(audits) == 1
    assert audits[0]["action"] == "replay_dead_letter" and audits[0]["dead_letter"] == seeded["record_id"]
    assert audits[0]["actor_uid"] and audits[0]["actor_email"].endswith("@example.com")
    listed = queries.attention(db)
    assert [d["_id"] for d in listed["replayed"]] == [seeded["record_id"]]
    assert seeded["record_id"] not in [d["_id"] for d in listed["dead_letters"]]

    again = client.post(path, data=good, headers={"Origin": ORIGIN}, base_url=ORIGIN)
    assert again.status_code == 409
    assert crm_sync.drain() == [] and len(list(db.collection("ops_audit").stream())) == 1
    missing = client.post(
        "/ops/dead-letters/nope/replay", data=good, headers={"Origin": ORIGIN}, base_url=ORIGIN
    )
    assert missing.status_code == 404


def test_recorded_values_are_escaped_in_pages_and_in_the_confirmation_script(
    console: flask.Flask, db: firestore.Client, seeded: dict[str, Any], operator_token: str
) -> None:
    hostile = "x'); alert(1); ('<script>alert(2)</script>"
    record_dead_letter(
        function="crm_worker",
        event_id=hostile,
        message_id="m-1",
        attempts=5,
        error=hostile,
        topic=hostile,
        data={},
        attributes={},
    )
    page = get(console, "/ops/", operator_token).get_data(as_text=True)
    assert "<script>alert(2)" not in page and "alert(1); ('" not in page
    assert "\\u0027); alert(1)" in page  # the topic inside confirm() is a JSON string with quotes escaped
