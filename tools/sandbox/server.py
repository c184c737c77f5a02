"""HTTP plumbing for the sandbox: a threading stdlib server on 127.0.0.1."""

import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import cast
from urllib.parse import urlsplit

from .app import Sandbox
from .messages import SandboxRequest, parse_body, split_query

HOST = "127.0.0.1"  # never reachable from outside this machine
MAX_BODY_BYTES = 5 * 1024 * 1024


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int, *, verbose: bool = False) -> None:
        self.sandbox = Sandbox()
        self.verbose = verbose
        super().__init__((HOST, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        """Stop serving, wake requests held by faults, and release the port."""
        self.sandbox.stopping.set()
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server_version = "launchready-sandbox/1"
    protocol_version = "HTTP/1.1"  # keep-alive, like the providers; clients reuse connections

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    @property
    def sandbox_server(self) -> SandboxServer:
        return cast(SandboxServer, self.server)

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.send_error(413, "Request body too large")
            return
        raw_body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        request = SandboxRequest(
            method=self.command,
            path=url.path,
            query=split_query(url.query),
            headers=self.headers,
            raw_body=raw_body,
            base_url=f"http://{self.headers.get('Host') or self.sandbox_server.url.removeprefix('http://')}",
        )
        parse_body(request)
        sandbox = self.sandbox_server.sandbox
        outcome = sandbox.dispatch(request)
        if outcome.wait_seconds:
            sandbox.stopping.wait(outcome.wait_seconds)
        if outcome.release:
            outcome.release()
        if outcome.drop:
            # The call was applied; the client never hears about it.
            self.close_connection = True
            return
        response = outcome.response
        payload = response.encoded()
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. timed out during a delay fault)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (stdlib signature)
        if self.sandbox_server.verbose:
            sys.stderr.write(f"sandbox: {self.address_string()} {format % args}\n")


def start_sandbox(port: int = 0, *, verbose: bool = False) -> tuple[SandboxServer, str]:
    """Run the sandbox in a background thread; returns the server (call `.stop()`) and its URL."""
    server = SandboxServer(port, verbose=verbose)
    thread = threading.Thread(target=server.serve_forever, name="provider-sandbox", daemon=True)
    thread.start()
    return server, server.url


def serve(port: int, *, verbose: bool = False) -> int:
    """Serve the sandbox on 127.0.0.1:`port` until SIGTERM or Ctrl-C; prints its URL first. Returns 0."""
    server = SandboxServer(port, verbose=verbose)

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever to return, so it cannot run on the serving thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    finally:
        server.sandbox.stopping.set()
        server.server_close()
    return 0
