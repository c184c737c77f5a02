"""The one HTTP path every provider adapter uses: short timeouts, the correlation header, JSON in and
out, and the mapping of failures onto TransientError / PermanentError.

There is deliberately no retry here: a transient failure is raised so Pub/Sub redelivers the message
with the subscription's backoff, and provider idempotency keys make the repeat safe.
"""

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests

from . import log
from .config import MissingSetting, settings
from .errors import PermanentError, TransientError

CORRELATION_HEADER = "X-Correlation-Id"
USER_AGENT = "launchready-functions/1 (+python-requests)"

# Reads a provider's error body into (code, message); each provider shapes its errors differently.
ErrorReader = Callable[[Any], tuple[str, str]]

_local = threading.local()


def _session() -> requests.Session:
    # One session per thread: connections are reused across invocations of a warm instance, and
    # concurrent requests in the same instance never share a Session object.
    session = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        session.headers["User-Agent"] = USER_AGENT
        _local.session = session
    return session


@dataclass(frozen=True)
class ProviderResponse:
    status: int
    headers: Mapping[str, str]
    body: dict[str, Any]


@dataclass(frozen=True)
class ProviderApi:
    """One provider's conventions: its name (for errors and logs), how to read its error bodies and
    which of its 4xx error codes still mean "try again later"."""

    name: str
    read_error: ErrorReader
    transient_codes: frozenset[str] = field(default_factory=frozenset)

    def post(
        self,
        base_url: str,
        path: str,
        *,
        json_body: Any,
        correlation_id: str | None = None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ProviderResponse:
        return self.request(
            "POST",
            base_url,
            path,
            json_body=json_body,
            correlation_id=correlation_id,
            auth=auth,
            headers=headers,
            idempotency_key=idempotency_key,
        )

    def request(
        self,
        method: str,
        base_url: str,
        path: str,
        *,
        json_body: Any = None,
        correlation_id: str | None = None,
        auth: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> ProviderResponse:
        if not base_url:
            raise MissingSetting(f"the {self.name} base URL is not set")
        correlation_id = correlation_id or log.current_correlation_id() or log.new_correlation_id()
        request_headers = {
            "Accept": "application/json",
            CORRELATION_HEADER: correlation_id,
            **(headers or {}),
        }
        if idempotency_key:
            request_headers["Idempotency-Key"] = idempotency_key
        timeout = settings().provider_timeout_seconds
        url = base_url.rstrip("/") + path
        stopwatch = log.Stopwatch()
        try:
            response = _session().request(
                method,
                url,
                json=json_body,
                auth=auth,
                headers=request_headers,
                timeout=(timeout, timeout),
                # A redirect would turn the POST into a GET; a redirecting base URL is a config error.
                allow_redirects=False,
            )
        except requests.Timeout as exc:
            self._log_call(method, path, None, stopwatch, correlation_id, outcome="timeout")
            raise TransientError(f"{self.name}: timed out after {timeout}s ({type(exc).__name__})") from exc
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            self._log_call(method, path, None, stopwatch, correlation_id, outcome="connection_error")
            raise TransientError(f"{self.name}: connection failed ({type(exc).__name__})") from exc
        self._log_call(method, path, response.status_code, stopwatch, correlation_id)
        return self._interpret(response)

    def _interpret(self, response: requests.Response) -> ProviderResponse:
        status = response.status_code
        body = _json_or_text(response)
        if status == 204:  # No Content: a success that has nothing to say (e.g. HubSpot's GDPR delete)
            return ProviderResponse(status, response.headers, {})
        if 200 <= status < 300:
            if not isinstance(body, dict):
                # The call may have been applied, but without the body we cannot learn the result; the
                # idempotency key (or the upsert) makes the redelivered attempt safe.
                raise TransientError(f"{self.name}: {status} answer is not a JSON object")
            return ProviderResponse(status, response.headers, body)
        if 300 <= status < 400:
            location = response.headers.get("Location", "?")
            raise PermanentError(
                "unexpected_redirect", f"redirected to {location}", provider=self.name, status=status
            )
        code, message = self._read_error_safely(body)
        if status == 429 or status >= 500 or code in self.transient_codes:
            raise TransientError(f"{self.name}: HTTP {status} {code}: {message}")
        raise PermanentError(code, message, provider=self.name, status=status)

    def _read_error_safely(self, body: Any) -> tuple[str, str]:
        try:
            code, message = self.read_error(body)
        except (AttributeError, KeyError, TypeError, ValueError):
            code, message = "", ""
        fallback = body if isinstance(body, str) else ""
        return code or "http_error", message or fallback[:500] or "no error details"

    def _log_call(
        self,
        method: str,
        path: str,
        status: int | None,
        stopwatch: log.Stopwatch,
        correlation_id: str,
        outcome: str = "",
    ) -> None:
        log.info(
            f"{self.name} {method} {path} -> {status or outcome}",
            provider=self.name,
            http_status=status,
            latency_ms=stopwatch.ms,
            correlation_id=correlation_id,
        )


def _json_or_text(response: requests.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return response.text
