"""The Firestore trigger bridge against the Firestore emulator: one binary-mode CloudEvent per created
document, shaped like Eventarc's (protobuf DocumentEventData), under a stable id."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import cast

import pytest
from google.cloud import firestore
from google.events.cloud.firestore import DocumentEventData

from tools.local.trigger_bridge import Bridge, Target

PROJECT = "demo-launchready"


class Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        self.events: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    @property
    def receiver(self) -> Receiver:
        return cast(Receiver, self.server)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.receiver.events.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _wait_for(receiver: Receiver, count: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while len(receiver.events) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def test_created_document_arrives_as_a_firestore_cloud_event(
    clean_firestore: str, receiver: Receiver
) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/"
    bridge = Bridge(PROJECT, [Target("user_created", "users/{uid}", url)])
    bridge.start()
    try:
        document = firestore.Client(project=PROJECT).collection("users").document("uid-1")
        document.create({"email": "ada@example.com", "marketing_opt_in": True, "locale": "en"})
        _wait_for(receiver, 1)
        document.update({"locale": "de"})  # an update is not a creation: nothing is sent
        time.sleep(1.5)
    finally:
        bridge.stop()
    assert len(receiver.events) == 1
    headers, body = receiver.events[0]
    database = f"projects/{PROJECT}/databases/(default)"
    assert headers["ce-type"] == "google.cloud.firestore.document.v1.created"
    assert headers["ce-subject"] == "documents/users/uid-1"
    assert headers["ce-source"] == f"//firestore.googleapis.com/{database}"
    assert headers["ce-specversion"] == "1.0" and headers["content-type"] == "application/protobuf"
    assert headers["ce-document"] == "users/uid-1" and headers["ce-database"] == "(default)"
    # Decoded with Google's published DocumentEventData: a created document has a value, no old_value.
    payload = DocumentEventData.deserialize(body)
    assert "value" in payload and "old_value" not in payload
    value = payload.value
    assert value.name == f"{database}/documents/users/uid-1"
    assert value.fields["email"].string_value == "ada@example.com"
    assert value.fields["marketing_opt_in"].boolean_value is True


def test_event_id_is_stable_for_the_same_document(clean_firestore: str, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/"
    firestore.Client(project=PROJECT).collection("users").document("uid-2").create({"email": "b@example.com"})
    # Two bridges (e.g. a restart) both see the existing document: same CloudEvent id, so the
    # function's ledger treats the second as a redelivery.
    for _ in range(2):
        bridge = Bridge(PROJECT, [Target("user_created", "users/{uid}", url)])
        bridge.start()
        _wait_for(receiver, len(receiver.events) + 1, timeout=10)
        bridge.stop()
    ids = [headers["ce-id"] for headers, _ in receiver.events]
    assert len(ids) == 2 and ids[0] == ids[1]


def test_deleted_document_arrives_with_its_old_value(clean_firestore: str, receiver: Receiver) -> None:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/"
    document = firestore.Client(project=PROJECT).collection("users").document("uid-3")
    document.create({"email": "c@example.com", "billing": {"customer_id": "cus_Deleted1"}})
    bridge = Bridge(PROJECT, [Target.parse(f"user_deleted=deleted:users/{{uid}}={url}")])
    bridge.start()
    try:
        time.sleep(1)  # the existing document is not a deletion: nothing is sent for it
        assert receiver.events == []
        document.delete()
        _wait_for(receiver, 1)
        time.sleep(1)
    finally:
        bridge.stop()
    [(headers, body)] = receiver.events
    database = f"projects/{PROJECT}/databases/(default)"
    assert headers["ce-type"] == "google.cloud.firestore.document.v1.deleted"
    assert headers["ce-subject"] == "documents/users/uid-3"
    # Decoded with Google's published DocumentEventData: a deleted document has an old_value only.
    payload = DocumentEventData.deserialize(body)
    assert "old_value" in payload and "value" not in payload
    old_value = payload.old_value
    assert old_value.name == f"{database}/documents/users/uid-3"
    assert old_value.fields["email"].string_value == "c@example.com"
    assert old_value.fields["billing"].map_value.fields["customer_id"].string_value == "cus_Deleted1"


def test_a_created_target_ignores_deletions_and_parse_defaults_to_created() -> None:
    assert Target.parse("user_created=users/{uid}=http://127.0.0.1:1/").event == "created"
    target = Target.parse("user_deleted=deleted:users/{uid}=http://127.0.0.1:1/?a=b")
    assert (target.event, target.document_pattern, target.url) == (
        "deleted", "users/{uid}", "http://127.0.0.1:1/?a=b")
    with pytest.raises(SystemExit):
        Target.parse("x=updated:users/{uid}=http://127.0.0.1:1/")
