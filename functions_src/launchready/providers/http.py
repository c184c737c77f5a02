"""The one HTTP path every provider adapter uses: short timeouts, the correlation header, JSON in and out.

Each failure is mapped through the adapter's failure table onto TransientError, QuotaExhausted or
PermanentError; there is no retry here, Pub/Sub's redelivery is the retry (docs/architecture.md,
"Failure rule").
"""

import enum
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests

from launchready.platform import log
from launchready.platform.config import MissingSetting, max_backoff_seconds, settings
from launchready.platform.errors import PermanentError, QuotaExhausted, TransientError

CORRELATION_HEADER = "X-Correlation-Id"
USER_AGENT = "launchready-functions/1 (+python-requests)"

# Reads a provider's error body into (code, message); each provider shapes its errors differently.
ErrorReader = Callable[[Any], tuple[str, str]]

_local = threading.local()


class Failure(enum.StrEnum):
    TRANSIENT = "transient"  # redeliver with backoff (after Retry-After when given)
    PERMANENT = "permanent"  # record in sync_failures and acknowledge
    QUOTA = "quota"  # a quota that lasts hours: alert ops, defer until it resets


@dataclass(frozen=True)
class Rule:
    """One row of a provider's failure table: what a status or error code means, and where it says so."""

    failure: Failure
    doc: str  # the provider's page that defines this answer
    min_wait_seconds: float = 0.0  # the wait the docs prescribe when no Retry-After is sent


# Keyed by HTTP status (int), by the provider's error code (str), or by "status:code"; the most
# specific key wins. Statuses missing from a table fall back on HTTP's meaning: 5xx, 408 (Request
# Timeout) and 429 (Too Many Requests, RFC 6585) transient, other 4xx permanent.
FailureTable = Mapping[int | str, Rule]
_HTTP_SEMANTICS = "https://www.rfc-editor.org/rfc/rfc9110#section-15"
_RETRY_LATER = frozenset({408, 429})


def classify(table: FailureTable, status: int, code: str) -> Rule:
    for key in (f"{status}:{code}", code, status):
        rule = table.get(key)
        if rule is not None:
            return rule
    transient = status >= 500 or status in _RETRY_LATER
    return Rule(Failure.TRANSIENT if transient else Failure.PERMANENT, _HTTP_SEMANTICS)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP-date (RFC 9110 section 10.2.3); None if absent
    or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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
    its failure table (what each status or error code means, per its docs)."""

    name: str
    read_error: ErrorReader
    failures: FailureTable = field(default_factory=dict)

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
        params: Mapping[str, str] | None = None,
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
                params=params,
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
        rule = classify(self.failures, status, code)
        if rule.failure == Failure.PERMANENT:
            raise PermanentError(code, message, provider=self.name, status=status)
        wait = retry_after_seconds(response.headers.get("Retry-After"))
        wait = max(wait or 0.0, rule.min_wait_seconds) or None
        text = f"{self.name}: HTTP {status} {code}: {message}"
        if rule.failure == Failure.QUOTA or (wait or 0.0) > max_backoff_seconds():
            raise QuotaExhausted(text, retry_after=wait, provider=self.name, status=status, code=code)
        raise TransientError(text, retry_after=wait, provider=self.name, status=status, code=code)

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
