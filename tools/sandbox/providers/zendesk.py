"""Zendesk Support: tickets with requesters by email and Zendesk's Idempotency-Key behaviour
(a repeat answers the original ticket with `x-idempotency-lookup: hit`; keys last two hours,
https://developer.zendesk.com/api-reference/ticketing/introduction/#idempotency, measured on the
sandbox clock), and the ticket list filtered by external_id."""

import itertools
import re
from typing import Any

from ..idempotency import IdempotencyStore
from ..messages import SandboxRequest, SandboxResponse
from .base import Provider, basic_credentials

TICKETS_PATH = "/api/v2/tickets.json"
_TICKET_PATH = re.compile(r"^/api/v2/tickets/(\d+)\.json$")
PRIORITIES = frozenset({"low", "normal", "high", "urgent"})
IDEMPOTENCY_TTL_SECONDS = 2 * 3600
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ERRORS = {
    400: "BadRequest",
    401: "Couldn't authenticate you",
    403: "Forbidden",
    404: "RecordNotFound",
    422: "RecordInvalid",
    429: "APIRateLimitExceeded",
}


class Zendesk(Provider):
    name = "zendesk"
    path_prefixes = ("/api/v2/",)

    def reset(self) -> None:
        self._tickets: dict[int, dict[str, Any]] = {}
        self._users: dict[str, int] = {}  # requester email -> user id
        self._ticket_ids = itertools.count(1)
        self._user_ids = itertools.count(900001)
        self._agent_id = next(self._user_ids)  # the API user who submits tickets
        self._idempotency = IdempotencyStore(IDEMPOTENCY_TTL_SECONDS, self.clock.now)

    @property
    def idempotency(self) -> IdempotencyStore:
        return self._idempotency

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {"tickets": list(self._tickets.values())}

    def error(self, status: int, code: str = "", message: str = "") -> SandboxResponse:
        error = code or _ERRORS.get(status, "InternalServerError" if status >= 500 else "BadRequest")
        if status == 401 and not code:
            return SandboxResponse(401, {"error": error}, {"WWW-Authenticate": 'Basic realm="Web Password"'})
        body = {"error": error, "description": message or error}
        headers = {"Retry-After": "1"} if status == 429 else {}
        return SandboxResponse(status, body, headers)

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        # "{email}/token:{api_token}" (API token) or "{email}:{password}" (password access).
        credentials = basic_credentials(request)
        if credentials:
            user, secret = credentials
            if "@" in user.removesuffix("/token") and secret:
                return None
        return self.error(401)

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        match = _TICKET_PATH.match(request.path)
        if request.method == "GET" and match:
            ticket = self._tickets.get(int(match.group(1)))
            if ticket is None:
                return self.error(404, message="Not found")
            return SandboxResponse(200, {"ticket": ticket})
        if request.method == "GET" and request.path == TICKETS_PATH:
            return self._list(request)
        if request.method != "POST" or request.path != TICKETS_PATH:
            return self.error(404, message=f"No route for {request.method} {request.path}")
        return self._idempotency.answer_once(
            request,
            lambda: self._create(request),
            lambda: self.error(
                400,
                "IdempotentRequestError",
                "The idempotency key has already been used with different request parameters",
            ),
            stored_status=201,
            replay_headers={"x-idempotency-lookup": "hit"},
            first_headers={"x-idempotency-lookup": "miss"},
        )

    def _list(self, request: SandboxRequest) -> SandboxResponse:
        """GET /api/v2/tickets.json, optionally `?external_id=` (List Tickets' filter), oldest first."""
        external_id = (request.query.get("external_id") or [None])[0]
        tickets = [ticket for ticket in self._tickets.values()
                   if external_id is None or ticket["external_id"] == external_id]
        return SandboxResponse(200, {"tickets": tickets, "next_page": None, "previous_page": None,
                                     "count": len(tickets)})

    def _create(self, request: SandboxRequest) -> SandboxResponse:
        if request.body_error:
            return self.error(400, "InvalidJSON", request.body_error)
        ticket_in = request.body.get("ticket") if isinstance(request.body, dict) else None
        if not isinstance(ticket_in, dict):
            return self.error(400, "ParameterMissing", "Parameter ticket is required")
        details = _validation_details(ticket_in)
        if details:
            body = {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
            return SandboxResponse(422, body)

        requester = ticket_in.get("requester") or {}
        requester_email = str(requester.get("email") or "").lower()
        requester_id = (
            self._users.setdefault(requester_email, next(self._user_ids)) if requester_email else None
        )
        ticket_id = next(self._ticket_ids)
        now = self.clock.iso_now()
        description = ticket_in["comment"]["body"]
        # Zendesk uses the first line of the description when no subject is given.
        subject = ticket_in.get("subject") or description.splitlines()[0][:150]
        ticket = {
            "url": f"{request.base_url}/api/v2/tickets/{ticket_id}.json",
            "id": ticket_id,
            "external_id": ticket_in.get("external_id"),
            "via": {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}},
            "created_at": now,
            "updated_at": now,
            "type": ticket_in.get("type"),
            "subject": subject,
            "raw_subject": subject,
            "description": description,
            "priority": ticket_in.get("priority"),
            "status": "new",
            "requester_id": requester_id or self._agent_id,
            "submitter_id": self._agent_id,
            "assignee_id": None,
            "organization_id": None,
            "group_id": None,
            "tags": sorted(set(ticket_in.get("tags") or [])),
            "custom_fields": [],
            "is_public": bool(ticket_in["comment"].get("public", True)),
        }
        self._tickets[ticket_id] = ticket
        audit = {
            "id": ticket_id * 1000 + 1,
            "ticket_id": ticket_id,
            "created_at": now,
            "author_id": self._agent_id,
            "events": [{"id": ticket_id * 1000 + 2, "type": "Comment", "body": description, "public": True}],
        }
        return SandboxResponse(201, {"ticket": ticket, "audit": audit}, {"Location": ticket["url"]})


def _validation_details(ticket: dict[str, Any]) -> dict[str, list[dict[str, str]]]:
    details: dict[str, list[dict[str, str]]] = {}
    comment = ticket.get("comment")
    if not isinstance(comment, dict) or not str(comment.get("body") or "").strip():
        details["description"] = [{"description": "Description: cannot be blank", "error": "BlankValue"}]
    requester = ticket.get("requester")
    if requester is not None:
        email = requester.get("email") if isinstance(requester, dict) else None
        if not isinstance(email, str) or not _EMAIL.match(email):
            details["requester"] = [
                {
                    "description": f"Requester: Email {email} is not properly formatted",
                    "error": "InvalidValue",
                }
            ]
    priority = ticket.get("priority")
    if priority is not None and priority not in PRIORITIES:
        details["priority"] = [
            {"description": f"Priority: {priority} is not a valid priority", "error": "InvalidValue"}
        ]
    tags = ticket.get("tags")
    if tags is not None and not (
        isinstance(tags, list) and all(isinstance(t, str) and " " not in t for t in tags)
    ):
        details["tags"] = [
            {"description": "Tags: must be a list of words without spaces", "error": "InvalidValue"}
        ]
    return details
