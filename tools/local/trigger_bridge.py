"""Firestore trigger bridge: the local stand-in for each Firestore function's Eventarc trigger.

One event id per document event however often it is seen; failed deliveries retried (docs/tools.md).
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

import requests
from google.cloud import firestore
from google.cloud.firestore_v1 import _helpers
from google.cloud.firestore_v1.types import Document

CREATED = "google.cloud.firestore.document.v1.created"
DELETED = "google.cloud.firestore.document.v1.deleted"
EVENT_TYPES = {"created": CREATED, "deleted": DELETED}
DATA_SCHEMA = (
    "https://github.com/googleapis/google-cloudevents/blob/main/proto/google/events/cloud/"
    "firestore/v1/data.proto"
)
_TOP_LEVEL_PATTERN = re.compile(r"^([A-Za-z0-9_-]+)/\{[A-Za-z0-9_]+\}$")
# Eventarc keeps retrying for up to 24 h; these are the push subscriptions' bounds (catalog.json).
MIN_BACKOFF_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 600.0
RETRY_WINDOW_SECONDS = 24 * 3600
DELIVERY_TIMEOUT_SECONDS = 60.0
EMULATOR_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class Target:
    function: str
    document_pattern: str
    url: str
    event: str = "created"  # a key of EVENT_TYPES

    @property
    def collection(self) -> str:
        match = _TOP_LEVEL_PATTERN.match(self.document_pattern)
        if not match:
            raise SystemExit(
                f"{self.function}: only top-level 'collection/{{id}}' patterns are bridged locally, "
                f"not {self.document_pattern!r}"
            )
        return match.group(1)

    @classmethod
    def parse(cls, value: str) -> Target:
        """FUNCTION=[EVENT:]PATTERN=URL"""
        function, pattern, url = value.split("=", 2)
        event, _, bare = pattern.rpartition(":")
        if event and event not in EVENT_TYPES:
            raise SystemExit(f"{function}: unknown event {event!r} (one of {', '.join(EVENT_TYPES)})")
        return cls(function, bare, url, event or "created")


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def document_event_data(
    name: str, data: dict[str, Any], create_time: datetime, update_time: datetime, *, deleted: bool = False
) -> bytes:
    """google.events.cloud.firestore.v1.DocumentEventData: for a creation only field 1 (`value`, a
    google.firestore.v1.Document) is set, for a deletion only field 2 (`old_value`, the document before
    the delete); the other fields are absent as in the cloud."""
    document = Document(
        name=name, fields=_helpers.encode_dict(data), create_time=create_time, update_time=update_time
    )
    encoded = Document.serialize(document)
    tag = b"\x12" if deleted else b"\x0a"  # (field number << 3) | wire type 2
    return tag + _varint(len(encoded)) + encoded


def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(order=True)
class Delivery:
    due: float
    event_id: str = field(compare=False)
    url: str = field(compare=False)
    headers: dict[str, str] = field(compare=False)
    body: bytes = field(compare=False)
    first_try: float = field(compare=False)
    attempt: int = field(default=1, compare=False)


def created_event(project: str, target: Target, snapshot: Any) -> Delivery:
    return document_event(project, target, snapshot, deleted=False)


def deleted_event(project: str, target: Target, snapshot: Any, read_time: datetime) -> Delivery:
    """`snapshot` is the document as it was before the delete (the listener's REMOVED change)."""
    return document_event(project, target, snapshot, deleted=True, event_time=read_time)


def document_event(
    project: str, target: Target, snapshot: Any, *, deleted: bool, event_time: datetime | None = None
) -> Delivery:
    relative = snapshot.reference.path  # users/<uid>
    database = f"projects/{project}/databases/(default)"
    name = f"{database}/documents/{relative}"
    create_time = snapshot.create_time
    # A document is created once per create time; the version a delete removed is named by its update time.
    version = f"deleted@{_rfc3339(snapshot.update_time)}" if deleted else _rfc3339(create_time)
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{name}@{version}"))
    headers = {
        "Content-Type": "application/protobuf",
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-type": DELETED if deleted else CREATED,
        "ce-source": f"//firestore.googleapis.com/{database}",
        "ce-subject": f"documents/{relative}",
        "ce-time": _rfc3339(event_time or create_time),
        "ce-dataschema": DATA_SCHEMA,
        # Firestore's CloudEvent extension attributes.
        "ce-project": project,
        "ce-database": "(default)",
        "ce-namespace": "(default)",
        "ce-document": relative,
        "ce-location": "local",
    }
    body = document_event_data(
        name, snapshot.to_dict() or {}, create_time, snapshot.update_time, deleted=deleted
    )
    now = time.monotonic()
    return Delivery(now, event_id, target.url, headers, body, now)


def _log(severity: str, message: str, **fields: Any) -> None:
    print(json.dumps({"severity": severity, "message": message, **fields}, default=str), flush=True)


class Bridge:
    def __init__(self, project: str, targets: list[Target]) -> None:
        self.project = project
        self.targets = targets
        self.client = firestore.Client(project=project)
        self._queue: list[Delivery] = []
        self._seen: set[str] = set()
        self._wake = threading.Condition()
        self._stopping = threading.Event()
        self._watches: list[Any] = []
        self._first_snapshots: list[threading.Event] = []

    def start(self) -> None:
        threading.Thread(target=self._deliver_forever, name="deliveries", daemon=True).start()
        for target in self.targets:
            self._watches.append(
                self.client.collection(target.collection).on_snapshot(self._listener(target))
            )
        for first in self._first_snapshots:
            if not first.wait(timeout=60):
                raise SystemExit("no first snapshot from the Firestore emulator within 60 s")
        _log("INFO", "trigger bridge ready", targets=[t.function for t in self.targets])

    def stop(self) -> None:
        self._stopping.set()
        for watch in self._watches:
            watch.unsubscribe()
        with self._wake:
            self._wake.notify_all()

    def _listener(self, target: Target):  # type: ignore[no-untyped-def]
        first = threading.Event()
        self._first_snapshots.append(first)

        def on_snapshot(snapshots: Any, changes: Any, read_time: Any) -> None:
            for change in changes:
                if change.type.name == "ADDED" and target.event == "created":
                    self._enqueue(created_event(self.project, target, change.document))
                elif change.type.name == "REMOVED" and target.event == "deleted":
                    self._enqueue(deleted_event(self.project, target, change.document, read_time))
            first.set()

        return on_snapshot

    def _enqueue(self, delivery: Delivery) -> None:
        with self._wake:
            if delivery.event_id in self._seen:
                return  # the listener re-announced a document it already reported
            self._seen.add(delivery.event_id)
            heapq.heappush(self._queue, delivery)
            self._wake.notify()

    def _deliver_forever(self) -> None:
        session = requests.Session()
        while not self._stopping.is_set():
            with self._wake:
                while not self._stopping.is_set() and (
                    not self._queue or self._queue[0].due > time.monotonic()
                ):
                    self._wake.wait(timeout=(self._queue[0].due - time.monotonic()) if self._queue else None)
                if self._stopping.is_set():
                    return
                delivery = heapq.heappop(self._queue)
            self._send(session, delivery)

    def _send(self, session: requests.Session, delivery: Delivery) -> None:
        started = time.monotonic()
        try:
            status = session.post(
                delivery.url, data=delivery.body, headers=delivery.headers, timeout=DELIVERY_TIMEOUT_SECONDS
            ).status_code
            error = None
        except requests.RequestException as exc:
            status, error = None, repr(exc)
        fields = {
            "event_id": delivery.event_id,
            "document": delivery.headers["ce-document"],
            "attempt": delivery.attempt,
            "status": status,
            "latency_ms": round((time.monotonic() - started) * 1000),
        }
        if status is not None and 200 <= status < 300:
            _log("INFO", "event delivered", **fields)
            return
        backoff = min(MAX_BACKOFF_SECONDS, MIN_BACKOFF_SECONDS * 2 ** (delivery.attempt - 1))
        if time.monotonic() + backoff - delivery.first_try > RETRY_WINDOW_SECONDS:
            _log("ERROR", "event dropped after the retry window", error=error, **fields)
            return
        _log("WARNING", "event delivery failed, will retry", error=error, retry_in_s=backoff, **fields)
        delivery.attempt += 1
        delivery.due = time.monotonic() + backoff
        with self._wake:
            heapq.heappush(self._queue, delivery)
            self._wake.notify()


def wait_for_emulator(host: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(f"http://{host}/", timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the Firestore emulator at {host} did not answer within {timeout:.0f} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.trigger_bridge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--target",
        action="append",
        required=True,
        metavar="FUNCTION=[EVENT:]PATTERN=URL",
        help="e.g. user_created=users/{uid}=http://127.0.0.1:8613/ or "
        "user_deleted=deleted:users/{uid}=http://127.0.0.1:8614/ (EVENT: created or deleted)",
    )
    args = parser.parse_args(argv)
    if not os.environ.get("FIRESTORE_EMULATOR_HOST"):
        raise SystemExit("FIRESTORE_EMULATOR_HOST is not set: the bridge only ever watches the emulator")
    project = os.environ.get("GOOGLE_CLOUD_PROJECT", "demo-launchready")
    # Started together with the emulator (imports overlap its start-up), so wait for it here.
    wait_for_emulator(os.environ["FIRESTORE_EMULATOR_HOST"], EMULATOR_WAIT_SECONDS)
    bridge = Bridge(project, [Target.parse(value) for value in args.target])
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    bridge.start()
    stopped.wait()
    bridge.stop()


if __name__ == "__main__":
    main()
