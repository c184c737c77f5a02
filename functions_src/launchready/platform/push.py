"""Pub/Sub push delivery for the workers: the response code is the retry signal.

Transient failures answer 500 (Pub/Sub redelivers, then dead-letters); permanent ones are recorded in
`sync_failures` and acknowledged; an exhausted quota is recorded and alerted at once
(docs/architecture.md, "Failure rule").
"""

import base64
import binascii
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import flask

from launchready.platform import log
from launchready.platform.config import max_delivery_attempts
from launchready.platform.errors import PermanentError, QuotaExhausted
from launchready.platform.web import health, json_response
from launchready.records import runs
from launchready.records.ops import record_dead_letter, record_sync_failure


@dataclass(frozen=True)
class PushMessage:
    data: dict[str, Any]
    attributes: dict[str, str]
    message_id: str
    subscription: str
    delivery_attempt: int

    @property
    def event_id(self) -> str:
        return self.attributes.get("event_id") or f"pubsub:{self.message_id}"

    @property
    def correlation_id(self) -> str:
        return log.valid_correlation_id(self.attributes.get("correlation_id")) or log.new_correlation_id()

    @property
    def topic(self) -> str:
        return self.attributes.get("source_topic", "")


class MalformedPush(ValueError):
    pass


def parse_envelope(body: bytes) -> PushMessage:
    try:
        envelope = json.loads(body)
        message = envelope["message"]
        raw = base64.b64decode(message.get("data", ""), validate=True)
        data = json.loads(raw) if raw else {}
        if not isinstance(data, dict):
            raise MalformedPush("message data must be a JSON object")
        return PushMessage(
            data=data,
            attributes=dict(message.get("attributes") or {}),
            message_id=str(message.get("messageId") or message.get("message_id") or ""),
            subscription=str(envelope.get("subscription", "")),
            # Pub/Sub sets deliveryAttempt only when the subscription has a dead-letter policy.
            delivery_attempt=int(envelope.get("deliveryAttempt") or 1),
        )
    except (KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise MalformedPush(f"not a Pub/Sub push envelope: {exc}") from exc


WorkerHandler = Callable[[PushMessage], None]


def worker(function: str) -> Callable[[WorkerHandler], Callable[[flask.Request], flask.Response]]:
    def decorate(handler: WorkerHandler) -> Callable[[flask.Request], flask.Response]:
        @functools.wraps(handler)
        def entry_point(request: flask.Request) -> flask.Response:
            if request.method in ("GET", "HEAD"):
                return health(function)
            stopwatch = log.Stopwatch()
            try:
                message = parse_envelope(request.get_data())
            except MalformedPush as exc:
                # Redelivering a message that cannot be parsed would only fill the dead-letter topic.
                with log.bound(function=function):
                    log.error("malformed push envelope", error=str(exc))
                    record_sync_failure(
                        function=function, event_id="malformed", code="malformed_envelope", detail=str(exc)
                    )
                return json_response({"status": "rejected", "error": "malformed_envelope"}, 200)
            with log.bound(
                function=function,
                correlation_id=message.correlation_id,
                event_id=message.event_id,
                message_id=message.message_id,
                delivery_attempt=message.delivery_attempt,
            ):
                return _deliver(function, handler, message, stopwatch)

        return entry_point

    return decorate


def _deliver(
    function: str, handler: WorkerHandler, message: PushMessage, stopwatch: log.Stopwatch
) -> flask.Response:
    try:
        handler(message)
    except PermanentError as exc:
        log.error(
            "permanent failure, recorded and acknowledged",
            error_code=exc.code,
            reason=exc.detail,
            provider=exc.provider,
            provider_status=exc.status,
            latency_ms=stopwatch.ms,
        )
        record_sync_failure(
            function=function,
            event_id=message.event_id,
            code=exc.code,
            detail=exc.detail,
            provider=exc.provider,
            status=exc.status,
        )
        runs.record_run(function, runs.FAILED, stopwatch.ms, f"{exc.code}: {exc.detail}")
        return json_response({"status": "failed_permanently", "error": exc.code}, 200)
    except QuotaExhausted as exc:
        log.error("provider quota exhausted, deferred until it resets", alert="provider_quota_exhausted",
                  provider=exc.provider, provider_status=exc.status, error_code=exc.code,
                  retry_after_seconds=exc.retry_after, error=str(exc), latency_ms=stopwatch.ms)
        record_sync_failure(function=function, event_id=message.event_id, code="quota_exhausted",
                            detail=str(exc), provider=exc.provider, status=exc.status)
        if message.delivery_attempt >= max_delivery_attempts():
            record_dead_letter(function=function, event_id=message.event_id, message_id=message.message_id,
                               attempts=message.delivery_attempt, error=repr(exc), topic=message.topic,
                               data=message.data, attributes=message.attributes)
        return json_response({"status": "retry", "error": "quota_exhausted"}, 500)
    except Exception as exc:  # transient by default: Pub/Sub redelivers with backoff
        last_attempt = message.delivery_attempt >= max_delivery_attempts()
        log.log(
            "ERROR" if last_attempt else "WARNING",
            "transient failure, dead-lettering" if last_attempt else "transient failure, will be redelivered",
            error=repr(exc),
            retry_after_seconds=getattr(exc, "retry_after", None),
            latency_ms=stopwatch.ms,
        )
        if last_attempt:
            record_dead_letter(
                function=function,
                event_id=message.event_id,
                message_id=message.message_id,
                attempts=message.delivery_attempt,
                error=repr(exc),
                topic=message.topic,
                data=message.data,
                attributes=message.attributes,
            )
        runs.record_run(function, runs.FAILED, stopwatch.ms, repr(exc))
        return json_response({"status": "retry", "error": type(exc).__name__}, 500)
    log.info("message processed", latency_ms=stopwatch.ms)
    runs.record_run(function, runs.OK, stopwatch.ms)
    return json_response({"status": "ok"}, 200)
