"""The sandbox's behaviour, independent of HTTP plumbing: route a request to its provider, apply an
injected fault or a standing condition (latency, rate limit), hold the exchange to the provider's
published spec, record the request, and answer the control endpoints under /_sandbox/ (inspection,
reset, faults, conditions, the clock, HubSpot's portal properties, the Stripe account)."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .clock import SandboxClock
from .conformance import Conformance
from .faults import FaultBook, FaultError
from .messages import SandboxRequest, SandboxResponse
from .providers import HubSpot, Provider, StoreProvider, Stripe, all_providers
from .recorder import RequestLog


@dataclass
class Outcome:
    response: SandboxResponse
    wait_seconds: float = 0.0  # hold the answer this long (the client should time out first)
    drop: bool = False  # then close the connection instead of answering
    release: Callable[[], None] | None = None  # call after the wait: the request is no longer in flight


class Sandbox:
    def __init__(self) -> None:
        self.clock = SandboxClock()
        self.providers: list[Provider] = all_providers(self.clock)
        self.faults = FaultBook(frozenset(provider.name for provider in self.providers))
        self.requests = RequestLog()
        self.conformance = Conformance(frozenset(provider.name for provider in self.providers))
        # Handling is quick and in memory; one lock keeps ids, stores and the log consistent.
        self._lock = threading.RLock()
        # Set on shutdown so that requests held by a delay fault end promptly.
        self.stopping = threading.Event()
        # Real time for rate limits (requests per second of wall time, not of the providers' clock).
        self.monotonic: Callable[[], float] = time.monotonic

    def provider_for(self, path: str) -> Provider | None:
        return next((provider for provider in self.providers if provider.owns(path)), None)

    def dispatch(self, request: SandboxRequest) -> Outcome:
        store = next((provider for provider in self.providers
                      if isinstance(provider, StoreProvider) and provider.owns_control(request.path)), None)
        if store is not None:  # takes the lock itself: it pushes notifications after releasing it
            return Outcome(store.control(request, self._lock))
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
        release = None
        conditions = self.faults.conditions(provider.name)
        with self._lock:
            fault = self.faults.take(provider.name, request.path)
            throttled = fault is None and not conditions.admit(self.monotonic())
            if throttled:
                response = provider.error(429)  # past the standing rate limit: nothing applied
            elif fault is None or fault.mode == "lost_response":
                response = (
                    provider.authenticate(request)
                    or self.conformance.reject(provider, request)
                    or provider.handle(request)
                )
            elif fault.mode == "status":
                if (fault.apply and provider.authenticate(request) is None
                        and self.conformance.reject(provider, request) is None):
                    provider.handle(request)  # the effect happens, then the answer is an error
                response = provider.fault_response(request, fault)
            else:  # delay: whoever still listens after the wait gets a gateway timeout, nothing applied
                response = provider.error(504, fault.code, fault.message or "upstream request timeout")
                release = self._hold_in_flight(provider, request.idempotency_key)
            response = self.conformance.vouch(provider, request, response)
            self.requests.record(
                provider.name,
                request,
                response,
                fault=fault.mode if fault else "rate_limit" if throttled else None,
                replayed=response.replayed,
            )
        if fault is None or fault.mode == "status":
            return Outcome(response, wait_seconds=conditions.latency_ms / 1000)
        return Outcome(response, wait_seconds=fault.seconds, drop=fault.mode == "lost_response",
                       release=release)

    def _hold_in_flight(self, provider: Provider, key: str) -> Callable[[], None] | None:
        """Mark the key in flight while a delay fault holds its request (Stripe, Resend answer 409)."""
        store = provider.idempotency
        if not key or store is None:
            return None
        store.begin(key)

        def release() -> None:
            with self._lock:
                store.finish(key)

        return release

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
            self.faults.clear_conditions()
            self.requests.clear()
            self.clock.reset()

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
        if route[1] == "/_sandbox/conditions":
            return self._conditions(request)
        if request.path.startswith("/_sandbox/stripe/"):
            return next(p for p in self.providers if isinstance(p, Stripe)).handle_control(request)
        if route == ("GET", "/_sandbox/clock"):
            return SandboxResponse(200, self.clock.as_dict())
        if route == ("POST", "/_sandbox/clock"):
            return self._move_clock(request.body)
        if route[1] == "/_sandbox/hubspot/properties":
            return self._hubspot_properties(request)
        return SandboxResponse(
            404, {"error": "not_found", "message": f"no route {request.method} {request.path}"}
        )

    def _move_clock(self, body: Any) -> SandboxResponse:
        seconds = body.get("advance_seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            return SandboxResponse(400, {"error": "invalid_clock",
                                         "message": 'expected {"advance_seconds": N} with N >= 0'})
        self.clock.advance(float(seconds))
        for provider in self.providers:
            provider.clock_moved()
        return SandboxResponse(200, self.clock.as_dict())

    def _conditions(self, request: SandboxRequest) -> SandboxResponse:
        if request.method == "GET":
            return SandboxResponse(200, {"conditions": self.faults.all_conditions()})
        if request.method == "POST":
            try:
                conditions = self.faults.set_conditions(request.body)
            except FaultError as exc:
                return SandboxResponse(400, {"error": "invalid_conditions", "message": str(exc)})
            return SandboxResponse(201, {"conditions": conditions.as_dict()})
        if request.method == "DELETE":
            self.faults.clear_conditions()
            return SandboxResponse(200, {"conditions": []})
        return SandboxResponse(405, {"error": "method_not_allowed", "message": "GET, POST or DELETE"})

    def _hubspot_properties(self, request: SandboxRequest) -> SandboxResponse:
        hubspot = next(provider for provider in self.providers if isinstance(provider, HubSpot))
        if request.method == "GET":
            return SandboxResponse(200, {"properties": hubspot.property_definitions()})
        if request.method == "POST":
            try:
                definition = hubspot.define_property(request.body)
            except ValueError as exc:
                return SandboxResponse(400, {"error": "invalid_property", "message": str(exc)})
            return SandboxResponse(201, {"property": definition})
        return SandboxResponse(405, {"error": "method_not_allowed", "message": "GET or POST"})

    def _index(self, request: SandboxRequest) -> dict[str, Any]:
        return {
            "service": "launchready provider sandbox",
            "status": "ok",
            "base_url": request.base_url,
            "providers": {
                "hubspot": "POST /crm/objects/{2026-03|2026-09}/contacts/batch/upsert "
                           "(and the legacy /crm/v3/objects/contacts/batch/upsert)",
                "zendesk": "POST /api/v2/tickets.json, GET /api/v2/tickets.json?external_id=, "
                           "GET /api/v2/tickets/{id}.json",
                "resend": "POST /emails, GET /emails/{id}",
                "stripe": "POST|GET /v1/checkout/sessions, GET /v1/checkout/sessions/{id}, "
                          "GET|POST /v1/subscriptions, GET|POST|DELETE /v1/subscriptions/{id}, "
                          "GET /v1/customers[/{id}], GET /v1/invoices[/{id}], GET /v1/charges/{id}, "
                          "GET /v1/events[/{id}]",
                "app_store": "GET /inApps/v1/subscriptions/{id}, GET /inApps/v1/transactions/{id}, "
                             "POST|GET /inApps/v1/notifications/test (Production under /production)",
                "google_play": "GET .../purchases/subscriptionsv2/tokens/{token} (+ :cancel, :revoke), "
                               "POST .../purchases/subscriptions/{id}/tokens/{token}:acknowledge",
            },
            "inspection": [
                "GET /_sandbox/requests?provider=NAME",
                "GET /_sandbox/state",
                "POST /_sandbox/reset",
                "GET|POST|DELETE /_sandbox/faults",
                "GET|POST|DELETE /_sandbox/conditions",
                "GET|POST /_sandbox/clock",
                "GET|POST /_sandbox/hubspot/properties",
                "POST /_sandbox/stripe/subscriptions/{id}/{cancel|pause|resume|past_due}",
                "POST /_sandbox/stripe/invoices/{id}/pay, POST /_sandbox/stripe/invoices",
                "POST /_sandbox/stripe/refunds, POST /_sandbox/stripe/events/{id}/deliver",
                "GET|POST /_sandbox/app_store/... (purchases, transitions, notifications, root certificate)",
                "GET|POST /_sandbox/google_play/... (purchases, transitions, notifications)",
            ],
            "requests_recorded": len(self.requests.entries()),
        }
