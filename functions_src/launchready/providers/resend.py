"""Resend: transactional and ops email (POST /emails).

The `Idempotency-Key` header makes a redelivered message return the original email id for 24 hours;
beyond that window the email worker's Firestore record keeps the send once-only.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from launchready.platform.config import secret, settings
from launchready.providers.http import Failure, ProviderApi, Rule

EMAILS_PATH = "/emails"
# Resend tag names and values: ASCII letters, numbers, underscores and dashes, up to 256 characters.
_TAG_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _read_error(body: Any) -> tuple[str, str]:
    # {"statusCode":422,"name":"validation_error","message":"..."}
    return str(body.get("name") or ""), str(body.get("message") or "")


ERRORS_DOC = "https://resend.com/docs/api-reference/errors"
LIMITS_DOC = "https://resend.com/docs/api-reference/rate-limit"
# What each answer means, as Resend's errors and usage-limits pages define it (codes are its `name`s).
FAILURES: dict[int | str, Rule] = {
    400: Rule(Failure.PERMANENT, ERRORS_DOC),  # validation_error, invalid_idempotency_key
    401: Rule(Failure.PERMANENT, ERRORS_DOC),  # missing_api_key, restricted_api_key
    403: Rule(Failure.PERMANENT, ERRORS_DOC),  # invalid_api_key, unverified domain
    404: Rule(Failure.PERMANENT, ERRORS_DOC),
    405: Rule(Failure.PERMANENT, ERRORS_DOC),
    # The same key with a different body: a bug, not a blip.
    "409:invalid_idempotent_request": Rule(Failure.PERMANENT, ERRORS_DOC),
    # Another request with the same key is still running: its result is there on the next delivery.
    "409:concurrent_idempotent_requests": Rule(Failure.TRANSIENT, ERRORS_DOC),
    422: Rule(Failure.PERMANENT, ERRORS_DOC),  # validation_error, missing_required_field
    429: Rule(Failure.TRANSIENT, LIMITS_DOC),  # rate_limit_exceeded, with retry-after
    # The team's email quota is spent; it resets with the day (or month): alert, do not spin.
    "429:daily_quota_exceeded": Rule(Failure.QUOTA, LIMITS_DOC, min_wait_seconds=3600.0),
    "429:monthly_quota_exceeded": Rule(Failure.QUOTA, LIMITS_DOC, min_wait_seconds=3600.0),
    500: Rule(Failure.TRANSIENT, ERRORS_DOC),  # application_error, internal_server_error
}

_API = ProviderApi("resend", _read_error, FAILURES)


def email_body(
    *,
    to: str | Sequence[str],
    subject: str,
    html: str,
    text: str,
    tags: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise ValueError("an email needs at least one recipient")
    for name, value in (tags or {}).items():
        if not (_TAG_TEXT.match(name) and _TAG_TEXT.match(value)):
            raise ValueError(f"Resend tags allow only letters, digits, '_' and '-': {name}={value}")
    body: dict[str, Any] = {
        "from": settings().email_from,
        "to": recipients,
        "subject": subject,
        "html": html,
        "text": text,
    }
    if tags:
        body["tags"] = [{"name": name, "value": value} for name, value in sorted(tags.items())]
    return body


def send_email(
    *,
    to: str | Sequence[str],
    subject: str,
    html: str,
    text: str,
    idempotency_key: str,
    correlation_id: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> str:
    """Send one email (or, on a repeat with the same key and body, get the original); returns its id."""
    response = _API.post(
        settings().resend_base_url,
        EMAILS_PATH,
        json_body=email_body(to=to, subject=subject, html=html, text=text, tags=tags),
        headers={"Authorization": f"Bearer {secret('RESEND_API_KEY')}"},
        idempotency_key=idempotency_key,
        correlation_id=correlation_id,
    )
    return str(response.body["id"])
