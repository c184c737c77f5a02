"""Fixtures of the store sandbox tests: a receiver that plays the app's server for pushed notifications."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

import pytest
import requests


@dataclass
class Receiver:
    """An HTTP endpoint on 127.0.0.1 that records each JSON body POSTed to it and answers `status`;
    `on_receive`, when set, runs (in the request's thread) before it answers."""

    url: str = ""
    status: int = 200
    bodies: list[Any] = field(default_factory=list)
    on_receive: Callable[[Any], None] | None = None


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        receiver = cast(Any, self.server).receiver
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"null")
        receiver.bodies.append(body)
        if receiver.on_receive is not None:
            receiver.on_receive(body)
        payload = b'{"received": true}'
        self.send_response(receiver.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    made = Receiver(url=f"http://127.0.0.1:{server.server_address[1]}/apple/notifications")
    cast(Any, server).receiver = made
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield made
    server.shutdown()
    server.server_close()


def store_control(url: str, store: str, path: str, body: dict[str, Any] | None = None,
                  status: int = 200) -> dict[str, Any]:
    """POST to a store's control endpoint /_sandbox/<store><path>, expecting `status`."""
    answer = requests.post(f"{url}/_sandbox/{store}{path}", json=body or {}, timeout=30)
    assert answer.status_code == status, answer.text
    return answer.json()
