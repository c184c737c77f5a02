"""`email_worker`: sends each queued email through Resend, once per notification key: the ledger step
`resend_send`, Resend's Idempotency-Key and the `notifications/{key}` record written after the send
(docs/architecture.md, "Email once").
"""

from typing import Any

from google.api_core.exceptions import AlreadyExists

from launchready.domain import steps
from launchready.domain.emails import text_to_html
from launchready.platform import log
from launchready.platform.clients import db
from launchready.platform.errors import PermanentError
from launchready.platform.ledger import Ledger, doc_id, now
from launchready.platform.push import PushMessage, worker
from launchready.providers import resend

NOTIFICATIONS = "notifications"


@worker("email_worker")
def email_worker(message: PushMessage) -> None:
    email = _parse(message.data)
    key = email["key"]
    record = db().collection(NOTIFICATIONS).document(doc_id(key))
    existing = record.get()
    if existing.exists:
        sent = existing.to_dict() or {}
        log.info("email already sent", notification_key=key, resend_id=sent.get("resend_id"))
        return

    correlation_id = log.current_correlation_id()  # the one push bound for this delivery

    def send() -> str:
        try:
            return resend.send_email(to=email["to"], subject=email["subject"], html=email["html"],
                                     text=email["text"], tags=email["tags"], idempotency_key=key,
                                     correlation_id=correlation_id)
        except ValueError as exc:  # the adapter's own validation: a redelivery cannot fix the message
            raise PermanentError("invalid_email", str(exc), provider="resend") from exc

    def no_lookup() -> None:
        log.warning("an earlier attempt may have sent this email; Resend's key covers 24 h only, so "
                    "beyond that it is sent again", possible_duplicate_email=True, notification_key=key)
        return None

    resend_id = Ledger().run_step(message.event_id, steps.RESEND_SEND, send, reconcile=no_lookup)
    try:
        record.create({"key": key, "to": email["to"], "subject": email["subject"],
                       "tags": dict(email["tags"]), "resend_id": resend_id, "sent_at": now(),
                       "correlation_id": correlation_id, "event_id": message.event_id})
    except AlreadyExists:
        pass  # a concurrent delivery of the same key recorded it first; same email, same id
    log.info("email sent", notification_key=key, resend_id=resend_id, recipients=len(email["to"]))


def _parse(data: dict[str, Any]) -> dict[str, Any]:
    """The `notifications` message contract; anything else is permanent (retrying cannot fix it)."""
    key, to, subject, text = data.get("key"), data.get("to"), data.get("subject"), data.get("text")
    html, tags = data.get("html"), data.get("tags") or {}
    if not isinstance(key, str) or not key:
        raise PermanentError("invalid_message", "key is missing")
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(address, str) and address for address in to):
        raise PermanentError("invalid_message", "to must be a non-empty list of addresses")
    if not isinstance(subject, str) or not subject.strip():
        raise PermanentError("invalid_message", "subject is missing")
    if not isinstance(text, str) or not text:
        raise PermanentError("invalid_message", "text is missing")
    if html is not None and not isinstance(html, str):
        raise PermanentError("invalid_message", "html must be a string")
    if not isinstance(tags, dict):
        raise PermanentError("invalid_message", "tags must be an object")
    if not html:
        html = text_to_html(text)  # the same rendering queue_email uses
    return {"key": key, "to": to, "subject": subject, "text": text, "html": html,
            "tags": {str(name): str(value) for name, value in tags.items()}}
