"""Push relay: the Pub/Sub emulator's push endpoint for every worker, adding `deliveryAttempt` and backoff.

Acks, retries and dead-lettering stay the emulator's: the worker's status goes back unchanged (docs/tools.md).
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
    """Deliveries seen per (subscription, message id), and when the last one failed; the oldest
    entries are forgotten first."""

    def __init__(self, limit: int = MAX_TRACKED_MESSAGES) -> None:
        self._counts: collections.OrderedDict[tuple[str, str], int] = collections.OrderedDict()
        self._failed_at: dict[tuple[str, str], float] = {}
        self._limit = limit
        self._lock = threading.Lock()

    def next_attempt(self, subscription: str, message_id: str) -> int:
        key = (subscription, message_id)
        with self._lock:
            count = self._counts.pop(key, 0) + 1
            self._counts[key] = count
            while len(self._counts) > self._limit:
                oldest, _ = self._counts.popitem(last=False)
                self._failed_at.pop(oldest, None)
            return count

    def failed(self, subscription: str, message_id: str) -> None:
        with self._lock:
            self._failed_at[(subscription, message_id)] = time.monotonic()

    def wait_before_retry(self, subscription: str, message_id: str, min_backoff: float) -> float:
        """Seconds still to wait so this redelivery comes at least `min_backoff` after the last failure."""
        with self._lock:
            failed_at = self._failed_at.get((subscription, message_id))
        if failed_at is None:
            return 0.0
        return max(0.0, min_backoff - (time.monotonic() - failed_at))


def message_key(body: bytes) -> tuple[str, str] | None:
    """(subscription, message id) of a push envelope, or None for a body that is not one."""
    try:
        envelope = json.loads(body)
        message_id = str(envelope["message"].get("messageId") or envelope["message"].get("message_id"))
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    return str(envelope.get("subscription", "")), message_id


def add_delivery_attempt(body: bytes, counter: DeliveryCounter) -> tuple[bytes, int | None]:
    """The envelope with deliveryAttempt set (kept if the emulator ever sends it), and the attempt."""
    key = message_key(body)
    if key is None:
        return body, None  # not an envelope: let the worker reject it
    envelope = json.loads(body)
    if "deliveryAttempt" not in envelope:
        envelope["deliveryAttempt"] = counter.next_attempt(*key)
    return json.dumps(envelope).encode(), int(envelope["deliveryAttempt"])


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, routes: dict[str, str], timeout: float, *, min_backoff: float = 0.0,
                 max_attempts: int | None = None) -> None:
        self.routes = routes
        self.forward_timeout = timeout
        self.min_backoff = min_backoff
        self.max_attempts = max_attempts
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
        key = message_key(body)
        held = 0.0
        if key is not None:
            # The cloud would not redeliver before the minimum backoff; the emulator does.
            held = self.relay.counter.wait_before_retry(*key, self.relay.min_backoff)
            time.sleep(held)
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
        if key is not None and not 200 <= status < 300:
            self.relay.counter.failed(*key)
        fields: dict[str, object] = {
            "function": function,
            "delivery_attempt": attempt,
            "status": status,
            "latency_ms": round((time.monotonic() - started) * 1000),
        }
        if held:
            fields["held_for_backoff_s"] = round(held, 1)
        _log(delivery_outcome(status, attempt, self.relay.max_attempts, self.relay.min_backoff), **fields)
        self._answer(status, answer)

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # one structured line per delivery instead


def delivery_outcome(status: int, attempt: int | None, max_attempts: int | None,
                     min_backoff: float) -> tuple[str, str]:
    """(severity, message) for one delivery, in docs/local.md's terms."""
    if 200 <= status < 300:
        return "INFO", "push acknowledged: the worker answered 2xx, Pub/Sub will not redeliver"
    who = "the worker is unreachable" if status == 502 else f"the worker answered {status}"
    if attempt is not None and max_attempts is not None and attempt >= max_attempts:
        return "WARNING", (f"push failed, {who}; last attempt ({attempt} of {max_attempts}): "
                           "Pub/Sub moves the message to the dead-letter topic")
    of = f" of {max_attempts}" if max_attempts else ""
    return "WARNING", (f"push failed, {who}; attempt {attempt or '?'}{of}: Pub/Sub redelivers "
                       f"after at least {min_backoff:g} s")


def _log(outcome: tuple[str, str], **fields: object) -> None:
    severity, message = outcome
    print(json.dumps({"severity": severity, "message": message, **fields}), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.local.push_relay",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--route", action="append", default=[], metavar="FUNCTION=URL")
    parser.add_argument("--timeout", type=float, default=60, help="seconds (the subscription's ack deadline)")
    parser.add_argument("--min-backoff", type=float, default=0.0,
                        help="seconds: the subscriptions' minimum retry backoff, enforced on redeliveries")
    parser.add_argument("--max-attempts", type=int, help="the dead-letter policy's maximum delivery attempts")
    args = parser.parse_args(argv)
    routes = dict(route.split("=", 1) for route in args.route)
    server = RelayServer(args.port, routes, args.timeout, min_backoff=args.min_backoff,
                         max_attempts=args.max_attempts)

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
