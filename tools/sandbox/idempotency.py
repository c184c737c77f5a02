"""Idempotency keys as the providers keep them: the first answer is stored with a fingerprint of the
request; a repeat with the same fingerprint gets the stored answer, a different one is a conflict; a
repeat while the first is still being answered is a concurrency conflict (Stripe, Resend); and a key is
forgotten after the provider's window, measured on the sandbox clock."""

import copy
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .messages import SandboxRequest, SandboxResponse


def fingerprint(method: str, path: str, body: Any) -> str:
    canonical = json.dumps([method, path, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class _Entry:
    fingerprint: str
    response: SandboxResponse
    stored_at: float


@dataclass(frozen=True)
class Lookup:
    response: SandboxResponse | None = None  # a copy of the stored answer when the key was seen
    conflict: bool = False  # seen, but with a different request
    in_flight: bool = False  # another request with this key is still being answered


class IdempotencyStore:
    def __init__(self, ttl_seconds: float, clock: Callable[[], float]) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._in_flight: set[str] = set()

    def begin(self, key: str) -> None:
        """Mark `key` as being answered (held by a delay or lost_response fault) until `finish`."""
        self._in_flight.add(key)

    def finish(self, key: str) -> None:
        self._in_flight.discard(key)

    def lookup(self, key: str, request_fingerprint: str, now: float | None = None) -> Lookup:
        if key in self._in_flight:
            return Lookup(in_flight=True)
        entry = self._entries.get(key)
        now = self._clock() if now is None else now
        if entry is None or now - entry.stored_at > self.ttl_seconds:
            self._entries.pop(key, None)
            return Lookup()
        if entry.fingerprint != request_fingerprint:
            return Lookup(conflict=True)
        return Lookup(response=copy.deepcopy(entry.response))

    def store(
        self, key: str, request_fingerprint: str, response: SandboxResponse, now: float | None = None
    ) -> None:
        stored_at = self._clock() if now is None else now
        self._entries[key] = _Entry(request_fingerprint, copy.deepcopy(response), stored_at)

    def answer_once(
        self,
        request: SandboxRequest,
        execute: Callable[[], SandboxResponse],
        conflict: Callable[[], SandboxResponse],
        *,
        stored_status: int,
        in_flight: Callable[[], SandboxResponse] | None = None,
        replay_headers: Mapping[str, str] | None = None,
        first_headers: Mapping[str, str] | None = None,
    ) -> SandboxResponse:
        """Answer `request` by its Idempotency-Key: a repeat gets the stored answer (marked replayed, plus
        `replay_headers`), the same key with another request gets `conflict()`; otherwise `execute()`
        answers (plus `first_headers`) and is stored if its status is `stored_status`, since providers
        keep only the results of requests they carried out. A repeat while the key is in flight gets
        `in_flight()` when the provider defines that answer. Without a key, `execute()` just answers."""
        key = request.idempotency_key
        if not key:
            return execute()
        request_fingerprint = fingerprint(request.method, request.path, request.body)
        lookup = self.lookup(key, request_fingerprint)
        if lookup.in_flight and in_flight is not None:
            return in_flight()
        if lookup.conflict:
            return conflict()
        if lookup.response:
            lookup.response.headers.update(replay_headers or {})
            lookup.response.replayed = True
            return lookup.response
        response = execute()
        response.headers.update(first_headers or {})
        if response.status == stored_status:
            self.store(key, request_fingerprint, response)
        return response

    def store_answer(self, request: SandboxRequest, response: SandboxResponse) -> None:
        """Keep `response` as the answer to the request's key (Stripe keeps 5xx answers too)."""
        if request.idempotency_key:
            self.store(request.idempotency_key, fingerprint(request.method, request.path, request.body),
                       response)

    def clear(self) -> None:
        self._entries.clear()
        self._in_flight.clear()
