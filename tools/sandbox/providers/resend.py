"""Resend: send, get and list emails with Resend's validation, errors and Idempotency-Key rules.

https://resend.com/docs/api-reference/errors; the idempotency rules are in docs/tools.md.
"""

import re
import uuid
from datetime import UTC, datetime
from typing import Any

from ..idempotency import IdempotencyStore
from ..messages import SandboxRequest, SandboxResponse
from .base import Provider, bearer_token

EMAILS_PATH = "/emails"
_EMAIL_PATH = re.compile(r"^/emails/([0-9a-f-]{36})$")
IDEMPOTENCY_TTL_SECONDS = 24 * 3600
MAX_RECIPIENTS = 50
_ADDRESS = re.compile(r"^(?:[^<>]*<)?([^@\s<>]+@[^@\s<>]+\.[^@\s<>]+)>?$")
_TAG_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_NAMES = {
    400: "validation_error",
    401: "missing_api_key",
    403: "invalid_api_key",
    404: "not_found",
    405: "method_not_allowed",
    409: "invalid_idempotent_request",
    422: "validation_error",
    429: "rate_limit_exceeded",
}
# Resend's messages for its quota errors (https://resend.com/docs/api-reference/errors).
_QUOTA_MESSAGES = {
    "daily_quota_exceeded": "You have reached your daily email sending quota.",
    "monthly_quota_exceeded": "You have reached your monthly email sending quota.",
}


class Resend(Provider):
    name = "resend"
    path_prefixes = ("/emails",)

    def reset(self) -> None:
        self._emails: dict[str, dict[str, Any]] = {}
        self._idempotency = IdempotencyStore(IDEMPOTENCY_TTL_SECONDS, self.clock.now)

    @property
    def idempotency(self) -> IdempotencyStore:
        return self._idempotency

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {"emails": list(self._emails.values())}

    def error(self, status: int, code: str = "", message: str = "") -> SandboxResponse:
        name = code or _NAMES.get(status, "internal_server_error" if status >= 500 else "validation_error")
        default = _QUOTA_MESSAGES.get(name) or name.replace("_", " ")
        body = {"statusCode": status, "message": message or default, "name": name}
        # The per-second rate limit says when to come back; a spent quota waits for its reset.
        headers = {"Retry-After": "1", "ratelimit-remaining": "0"} if name == "rate_limit_exceeded" else {}
        return SandboxResponse(status, body, headers)

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        if bearer_token(request):
            return None
        return self.error(
            401,
            "missing_api_key",
            "Missing API key in the authorization header. Include the following header "
            "'Authorization: Bearer YOUR_API_KEY' in the request.",
        )

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        match = _EMAIL_PATH.match(request.path)
        if request.method == "GET" and match:
            email = self._emails.get(match.group(1))
            if email is None:
                return self.error(404, message="Email not found")
            return SandboxResponse(200, _published(email))
        if request.path != EMAILS_PATH:
            return self.error(404, message="The requested endpoint does not exist.")
        if request.method == "GET":
            return self._list(request)
        if request.method != "POST":
            return self.error(405, message="Method is not allowed for the requested path.")
        key = request.idempotency_key
        if request.header("Idempotency-Key") and not 1 <= len(key) <= 256:
            return self.error(400, "invalid_idempotency_key", "The key must be between 1-256 chars.")
        return self._idempotency.answer_once(
            request,
            lambda: self._send(request),
            lambda: self.error(
                409,
                "invalid_idempotent_request",
                "Same idempotency key used with a different request payload. Change your idempotency "
                "key or payload.",
            ),
            stored_status=200,
            in_flight=lambda: self.error(
                409,
                "concurrent_idempotent_requests",
                "Same idempotency key used while original request is still in progress.",
            ),
        )

    def _list(self, request: SandboxRequest) -> SandboxResponse:
        """GET /emails: sent emails, newest first, `limit` (1 to 100, default 20) at a time; `after` an
        email id returns the older ones, `before` the newer ones, not both
        (https://resend.com/docs/api-reference/emails/list-emails,
        https://resend.com/docs/api-reference/pagination)."""
        after, before = (request.query.get(name, [None])[0] for name in ("after", "before"))
        if after and before:
            return self.error(422, message="You can only use 'after' or 'before', not both.")
        limit = int((request.query.get("limit") or ["20"])[0])  # the document bounds it to 1..100
        newest_first = list(reversed(self._emails.values()))
        ids = [email["id"] for email in newest_first]
        cursor = after or before
        if cursor and cursor not in ids:
            return self.error(404, message="Email not found")
        if after:
            page_from = newest_first[ids.index(after) + 1:]
            page, has_more = page_from[:limit], len(page_from) > limit
        elif before:
            page_from = newest_first[:ids.index(before)]
            page, has_more = page_from[-limit:], len(page_from) > limit
        else:
            page, has_more = newest_first[:limit], len(newest_first) > limit
        data = [_published(email) for email in page]
        return SandboxResponse(200, {"object": "list", "has_more": has_more, "data": data})

    def _send(self, request: SandboxRequest) -> SandboxResponse:
        if request.body_error or not isinstance(request.body, dict):
            return self.error(422, message=f"Invalid JSON body. {request.body_error}".strip())
        problem = _validation_problem(request.body)
        if problem:
            return self.error(422, message=problem)
        body = request.body
        email_id = str(uuid.uuid4())
        recipients = [body["to"]] if isinstance(body["to"], str) else list(body["to"])
        email = {
            "object": "email",
            "id": email_id,
            "to": recipients,
            "from": body["from"],
            "created_at": datetime.fromtimestamp(self.clock.now(), UTC).isoformat(sep=" "),
            "subject": body["subject"],
            "html": body.get("html"),
            "text": body.get("text"),
            "bcc": body.get("bcc"),
            "cc": body.get("cc"),
            "reply_to": body.get("reply_to"),
            "last_event": "delivered",
            "tags": body.get("tags") or [],
        }
        # Resend's Email schema types these as strings and lists, never null: leave out what was not sent.
        email = {key: value for key, value in email.items() if value is not None}
        for key in ("bcc", "cc", "reply_to"):
            if isinstance(email.get(key), str):
                email[key] = [email[key]]
        self._emails[email_id] = email
        return SandboxResponse(200, {"id": email_id})


