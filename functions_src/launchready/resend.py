"""Resend: transactional and ops email (POST /emails).

The `Idempotency-Key` header makes a redelivered message return the original email id for 24 hours;
beyond that window the email worker's Firestore record keeps the send once-only.
"""

import re
from collections.abc import Mapping, Sequence
from typing import Any

from .config import secret, settings
from .provider_http import ProviderApi

EMAILS_PATH = "/emails"
# Resend tag names and values: ASCII letters, numbers, underscores and dashes, up to 256 characters.
_TAG_TEXT = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


def _read_error(body: Any) -> tuple[str, str]:
    # {"statusCode":422,"name":"validation_error","message":"..."}
    return str(body.get("name") or ""), str(body.get("message") or "")


# Another request with the same key is still running: its result will be there on the next delivery.
# (invalid_idempotent_request, the same key with a different body, stays permanent.)
_API = ProviderApi("resend", _read_error, transient_codes=frozenset({"concurrent_idempotent_requests"}))


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
