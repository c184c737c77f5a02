"""Structured logging: one JSON object per line in Cloud Logging's format.

Request-scoped fields (function, correlation_id, event_id, trace) are bound once per request in a
context variable, so every log line of that request carries them without passing them around.
"""

import contextlib
import contextvars
import json
import re
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from launchready.platform.config import settings

# No mutable default: every bind() sets a fresh dict, and an unbound context reads as empty.
_bound: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "launchready_log_fields", default=None
)


def _fields() -> dict[str, Any]:
    return _bound.get() or {}


_TRACE_CONTEXT = re.compile(r"^([0-9a-fA-F]{32})")  # X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")  # W3C traceparent
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{8,100}$")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def valid_correlation_id(value: str | None) -> str | None:
    """An incoming id is kept only if it is a sane token; anything else starts a new chain."""
    return value if value and _CORRELATION_ID.match(value) else None


def trace_id_from_headers(headers: Any) -> str | None:
    for header, pattern in (("traceparent", _TRACEPARENT), ("X-Cloud-Trace-Context", _TRACE_CONTEXT)):
        match = pattern.match(headers.get(header) or "")
        if match:
            return match.group(1).lower()
    return None


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Bind fields to every log line written inside the block (nested blocks add to them)."""
    token = _bound.set({**_fields(), **{k: v for k, v in fields.items() if v is not None}})
    try:
        yield
    finally:
        _bound.reset(token)


def bind(**fields: Any) -> None:
    """Add fields to the current block (e.g. the event id once the body is parsed)."""
    _bound.set({**_fields(), **{k: v for k, v in fields.items() if v is not None}})


def current(field: str) -> Any:
    return _fields().get(field)


def current_correlation_id() -> str:
    return current("correlation_id") or ""


def log(severity: str, message: str, **fields: Any) -> None:
    record: dict[str, Any] = {
        "severity": severity,
        "message": message,
        "time": datetime.now(UTC).isoformat(),
        **_fields(),
        **fields,
    }
    trace_id = record.pop("trace_id", None)
    if trace_id:
        record["logging.googleapis.com/trace"] = f"projects/{settings().project_id}/traces/{trace_id}"
    sys.stdout.write(json.dumps(record, default=str, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def info(message: str, **fields: Any) -> None:
    log("INFO", message, **fields)


def warning(message: str, **fields: Any) -> None:
    log("WARNING", message, **fields)


def error(message: str, **fields: Any) -> None:
    log("ERROR", message, **fields)


class Stopwatch:
    """Milliseconds since creation, for the `latency_ms` field."""

    def __init__(self) -> None:
        self._start = time.perf_counter()

    @property
    def ms(self) -> float:
        return round((time.perf_counter() - self._start) * 1000, 1)
