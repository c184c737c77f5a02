"""Hold every provider exchange to the provider's published OpenAPI document (`contract.py`).

A bad request is rejected as the provider rejects it; a bad answer is a loud sandbox bug (docs/tools.md).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

from .contract import Contract, Violation
from .messages import SandboxRequest, SandboxResponse
from .providers import Provider

# Which documents each provider is held to; provenance in specs/README.md.
CONTRACTS: dict[str, Callable[[], Contract]] = {
    # The unversioned v3 path and the date-based versions the sandbox serves (2026-09 is the newest).
    "hubspot": lambda: Contract(
        ("hubspot-contacts-v3.json", "hubspot-contacts-2026-03.json", "hubspot-contacts-2026-09.json")
    ),
    "zendesk": lambda: Contract(("zendesk-tickets.json",)),
    "resend": lambda: Contract(("resend.json",)),
    # The hosted Checkout page is opened by the customer's browser; it is not part of the API. The
    # 2026-05-27.dahlia document, revised to the 2026-10-28.endive shapes stripe-python 16.1.0 reads.
    "stripe": lambda: Contract(
        ("stripe.json",),
        exempt_prefixes=("/c/pay/",),
        form_encoded=True,
        revisions={"stripe.json": "stripe-endive.revisions.json"},
        strict=True,
        embedded=_stripe_event_objects,
    ),
}


def _stripe_event_objects(body: Any) -> Iterator[tuple[str, Any, str]]:
    """The object each event in a Stripe answer carries (`data.object`, named by its own `object`):
    an event, or a list of events."""
    kind = body.get("object") if isinstance(body, dict) else None
    if kind == "event":
        events = [(body, "")]
    elif kind == "list":
        events = [(item, f"data/{index}/") for index, item in enumerate(body.get("data") or [])
                  if isinstance(item, dict) and item.get("object") == "event"]
    else:
        return
    for event, where in events:
        carried = (event.get("data") or {}).get("object")
        if isinstance(carried, dict) and isinstance(carried.get("object"), str):
            yield carried["object"], carried, f"{where}data/object"


class Conformance:
    def __init__(self, provider_names: frozenset[str] | None = None) -> None:
        names = provider_names if provider_names is not None else frozenset(CONTRACTS)
        self.contracts = {name: CONTRACTS[name]() for name in names if name in CONTRACTS}
        for contract in self.contracts.values():
            contract.warm()

    def reject(self, provider: Provider, request: SandboxRequest) -> SandboxResponse | None:
        """The provider's error answer when `request` breaks its document, else None."""
        contract = self.contracts.get(provider.name)
        if contract is None or not contract.covers(request):
            return None
        violation = contract.check_request(request)
        if violation is None:
            return None
        return REJECTIONS[provider.name](provider, request, violation)

    def vouch(
        self, provider: Provider, request: SandboxRequest, response: SandboxResponse
    ) -> SandboxResponse:
        """`response` itself when it conforms; otherwise a 500 naming what breaks the document."""
        contract = self.contracts.get(provider.name)
        if contract is None or not contract.covers(request):
            return response
        problems = contract.check_response(request, response)
        if not problems:
            return response
        sys.stderr.write(
            f"SANDBOX BUG: {provider.name} answer to {request.method} {request.path} "
            f"(status {response.status}) breaks the published spec:\n"
            + "".join(f"  - {problem}\n" for problem in problems)
        )
        sys.stderr.flush()
        answer = provider.error(500, "sandbox_contract_violation",
                                f"the sandbox's {provider.name} answer (status {response.status}) breaks the "
                                f"provider's published spec: {'; '.join(problems)[:2000]}")
        body: dict[str, Any] = answer.body if isinstance(answer.body, dict) else {}
        answer.body = {**body, "problems": problems}
        return answer


# ---- how each provider rejects a request that breaks its spec ---------------------------------


def _field(location: tuple[str | int, ...]) -> str:
    return ".".join(str(part) for part in location)


def _stripe_param(location: tuple[str | int, ...]) -> str:
    # Stripe names a nested parameter the way it is encoded: line_items[0][quantity].
    head, *rest = [str(part) for part in location] or [""]
    return head + "".join(f"[{part}]" for part in rest)


def _stripe(provider: Provider, request: SandboxRequest, violation: Violation) -> SandboxResponse:
    # https://docs.stripe.com/api/errors: 400 invalid_request_error with `param`; unknown routes 404.
    error: Any = provider.error
    if violation.kind in ("route", "method"):
        return error(404, message=f"Unrecognized request URL ({request.method}: {request.path}).")
    param = _stripe_param(violation.location)
    if violation.missing:
        return error(400, "parameter_missing", f"Missing required param: {param}.", param)
    if violation.unknown:
        return error(400, "parameter_unknown", f"Received unknown parameter: {param}", param)
    return error(400, "", f"Invalid {param}: {violation.message}", param)


def _hubspot(provider: Provider, request: SandboxRequest, violation: Violation) -> SandboxResponse:
    # https://developers.hubspot.com/docs/api/error-handling: 400 VALIDATION_ERROR, 404 for no route.
    if violation.kind in ("route", "method"):
        return provider.error(404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.path}")
    where = _field(violation.location)
    return provider.error(
        400, "VALIDATION_ERROR", f"Invalid input JSON: {where + ': ' if where else ''}{violation.message}"
    )


def _zendesk(provider: Provider, request: SandboxRequest, violation: Violation) -> SandboxResponse:
    # https://developer.zendesk.com/api-reference/introduction/requests/#response-format: 404 for an
    # unknown endpoint; 422 RecordInvalid with `details` per field; 400 for a body that is not JSON.
    if violation.kind in ("route", "method"):
        return provider.error(404, "InvalidEndpoint", "Not found")
    if not violation.location:
        return provider.error(400, "BadRequest", violation.message)
    name = str([part for part in violation.location if isinstance(part, str)][-1])
    detail = {
        "description": f"{name}: {violation.message}",
        "error": "BlankValue" if violation.missing else "InvalidValue",
    }
    body = {"error": "RecordInvalid", "description": "Record validation errors", "details": {name: [detail]}}
    return SandboxResponse(422, body)


def _resend(provider: Provider, request: SandboxRequest, violation: Violation) -> SandboxResponse:
    # https://resend.com/docs/api-reference/errors: 404 not_found, 405 method_not_allowed,
    # 422 missing_required_field / validation_error.
    if violation.kind == "route":
        return provider.error(404, "not_found", "The requested endpoint does not exist.")
    if violation.kind == "method":
        return provider.error(405, "method_not_allowed", "Method is not allowed for the requested path.")
    where = _field(violation.location)
    if violation.location[:1] == ("Idempotency-Key",):
        return provider.error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
    if violation.missing:
        return provider.error(422, "missing_required_field", f"Missing `{where}` field.")
    return provider.error(
        422,
        "validation_error",
        f"Invalid `{where}` field. {violation.message}" if where else violation.message,
    )


REJECTIONS: dict[str, Callable[[Provider, SandboxRequest, Violation], SandboxResponse]] = {
    "stripe": _stripe,
    "hubspot": _hubspot,
    "zendesk": _zendesk,
    "resend": _resend,
}
