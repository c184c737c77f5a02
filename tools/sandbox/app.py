"""The sandbox's behaviour, independent of HTTP plumbing: route a request to its provider, apply an
injected fault, hold the exchange to the provider's published spec, record the request, and answer the
inspection endpoints under /_sandbox/."""

import threading
from dataclasses import dataclass
from typing import Any

from .conformance import Conformance
from .faults import FaultBook, FaultError
from .messages import SandboxRequest, SandboxResponse
from .providers import Provider, all_providers
from .recorder import RequestLog


@dataclass
class Outcome:
    response: SandboxResponse
    wait_seconds: float = 0.0  # hold the answer this long (the client should time out first)
    drop: bool = False  # then close the connection instead of answering


class Sandbox:
    def __init__(self) -> None:
        self.providers: list[Provider] = all_providers()
        self.faults = FaultBook(frozenset(provider.name for provider in self.providers))
        self.requests = RequestLog()
        self.conformance = Conformance(frozenset(provider.name for provider in self.providers))
        # Handling is quick and in memory; one lock keeps ids, stores and the log consistent.
        self._lock = threading.RLock()
        # Set on shutdown so that requests held by a delay fault end promptly.
        self.stopping = threading.Event()

    def provider_for(self, path: str) -> Provider | None:
        return next((provider for provider in self.providers if provider.owns(path)), None)

    def dispatch(self, request: SandboxRequest) -> Outcome:
        if request.path == "/" or request.path.startswith("/_sandbox/"):
            with self._lock:
                return Outcome(self._control(request))
        provider = self.provider_for(request.path)
        if provider is None:
            # Recorded too: a wrong base URL or path shows up in the log instead of vanishing.
            response = SandboxResponse(
                404, {"error": "not_found", "message": f"no provider at {request.path}"}
            )
            with self._lock:
                self.requests.record("unknown", request, response)
            return Outcome(response)
        with self._lock:
            fault = self.faults.take(provider.name, request.path)
            if fault is None or fault.mode == "lost_response":
                response = (
                    provider.authenticate(request)
                    or self.conformance.reject(provider, request)
                    or provider.handle(request)
                )
            elif fault.mode == "status":
                response = provider.error(fault.status, fault.code, fault.message)
            else:  # delay: whoever still listens after the wait gets a gateway timeout, nothing applied
                response = provider.error(504, fault.code, fault.message or "upstream request timeout")
            response = self.conformance.vouch(provider, request, response)
            self.requests.record(
                provider.name,
                request,
                response,
                fault=fault.mode if fault else None,
                replayed=response.replayed,
            )
        if fault is None or fault.mode == "status":
            return Outcome(response)
        return Outcome(response, wait_seconds=fault.seconds, drop=fault.mode == "lost_response")

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        for provider in self.providers:
            state.update(provider.state())
        return state

    def reset(self) -> None:
        with self._lock:
            for provider in self.providers:
                provider.reset()
            self.faults.clear()
            self.requests.clear()

    def _control(self, request: SandboxRequest) -> SandboxResponse:
        route = (request.method, request.path.rstrip("/") or "/")
        if route == ("GET", "/"):
            return SandboxResponse(200, self._index(request))
        if route == ("GET", "/_sandbox/requests"):
            provider = (request.query.get("provider") or [None])[0]
            return SandboxResponse(200, {"requests": self.requests.entries(provider)})
        if route == ("GET", "/_sandbox/state"):
            return SandboxResponse(200, self.state())
        if route == ("POST", "/_sandbox/reset"):
            self.reset()
            return SandboxResponse(200, {"reset": True})
        if route == ("GET", "/_sandbox/faults"):
            return SandboxResponse(200, {"faults": self.faults.pending()})
        if route == ("POST", "/_sandbox/faults"):
            try:
                fault = self.faults.add(request.body)
            except FaultError as exc:
                return SandboxResponse(400, {"error": "invalid_fault", "message": str(exc)})
            return SandboxResponse(201, {"fault": fault.as_dict()})
        if route == ("DELETE", "/_sandbox/faults"):
            self.faults.clear()
            return SandboxResponse(200, {"faults": []})
        return SandboxResponse(
            404, {"error": "not_found", "message": f"no route {request.method} {request.path}"}
        )

    def _index(self, request: SandboxRequest) -> dict[str, Any]:
        return {
            "service": "launchready provider sandbox",
            "status": "ok",
            "base_url": request.base_url,
            "providers": {
                "hubspot": "POST /crm/v3/objects/contacts/batch/upsert",
                "zendesk": "POST /api/v2/tickets.json, GET /api/v2/tickets/{id}.json",
                "resend": "POST /emails, GET /emails/{id}",
                "stripe": "POST /v1/checkout/sessions, GET /v1/checkout/sessions/{id}",
            },
            "inspection": [
                "GET /_sandbox/requests?provider=NAME",
                "GET /_sandbox/state",
                "POST /_sandbox/reset",
                "GET|POST|DELETE /_sandbox/faults",
            ],
            "requests_recorded": len(self.requests.entries()),
        }
