"""Push relay: the Pub/Sub emulator's push endpoint for every worker.

The emulator honours a subscription's retry and dead-letter policies but leaves `deliveryAttempt` out
of push requests, which the cloud includes whenever a dead-letter policy is set. The workers use it to
record a dead letter on the last attempt, so the relay counts deliveries per (subscription, message id),
adds the field and forwards the request unchanged otherwise. The worker's status code goes back to the
emulator as is, so acks, retries and dead-lettering stay the emulator's.

`python -m tools.local.push_relay --port P --route billing_worker=http://127.0.0.1:8614/ ...`
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import cast

HOST = "127.0.0.1"
MAX_TRACKED_MESSAGES = 100_000


class DeliveryCounter:
    """Deliveries seen per (subscription, message id); the oldest entries are forgotten first."""

    def __init__(self, limit: int = MAX_TRACKED_MESSAGES) -> None:
        self._counts: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def next_attempt(self, subscription: str, message_id: str) -> int:
        key = (subscription, message_id)
        with self._lock:
            count = self._counts.pop(key, 0) + 1
            self._counts[key] = count
            while len(self._counts) > self._limit:
                self._counts.popitem(last=False)
            return count


def add_delivery_attempt(body: bytes, counter: DeliveryCounter) -> tuple[bytes, int | None]:
    """The envelope with deliveryAttempt set (kept if the emulator ever sends it), and the attempt."""
    try:
        envelope = json.loads(body)
        message_id = str(envelope["message"].get("messageId") or envelope["message"].get("message_id"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return body, None  # not an envelope: let the worker reject it
    if "deliveryAttempt" not in envelope:
        envelope["deliveryAttempt"] = counter.next_attempt(str(envelope.get("subscription", "")), message_id)
    return json.dumps(envelope).encode(), int(envelope["deliveryAttempt"])


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, routes: dict[str, str], timeout: float) -> None:
        self.routes = routes
        self.forward_timeout = timeout
        self.counter = DeliveryCounter()
        super().__init__((HOST, port), _Handler)


class _Handler(BaseHTTPRequestHandler):
    @property
    def relay(self) -> RelayServer:
        return cast(RelayServer, self.server)

    def do_GET(self) -> None:
        self._answer(200, json.dumps({"status": "ok", "routes": self.relay.routes}).encode())

    def do_POST(self) -> None:
        function = self.path.strip("/").split("?")[0]
        target = self.relay.routes.get(function)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if target is None:
            self._answer(404, b'{"error":"no such route"}')
            return
        body, attempt = add_delivery_attempt(body, self.relay.counter)
        started = time.monotonic()
        request = urllib.request.Request(
            target,
            data=body,
            method="POST",
            headers={"Content-Type": self.headers.get("Content-Type", "application/json")},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.relay.forward_timeout) as response:
                status, answer = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, answer = exc.code, exc.read()
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            # Like an unreachable push endpoint in the cloud: a failed delivery, retried with backoff.
            status, answer = 502, json.dumps({"error": f"worker unreachable: {exc}"}).encode()
        _log(
            function=function,
            delivery_attempt=attempt,
            status=status,
            latency_ms=round((time.monotonic() - started) * 1000),
        )
        self._answer(status, answer)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one structured line per delivery instead


def _log(**fields: object) -> None:
    print(json.dumps({"severity": "INFO", "message": "push delivered", **fields}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.push_relay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--route", action="append", default=[], metavar="FUNCTION=URL")
    parser.add_argument("--timeout", type=float, default=60, help="seconds (the subscription's ack deadline)")
    args = parser.parse_args(argv)
    routes = dict(route.split("=", 1) for route in args.route)
    server = RelayServer(args.port, routes, args.timeout)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"push relay on http://{HOST}:{args.port} for {', '.join(routes)}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
