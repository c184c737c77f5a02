"""Queued email: `queue_email` publishes one email to `notifications`, where email_worker sends it
through Resend.

Every email has a caller-chosen `key` that names it for good (e.g. `support-ack:SR-7F3K2Q`): the
message's ledger key is `email:{key}` and the key is Resend's Idempotency-Key, so publishing the same
email twice still sends it once. An email Resend would refuse is refused here, before it is queued.
"""

from collections.abc import Mapping, Sequence

from launchready.domain.emails import text_to_html
from launchready.platform.pubsub import publish
from launchready.providers import resend

TOPIC = "notifications"
MAX_KEY_LENGTH = 256  # Resend's limit for an Idempotency-Key


def event_id_for(key: str) -> str:
    return f"email:{key}"


def queue_email(
    *,
    key: str,
    to: str | Sequence[str],
    subject: str,
    text: str,
    html: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Publish one email to `notifications`; returns once Pub/Sub has stored the message. Raises
    ValueError for a key, recipient list or tag Resend would refuse (nothing is published)."""
    if not key or len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"an email key must be 1-{MAX_KEY_LENGTH} characters")
    recipients = [to] if isinstance(to, str) else list(to)
    html = html if html is not None else text_to_html(text)
    # Validate with the exact body the worker will send, so a bad address list or tag fails here, in
    # the caller, instead of as a message that can never be delivered.
    resend.email_body(to=recipients, subject=subject, html=html, text=text, tags=tags)
    payload = {"key": key, "to": recipients, "subject": subject, "text": text, "html": html,
               "tags": dict(tags or {})}
    publish(TOPIC, payload, event_id=event_id_for(key))

