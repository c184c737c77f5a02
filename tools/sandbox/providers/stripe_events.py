"""Stripe Events: every state change of the sandbox's Stripe, with a snapshot of the changed object.

Events are kept 30 days; what made the change decides whether the local webhook gets one (docs/tools.md).
"""

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from . import stripe_webhook
from .stripe_objects import new_id

# The version whose shapes the sandbox renders: the one stripe-python 16.1.0 sends (stripe/_api_version.py).
API_VERSION = "2026-10-28.endive"
RETENTION_SECONDS = 30 * 86400
Delivery = Literal["auto", "force", "none"]


@dataclass(frozen=True)
class Origin:
    """What made a change: an API request (its `Request-Id` and idempotency key) or nothing (Stripe's
    billing, the Dashboard), and how its events are delivered."""

    request_id: str | None = None
    idempotency_key: str | None = None
    delivery: Delivery = "auto"


AUTOMATIC = Origin()


@dataclass
class _Record:
    event: dict[str, Any]
    sequence: int
    delivery: Delivery


class EventLog:
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._records: dict[str, _Record] = {}
        self._queue: list[str] = []
        self._sequence = itertools.count()

    def record(
        self,
        event_type: str,
        obj: dict[str, Any],
        origin: Origin,
        *,
        previous: dict[str, Any] | None = None,
        at: int | None = None,
    ) -> dict[str, Any]:
        """Record `event_type` for `obj` as it is now (a deep copy), created at `at` (default now)."""
        data: dict[str, Any] = {"object": copy.deepcopy(obj)}
        if previous is not None:
            data["previous_attributes"] = copy.deepcopy(previous)
        event = {
            "id": new_id("evt_", 24),
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self._now()) if at is None else at,
            "data": data,
            "livemode": obj["livemode"],
            "pending_webhooks": 0,
            "request": {"id": origin.request_id, "idempotency_key": origin.idempotency_key},
            "type": event_type,
        }
        record = _Record(event, next(self._sequence), origin.delivery)
        self._records[event["id"]] = record
        if self._wanted(record):
            event["pending_webhooks"] = 1
            self._queue.append(event["id"])
        return event

    def flush(self) -> dict[str, tuple[int | None, Any]]:
        """Send every queued event, oldest first: {event id: (status, answer)}."""
        queued, self._queue = self._queue, []
        return {event_id: self.deliver(event_id) for event_id in queued}

    def deliver(self, event_id: str) -> tuple[int | None, Any]:
        """Send one event now (a resend: whatever the endpoint's enabled events)."""
        event = self._records[event_id].event
        status, answer = stripe_webhook.send(event)
        event["pending_webhooks"] = 0 if status is not None and 200 <= status < 300 else 1
        return status, answer

    def _wanted(self, record: _Record) -> bool:
        if record.delivery == "auto":
            return stripe_webhook.enabled(record.event["type"])
        return record.delivery == "force" and stripe_webhook.configured()

    def find(self, event_id: str, livemode: bool) -> dict[str, Any] | None:
        record = self._records.get(event_id)
        if record is None or record.event["livemode"] != livemode or not self._retained(record):
            return None
        return record.event

    def listed(self, livemode: bool) -> list[dict[str, Any]]:
        """The mode's events of the last 30 days, newest first."""
        kept = [
            record
            for record in self._records.values()
            if record.event["livemode"] == livemode and self._retained(record)
        ]
        kept.sort(key=lambda record: (record.event["created"], record.sequence), reverse=True)
        return [record.event for record in kept]

    def all(self) -> list[dict[str, Any]]:
        return [record.event for record in sorted(self._records.values(), key=lambda r: r.sequence)]

    def _retained(self, record: _Record) -> bool:
        return self._now() - record.event["created"] < RETENTION_SECONDS
