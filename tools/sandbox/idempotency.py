"""Idempotency keys as the providers keep them: the first answer is stored with a fingerprint of the
request; a repeat with the same fingerprint gets the stored answer, a different one is a conflict."""

import copy
import hashlib
import json
import time
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


class IdempotencyStore:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl_seconds = ttl_seconds
        self._entries: dict[str, _Entry] = {}

    def lookup(self, key: str, request_fingerprint: str, now: float | None = None) -> Lookup:
        entry = self._entries.get(key)
        now = time.time() if now is None else now
        if entry is None or now - entry.stored_at > self.ttl_seconds:
            self._entries.pop(key, None)
            return Lookup()
        if entry.fingerprint != request_fingerprint:
            return Lookup(conflict=True)
        return Lookup(response=copy.deepcopy(entry.response))

    def store(
        self, key: str, request_fingerprint: str, response: SandboxResponse, now: float | None = None
    ) -> None:
        stored_at = time.time() if now is None else now
        self._entries[key] = _Entry(request_fingerprint, copy.deepcopy(response), stored_at)

    def answer_once(
        self,
        request: SandboxRequest,
        execute: Callable[[], SandboxResponse],
        conflict: Callable[[], SandboxResponse],
        *,
        stored_status: int,
        replay_headers: Mapping[str, str] | None = None,
        first_headers: Mapping[str, str] | None = None,
    ) -> SandboxResponse:
        """Answer `request` by its Idempotency-Key: a repeat gets the stored answer (marked replayed, plus
        `replay_headers`), the same key with another request gets `conflict()`; otherwise `execute()`
        answers (plus `first_headers`) and is stored if its status is `stored_status`, since providers
        keep only the results of requests they carried out. Without a key, `execute()` just answers."""
        key = request.idempotency_key
        if not key:
            return execute()
        request_fingerprint = fingerprint(request.method, request.path, request.body)
        lookup = self.lookup(key, request_fingerprint)
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

    def clear(self) -> None:
        self._entries.clear()
