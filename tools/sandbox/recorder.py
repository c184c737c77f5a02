"""Every provider request the sandbox receives, with credentials redacted, for tests and debugging."""

import hashlib
import itertools
from datetime import UTC, datetime
from typing import Any

from .messages import SandboxRequest, SandboxResponse

_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def redact_headers(request: SandboxRequest) -> dict[str, str]:
    redacted = {}
    for name, value in request.headers.items():
        if name.lower() in _SECRET_HEADERS:
            # Keep the scheme: "is it Bearer or Basic" is what a test or a person debugging needs.
            scheme = value.split(" ", 1)[0] if " " in value else ""
            value = f"{scheme} [redacted]".strip()
        redacted[name] = value
    return redacted


def credential_digest(authorization: str) -> str | None:
    """A short sha256 of the Authorization credential (after the scheme): enough to check which
    credential was sent (compare with the digest of the expected one), never enough to use it."""
    if not authorization:
        return None
    credential = authorization.split(" ", 1)[-1]
    return hashlib.sha256(credential.encode()).hexdigest()[:12]


class RequestLog:
    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._ids = itertools.count(1)

    def record(
        self,
        provider: str,
        request: SandboxRequest,
        response: SandboxResponse,
        *,
        fault: str | None = None,
        replayed: bool = False,
    ) -> dict[str, Any]:
        entry = {
            "id": next(self._ids),
            "time": datetime.now(UTC).isoformat(),
            "provider": provider,
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "headers": redact_headers(request),
            "credential_sha256": credential_digest(request.header("Authorization")),
            "body": request.body,
            "idempotency_key": request.idempotency_key or None,
            "correlation_id": request.correlation_id or None,
            "status": response.status,
            "response": response.body if not isinstance(response.body, bytes | str) else None,
            "fault": fault,
            "replayed": replayed,
        }
        self._entries.append(entry)
        return entry

    def entries(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [entry for entry in self._entries if provider in (None, entry["provider"])]

    def clear(self) -> None:
        self._entries.clear()
