"""support_request on the Firestore, Pub/Sub and Auth emulators, with ID tokens the Auth emulator issued."""

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import flask.testing
import pytest
import requests
from firebase_admin import auth
from google.cloud import firestore
from launchready.handlers.support_request import REFERENCE_ALPHABET, reference_candidates
from launchready.platform.clients import firebase_app
from launchready.platform.ledger import Ledger

from tests.conftest import PROJECT
from tests.functions.helpers import Subscription, firestore_documents, function_app, id_token

pytestmark = pytest.mark.runs_as("support_request")

TOPIC = "support"


# --- helpers -------------------------------------------------------------------------------------

def unsigned_token(**claims: Any) -> str:
    """A token shaped like the Auth emulator's (alg none), with the claims a forger would choose."""
    now = int(time.time())
    payload = {"iss": f"https://securetoken.google.com/{PROJECT}", "aud": PROJECT, "auth_time": now,
               "iat": now, "exp": now + 3600, "sub": "forged-uid", "user_id": "forged-uid",
               "email": "mallory@example.com", "firebase": {"identities": {}, "sign_in_provider": "password"},
               **claims}

    def segment(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{segment({'alg': 'none', 'typ': 'JWT'})}.{segment(payload)}."


def support_body(**overrides: Any) -> dict[str, Any]:
    return {"subject": "Invoice shows the wrong company name",
            "message": "Please change it to Analytical Ltd.", "category": "billing",
            "client_request_id": str(uuid.uuid4()), **overrides}


def store_unpublished_request(db: firestore.Client, uid: str, body: dict[str, Any], created_at: Any) -> str:
    """The request document a first attempt stored (under its first-choice reference, returned) before it
    published."""
    reference = reference_candidates(uid, body["client_request_id"])[0]
    db.collection("support_requests").document(reference).create({
        "reference": reference, "uid": uid, "email": "ada@example.com", "name": "Ada Lovelace",
        "subject": body["subject"], "message": body["message"], "category": "billing",
        "client_request_id": body["client_request_id"], "status": "received",
        "created_at": created_at, "correlation_id": "corr-first-attempt"})
    return reference


# --- fixtures ------------------------------------------------------------------------------------

@pytest.fixture
def client(tmp_path: Path, clean_firestore: str, pubsub_emulator: str,
           auth_emulator: str) -> flask.testing.FlaskClient:
    return function_app(tmp_path, "support_request").test_client()


def submit(client: flask.testing.FlaskClient, token: str, body: dict[str, Any] | str, **headers: str) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post("/", data=data, content_type="application/json",
                       headers={"Authorization": f"Bearer {token}", **headers})


# --- accepted requests ---------------------------------------------------------------------------

def test_a_request_is_stored_once_published_and_answered_with_a_reference(
        client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    uid, token = user
    body = support_body()

    response = submit(client, token, body, **{"X-Correlation-Id": "corr-support-0001"})

    assert response.status_code == 202
    answer = response.get_json()
    reference = answer["reference"]
    assert reference == reference_candidates(uid, body["client_request_id"])[0]
    assert answer["status"] == "received" and "@example.com" in answer["next_steps"]
    stored = db.collection("support_requests").document(reference).get().to_dict() or {}
    assert {key: stored[key] for key in ("uid", "subject", "message", "category", "client_request_id",
                                         "reference", "status", "correlation_id", "name")} == {
        "uid": uid, "subject": body["subject"], "message": body["message"], "category": "billing",
        "client_request_id": body["client_request_id"], "reference": reference, "status": "received",
        "correlation_id": "corr-support-0001", "name": "Ada Lovelace"}
    assert stored["email"].endswith("ada@example.com") and stored["created_at"] is not None
    [message] = support_topic.drain()
    data = json.loads(message.data)
    assert set(data) == {"reference", "uid", "email", "name", "subject", "message", "category", "created_at"}
    assert (data["reference"], data["uid"], data["email"]) == (reference, uid, stored["email"])
    assert data["created_at"] == stored["created_at"].isoformat()
    assert dict(message.attributes) == {"event_id": f"support:{reference}",
                                        "correlation_id": "corr-support-0001", "source_topic": TOPIC}


def test_a_replay_returns_the_same_reference_and_publishes_nothing_new(
        client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    _, token = user
    body = support_body(category="bug")

    first = submit(client, token, body)
    # The client retries with the same id, spelled in upper case this time.
    replay = submit(client, token, {**body, "client_request_id": body["client_request_id"].upper()})

    assert first.status_code == replay.status_code == 202
    assert replay.get_json() == first.get_json()
    assert len(support_topic.drain()) == 1
    assert len(list(db.collection("support_requests").stream())) == 1


@pytest.mark.parametrize("changed", [{"subject": "Another subject"}, {"message": "Another message."},
                                     {"category": "account"}])
def test_the_same_client_request_id_with_other_content_is_a_conflict_and_changes_nothing(
        changed: dict[str, str], client: flask.testing.FlaskClient, user: tuple[str, str],
        support_topic: Subscription, db: firestore.Client) -> None:
    _, token = user
    body = support_body()
    first = submit(client, token, body)
    reference = first.get_json()["reference"]

    conflict = submit(client, token, {**body, **changed})

    assert conflict.status_code == 409
    error = conflict.get_json()["error"]
    assert (error["code"], error["reference"], error["fields"]) == ("idempotency_conflict", reference,
                                                                     list(changed))
    assert f"{next(iter(changed))} differ" in error["message"]
    stored = db.collection("support_requests").document(reference).get().to_dict() or {}
    assert (stored["subject"], stored["message"], stored["category"]) == (
        body["subject"], body["message"], body["category"])
    assert len(support_topic.drain()) == 1
    # The original request replayed unchanged still gets its reference.
    again = submit(client, token, body)
    assert (again.status_code, again.get_json()["reference"]) == (202, reference)


def test_a_replay_with_surrounding_spaces_in_the_subject_is_the_same_request(
        client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription) -> None:
    _, token = user
    body = support_body()
    first = submit(client, token, body)

    replay = submit(client, token, {**body, "subject": f"  {body['subject']} "})

    assert (replay.status_code, replay.get_json()) == (202, first.get_json())


def test_concurrent_replays_create_one_request_and_publish_once(
        client: flask.testing.FlaskClient, tmp_path: Path, user: tuple[str, str],
        support_topic: Subscription, db: firestore.Client) -> None:
    _, token = user
    body = support_body(category="account")
    app = function_app(tmp_path, "support_request")

    def attempt(_: int) -> tuple[int, str]:
        response = submit(app.test_client(), token, body)
        answer = response.get_json()
        return response.status_code, answer.get("reference") or answer["error"]["code"]

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(10)))

    references = {reference for status, reference in outcomes if status == 202}
    assert len(references) == 1, outcomes
    # A concurrent attempt may be told the request is being submitted; it is never a second request.
    assert {status for status, _ in outcomes} <= {202, 409}, outcomes
    assert len(support_topic.drain()) == 1
    assert len(list(db.collection("support_requests").stream())) == 1


def test_a_request_whose_first_publish_never_completed_is_published_by_the_replay(
        client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    uid, token = user
    body = support_body()
    # The first attempt stored the request two minutes ago, then its instance died before publishing.
    reference = store_unpublished_request(db, uid, body, created_at=datetime.now(UTC) - timedelta(minutes=2))

    replay = submit(client, token, body)

    assert (replay.status_code, replay.get_json()["reference"]) == (202, reference)
    [message] = support_topic.drain()
    assert message.attributes["event_id"] == f"support:{reference}"
    assert Ledger(db).step_result(f"support:{reference}", "publish") is not None
    assert submit(client, token, body).status_code == 202
    assert support_topic.drain() == []


def test_a_replay_while_the_first_attempt_may_still_be_publishing_is_told_to_retry(
        client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    uid, token = user
    body = support_body()
    # Stored just now: the first attempt may still be publishing.
    reference = store_unpublished_request(db, uid, body, created_at=firestore.SERVER_TIMESTAMP)

    replay = submit(client, token, body)

    assert replay.status_code == 409
    assert replay.get_json()["error"] == {"code": "request_in_progress", "reference": reference,
                                          "message": "this request is already being submitted; retry shortly"}
    assert support_topic.drain() == []


def test_two_users_with_the_same_client_request_id_get_two_requests(
        client: flask.testing.FlaskClient, auth_emulator: str, support_topic: Subscription,
        db: firestore.Client) -> None:
    body = support_body()
    (_, ada), (_, grace) = id_token(auth_emulator), id_token(auth_emulator, email="grace@example.com")

    first, second = submit(client, ada, body), submit(client, grace, body)

    assert first.get_json()["reference"] != second.get_json()["reference"]
    assert len(support_topic.drain()) == 2


def test_a_reference_taken_by_another_request_probes_to_the_next(
        client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    uid, token = user
    body = support_body()
    first_choice, second_choice = reference_candidates(uid, body["client_request_id"])[:2]
    db.collection("support_requests").document(first_choice).create(
        {"reference": first_choice, "uid": "someone-else", "client_request_id": str(uuid.uuid4())})

    response = submit(client, token, body)

    assert response.get_json()["reference"] == second_choice
    assert submit(client, token, body).get_json()["reference"] == second_choice
    assert len(support_topic.drain()) == 1


def test_references_are_six_unambiguous_characters() -> None:
    references = {reference_candidates(f"uid-{n}", str(uuid.uuid4()))[0] for n in range(500)}

    assert len(references) == 500
    for reference in references:
        assert reference.startswith("SR-") and len(reference) == 9
        assert set(reference[3:]) <= set(REFERENCE_ALPHABET) and not set(reference[3:]) & set("ILOU")
    assert reference_candidates("uid-1", "a")[0] == reference_candidates("uid-1", "a")[0]


# --- rejections: a clear 4xx, nothing written, nothing published ---------------------------------

INVALID_BODIES = {
    "empty subject": support_body(subject=""),
    "blank subject": support_body(subject="   "),
    "subject over 150 characters": support_body(subject="x" * 151),
    "message over 5000 characters": support_body(message="x" * 5001),
    "empty message": support_body(message=""),
    "unknown category": support_body(category="refund"),
    "client_request_id not a UUID": support_body(client_request_id="retry-1"),
    "missing client_request_id": {key: value for key, value in support_body().items()
                                  if key != "client_request_id"},
    "unexpected field": support_body(priority="urgent"),
    "subject not a string": support_body(subject=42),
}


@pytest.mark.parametrize("case", list(INVALID_BODIES))
def test_invalid_input_is_rejected_and_nothing_is_written(
        case: str, client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    response = submit(client, user[1], INVALID_BODIES[case])

    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request" and error["errors"]
    assert firestore_documents(db) == {}
    assert support_topic.drain() == []


def test_the_error_names_the_offending_field(client: flask.testing.FlaskClient,
                                             user: tuple[str, str]) -> None:
    error = submit(client, user[1], support_body(category="refund")).get_json()["error"]

    assert [item["field"] for item in error["errors"]] == ["category"]


REQUEST_REJECTIONS = {
    "malformed JSON": ('{"subject": "Hi", ', "application/json", 400, "malformed_json"),
    "JSON that is not an object": ('["subject"]', "application/json", 400, "malformed_json"),
    "wrong content type": (json.dumps(support_body()), "text/plain", 415, "unsupported_media_type"),
    "body over 16 KiB": (json.dumps(support_body(message="x" * 17_000)), "application/json", 413,
                         "body_too_large"),
}


@pytest.mark.parametrize("case", list(REQUEST_REJECTIONS))
def test_unreadable_requests_are_rejected_and_nothing_is_written(
        case: str, client: flask.testing.FlaskClient, user: tuple[str, str], support_topic: Subscription,
        db: firestore.Client) -> None:
    data, content_type, status, code = REQUEST_REJECTIONS[case]

    response = client.post("/", data=data, content_type=content_type,
                           headers={"Authorization": f"Bearer {user[1]}"})

    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code
    assert firestore_documents(db) == {}
    assert support_topic.drain() == []


def _expired_token_of_a_real_user(auth_host: str) -> str:
    """A token issued two hours ago to an account whose tokens are valid since three hours ago."""
    uid, _ = id_token(auth_host)
    now = int(time.time())
    requests.post(f"http://{auth_host}/identitytoolkit.googleapis.com/v1/projects/{PROJECT}/accounts:update",
                  json={"localId": uid, "validSince": str(now - 3 * 3600)},
                  headers={"Authorization": "Bearer owner"}, timeout=10).raise_for_status()
    return unsigned_token(sub=uid, user_id=uid, iat=now - 7200, auth_time=now - 7200, exp=now - 3600)


TOKEN_REJECTIONS = {
    "no Authorization header": (lambda host: None, "missing_id_token"),
    "not a bearer token": (lambda host: "Basic YWRhOnNlY3JldA==", "missing_id_token"),
    "garbage token": (lambda host: "Bearer not-a-jwt", "invalid_id_token"),
    "token for a user that does not exist": (lambda host: f"Bearer {unsigned_token()}", "invalid_id_token"),
    "token for another project": (lambda host: "Bearer " + unsigned_token(
        aud="someone-elses-app", iss="https://securetoken.google.com/someone-elses-app"), "invalid_id_token"),
    "expired token": (lambda host: f"Bearer {_expired_token_of_a_real_user(host)}", "invalid_id_token"),
}


@pytest.mark.parametrize("case", list(TOKEN_REJECTIONS))
def test_requests_without_a_valid_id_token_are_rejected_and_nothing_is_written(
        case: str, client: flask.testing.FlaskClient, auth_emulator: str, support_topic: Subscription,
        db: firestore.Client) -> None:
    make_header, code = TOKEN_REJECTIONS[case]
    header = make_header(auth_emulator)

    response = client.post("/", data=json.dumps(support_body()), content_type="application/json",
                           headers={"Authorization": header} if header else {})

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == code
    assert firestore_documents(db) == {}
    assert support_topic.drain() == []


def test_a_revoked_token_is_rejected(client: flask.testing.FlaskClient, user: tuple[str, str],
                                     support_topic: Subscription, db: firestore.Client) -> None:
    uid, token = user
    time.sleep(1.1)  # revocation is recorded in whole seconds: revoke strictly after the sign-in
    auth.revoke_refresh_tokens(uid, app=firebase_app())

    response = submit(client, token, support_body())

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "revoked_id_token"
    assert firestore_documents(db) == {}
    assert support_topic.drain() == []


def test_an_account_without_email_cannot_file_a_request(
        client: flask.testing.FlaskClient, auth_emulator: str, support_topic: Subscription,
        db: firestore.Client) -> None:
    response = requests.post(
        f"http://{auth_emulator}/identitytoolkit.googleapis.com/v1/accounts:signUp?key=fake-api-key",
        json={"returnSecureToken": True}, timeout=10)  # an anonymous account
    response.raise_for_status()

    answer = submit(client, response.json()["idToken"], support_body())

    assert answer.status_code == 403
    assert answer.get_json()["error"]["code"] == "email_required"
    assert firestore_documents(db) == {}
    assert support_topic.drain() == []


def test_get_answers_health(client: flask.testing.FlaskClient) -> None:
    assert client.get("/").get_json() == {"status": "ok", "function": "support_request"}
