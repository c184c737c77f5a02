"""Zendesk Support: one ticket per support request (POST /api/v2/tickets.json).

The `Idempotency-Key` header makes a redelivered message return the original ticket instead of a
second one, and `external_id` carries the human reference so agents can find the request.
"""

import re
from typing import Any

from .config import secret, settings
from .provider_http import ProviderApi

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


_API = ProviderApi("zendesk", _read_error)


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