def _validation_problem(body: dict[str, Any]) -> str:
    for field in ("from", "to", "subject"):
        if not body.get(field):
            return f"Missing `{field}` field."
    if not _ADDRESS.match(str(body["from"])):
        return (
            "Invalid `from` field. The email address needs to follow the `email@example.com` or "
            "`Name <email@example.com>` format."
        )
    recipients = [body["to"]] if isinstance(body["to"], str) else body["to"]
    if not isinstance(recipients, list) or len(recipients) > MAX_RECIPIENTS:
        return f"Invalid `to` field. Please use a string or an array of up to {MAX_RECIPIENTS} strings."
    for recipient in recipients:
        if not isinstance(recipient, str) or not _ADDRESS.match(recipient):
            return f"Invalid `to` field. Use the `email@example.com` format: {recipient}"
    if not (body.get("html") or body.get("text") or body.get("react") or body.get("template")):
        return "Missing `html` or `text` field."
    for tag in body.get("tags") or []:
        if not isinstance(tag, dict) or not all(
            _TAG_TEXT.match(str(tag.get(k, ""))) for k in ("name", "value")
        ):
            return "Tags should only contain ASCII letters, numbers, underscores, or dashes."
    return ""


def _published(email: dict[str, Any]) -> dict[str, Any]:
    """An email as Resend's `Email` schema shows it: the tags it was sent with are kept for the sandbox's
    own state (/_sandbox/state) but are not in the schema, so a retrieve or list does not return them."""
    return {key: value for key, value in email.items() if key != "tags"}
