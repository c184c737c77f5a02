"""The request and response values the sandbox's provider handlers work with (no HTTP plumbing)."""

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any
from urllib.parse import parse_qs

from .forms import decode_form


@dataclass
class SandboxRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message  # case-insensitive lookups, like the real servers
    raw_body: bytes
    base_url: str  # how the client reached us, for absolute URLs in answers
    body: Any = None
    body_error: str = ""

    def header(self, name: str) -> str:
        return self.headers.get(name) or ""

    @property
    def idempotency_key(self) -> str:
        return self.header("Idempotency-Key")

    @property
    def correlation_id(self) -> str:
        return self.header("X-Correlation-Id")


@dataclass
class SandboxResponse:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    replayed: bool = False  # answered from an idempotency key's stored result

    def encoded(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


def parse_body(request: SandboxRequest) -> None:
    """Decode the body by its content type: JSON (HubSpot, Zendesk, Resend) or a form (Stripe)."""
    if not request.raw_body:
        return
    content_type = request.header("Content-Type").split(";")[0].strip().lower()
    text = request.raw_body.decode("utf-8", errors="replace")
    if content_type == "application/x-www-form-urlencoded":
        request.body = decode_form(text)
        return
    try:
        request.body = json.loads(text)
    except json.JSONDecodeError as exc:
        request.body = text
        request.body_error = f"invalid JSON: {exc.msg} at position {exc.pos}"


def split_query(query: str) -> dict[str, list[str]]:
    return parse_qs(query, keep_blank_values=True)
