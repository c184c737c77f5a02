"""Shared plumbing of the HTTP entry points: health answers, size and content-type checks, JSON
errors with machine-readable codes, and the per-request log context (correlation id, trace)."""

import functools
import json
from collections.abc import Callable
from typing import Any

import flask

from launchready.platform import after_answer, log
from launchready.records import runs

Handler = Callable[[flask.Request], flask.Response]


class HttpError(Exception):
    """A clear 4xx answer. Raised before anything is written."""

    def __init__(self, status: int, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


def json_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    response = flask.Response(
        json.dumps(body, separators=(",", ":"), default=str), status=status, mimetype="application/json"
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def error_response(error: HttpError) -> flask.Response:
    return json_response(
        {"error": {"code": error.code, "message": error.message, **error.details}}, error.status
    )


def health(function: str) -> flask.Response:
    return json_response({"status": "ok", "function": function})


def read_body(request: flask.Request, *, max_bytes: int, content_type: str = "application/json") -> bytes:
    """The raw body, after the content-type and size checks (the cap holds even without Content-Length)."""
    if request.mimetype != content_type:
        raise HttpError(415, "unsupported_media_type", f"Content-Type must be {content_type}")
    if request.content_length is not None and request.content_length > max_bytes:
        raise HttpError(413, "body_too_large", f"body exceeds {max_bytes} bytes")
    body = request.stream.read(max_bytes + 1)
    if len(body) > max_bytes:
        raise HttpError(413, "body_too_large", f"body exceeds {max_bytes} bytes")
    return body


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HttpError(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise HttpError(400, "malformed_json", "body must be a JSON object")
    return value


def endpoint(function: str, *, methods: tuple[str, ...] = ("POST",)) -> Callable[[Handler], Handler]:
    """Wrap an HTTP entry point: GET answers health (uptime checks), other methods must be in `methods`,
    HttpError becomes its JSON 4xx, and every request is logged once with its status and latency. What
    the handler defers with `after_answer.defer` is queued when it returns, and the answer does not wait."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        def wrapper(request: flask.Request) -> flask.Response:
            if request.method in ("GET", "HEAD"):
                return health(function)
            stopwatch = log.Stopwatch()
            correlation_id = (
                log.valid_correlation_id(request.headers.get("X-Correlation-Id")) or log.new_correlation_id()
            )
            with log.bound(
                function=function,
                correlation_id=correlation_id,
                trace_id=log.trace_id_from_headers(request.headers),
            ), after_answer.collecting():
                try:
                    if request.method not in methods:
                        raise HttpError(405, "method_not_allowed", f"use {' or '.join(methods)}")
                    response = handler(request)
                except HttpError as exc:
                    response = error_response(exc)
                    log.warning(
                        "request rejected",
                        status=exc.status,
                        error_code=exc.code,
                        reason=exc.message,
                        latency_ms=stopwatch.ms,
                    )
                    return _with_correlation(response, correlation_id)
                except Exception as exc:
                    log.error("request failed", status=500, error=repr(exc), latency_ms=stopwatch.ms)
                    runs.record_run(function, runs.FAILED, stopwatch.ms, repr(exc))
                    return _with_correlation(
                        json_response({"error": {"code": "internal", "message": "internal error"}}, 500),
                        correlation_id,
                    )
                latency_ms = stopwatch.ms
                log.info("request handled", status=response.status_code, latency_ms=latency_ms)
                if response.status_code < 400:  # a handler's own 4xx is a rejection, not counted
                    # A statistic: written after the answer (after_answer.py says what that costs).
                    after_answer.defer(lambda: runs.record_run(function, runs.OK, latency_ms))
                return _with_correlation(response, correlation_id)

        return wrapper

    return decorate


def _with_correlation(response: flask.Response, correlation_id: str) -> flask.Response:
    response.headers["X-Correlation-Id"] = correlation_id
    return response
