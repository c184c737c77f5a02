"""Zendesk Support: one ticket per support request (POST /api/v2/tickets.json).

The ticket carries our reference as `external_id`, so `find_ticket` finds it after Zendesk's two-hour
Idempotency-Key has expired (docs/architecture.md, "One ticket").
"""

import re
from typing import Any

from launchready.platform.config import secret, settings
from launchready.providers.http import Failure, ProviderApi, Rule

TICKETS_PATH = "/api/v2/tickets.json"
PRIORITIES = frozenset({"low", "normal", "high", "urgent"})


def _read_error(body: Any) -> tuple[str, str]:
    # {"error":"RecordInvalid","description":"Record validation errors","details":{...}}
    # or, for some endpoints, {"error":{"title":"...","message":"..."}}.
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("title") or ""), str(error.get("message") or "")
    detail = str(body.get("description") or "")
    if body.get("details"):
        detail = f"{detail} {body['details']}".strip()
    return str(error or ""), detail


REQUESTS_DOC = "https://developer.zendesk.com/api-reference/introduction/requests/"
LIMITS_DOC = "https://developer.zendesk.com/api-reference/introduction/rate-limits/"
# What each answer means, as Zendesk's request-format (errors) and rate-limit pages define it.
FAILURES: dict[int | str, Rule] = {
    400: Rule(Failure.PERMANENT, REQUESTS_DOC),  # malformed request (and IdempotentRequestError)
    401: Rule(Failure.PERMANENT, REQUESTS_DOC),
    403: Rule(Failure.PERMANENT, REQUESTS_DOC),
    404: Rule(Failure.PERMANENT, REQUESTS_DOC),
    409: Rule(Failure.TRANSIENT, REQUESTS_DOC),  # a concurrent update of the same record: retry
    422: Rule(Failure.PERMANENT, REQUESTS_DOC),  # RecordInvalid
    # "responds with a 429 ... a Retry-After header that tells you how many seconds to wait".
    429: Rule(Failure.TRANSIENT, LIMITS_DOC),
    500: Rule(Failure.TRANSIENT, REQUESTS_DOC),
    503: Rule(Failure.TRANSIENT, REQUESTS_DOC),  # maintenance or load shedding, with Retry-After
}

_API = ProviderApi("zendesk", _read_error, FAILURES)


def _tag(value: str) -> str:
    # Zendesk tags are lower-case words; a space would split one tag into two.
    return re.sub(r"[^a-z0-9_]+", "_", value.strip().lower()).strip("_")


def ticket_body(
    *,
    reference: str,
    subject: str,
    body: str,
    requester_email: str,
    requester_name: str,
    category: str,
    priority: str,
) -> dict[str, Any]:
    if priority not in PRIORITIES:
        raise ValueError(f"unknown Zendesk priority: {priority!r}")
    tags = ["launchready"] + ([f"category_{_tag(category)}"] if _tag(category) else [])
    return {
        "ticket": {
            "subject": subject,
            "comment": {"body": body},
            "requester": {"email": requester_email, "name": requester_name},
            "external_id": reference,
            "priority": priority,
            "tags": tags,
        }
    }


def create_ticket(
    *,
    reference: str,
    subject: str,
    body: str,
    requester_email: str,
    requester_name: str,
    category: str,
    priority: str,
    idempotency_key: str,
    correlation_id: str | None = None,
) -> int:
    """Create the ticket (or, on a repeat with the same key and body, get the original); returns its id."""
    payload = ticket_body(
        reference=reference,
        subject=subject,
        body=body,
        requester_email=requester_email,
        requester_name=requester_name,
        category=category,
        priority=priority,
    )
    response = _API.post(
        settings().zendesk_base_url,
        TICKETS_PATH,
        json_body=payload,
        # API token auth: the agent's email with "/token" as the user name, the token as the password.
        auth=(f"{secret('ZENDESK_EMAIL')}/token", secret("ZENDESK_API_TOKEN")),
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
    )
    return int(response.body["ticket"]["id"])


def find_ticket(*, reference: str, correlation_id: str | None = None) -> int | None:
    """The id of the ticket whose external_id is `reference`, or None if there is none (the oldest if
    there are several). Raises TransientError / PermanentError like create_ticket."""
    response = _API.request(
        "GET",
        settings().zendesk_base_url,
        TICKETS_PATH,
        params={"external_id": reference},
        auth=(f"{secret('ZENDESK_EMAIL')}/token", secret("ZENDESK_API_TOKEN")),
        correlation_id=correlation_id,
    )
    ids = [int(ticket["id"]) for ticket in response.body.get("tickets") or []
           if ticket.get("external_id") == reference]
    return min(ids) if ids else None
