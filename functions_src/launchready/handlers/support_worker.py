"""`support_worker`: one Zendesk ticket per support request, its id written back, one acknowledgement
email: ledger steps on `support:{reference}` resumed at the first unfinished one, and a lookup by
`external_id` before any repeated attempt creates a ticket (docs/architecture.md, "One ticket").
"""

from dataclasses import dataclass
from typing import Any

from google.cloud.firestore_v1.base_query import FieldFilter

from launchready.domain import emails, steps
from launchready.platform import log
from launchready.platform.clients import db
from launchready.platform.errors import PermanentError
from launchready.platform.ledger import Ledger, now
from launchready.platform.push import PushMessage, worker
from launchready.providers import zendesk
from launchready.providers.resend_queue import queue_email

SUPPORT_REQUESTS = "support_requests"
FAILED = "failed"
# Money problems first; ideas can wait. Categories are the ones support_request accepts.
PRIORITY_BY_CATEGORY = {"billing": "high", "account": "normal", "bug": "normal", "feature": "low",
                        "other": "normal"}


@dataclass(frozen=True)
class SupportRequest:
    reference: str
    uid: str
    email: str
    name: str
    subject: str
    message: str
    category: str
    created_at: str

    @property
    def priority(self) -> str:
        return PRIORITY_BY_CATEGORY.get(self.category, "normal")

    def ticket_text(self) -> str:
        """The customer's words first; the facts an agent needs to find the user below them."""
        return (f"{self.message}\n\n--\nReference: {self.reference}\nCategory: {self.category}\n"
                f"User id: {self.uid}\nSubmitted: {self.created_at}")


@worker("support_worker")
def support_worker(message: PushMessage) -> None:
    request = _parse(message.data)
    log.bind(reference=request.reference, uid=request.uid)
    ledger, key, correlation_id = Ledger(), message.event_id, log.current_correlation_id()

    def create_ticket() -> int:
        try:
            return zendesk.create_ticket(
                reference=request.reference, subject=request.subject, body=request.ticket_text(),
                requester_email=request.email, requester_name=request.name or request.email,
                category=request.category, priority=request.priority,
                idempotency_key=request.reference, correlation_id=correlation_id)
        except ValueError as exc:  # the adapter's own validation: a redelivery cannot fix the request
            raise PermanentError("invalid_ticket", str(exc), provider="zendesk") from exc

    def find_ticket() -> int | None:
        return zendesk.find_ticket(reference=request.reference, correlation_id=correlation_id)

    try:
        ticket_id = ledger.run_step(key, steps.ZENDESK_TICKET, create_ticket, reconcile=find_ticket)
    except PermanentError as refused:
        # The 202 promised a confirmation: the request says it failed, and the user hears so once.
        code = refused.code
        ledger.run_step(key, steps.FAILED_NOTICE, lambda: _fail(request, code))
        raise
    ledger.run_step(key, steps.WRITE_BACK, lambda: _write_back(request, ticket_id))
    ledger.run_step(key, steps.ACK_EMAIL, lambda: _queue_acknowledgement(request))
    log.info("support request handed to zendesk", ticket_id=ticket_id)


def _request_document(request: SupportRequest) -> Any:
    """The support_requests document of the request. Raises PermanentError when none or several match."""
    # The document id is support_request's business; the reference (with the uid) identifies it.
    matches = list(db().collection(SUPPORT_REQUESTS)
                   .where(filter=FieldFilter("reference", "==", request.reference))
                   .where(filter=FieldFilter("uid", "==", request.uid))
                   .limit(2).stream())
    if len(matches) != 1:
        raise PermanentError("support_request_not_found" if not matches else "ambiguous_reference",
                             f"{len(matches)} support_requests documents match {request.reference}")
    return matches[0]


def _write_back(request: SupportRequest, ticket_id: int) -> str:
    """Record the ticket on the request; returns the request's document id."""
    document = _request_document(request)
    document.reference.update({"ticket_id": ticket_id, "status": "ticket_created",
                               "ticket_created_at": now()})
    return str(document.id)


def _fail(request: SupportRequest, code: str) -> dict[str, str]:
    """Zendesk refused the ticket for good: the request's status becomes `failed` with the message the
    user is shown (and emailed); ops see the sync failure. A request without its document is only
    recorded (there is nothing to mark)."""
    try:
        document = _request_document(request)
    except PermanentError:
        return {"status": "not_marked"}
    email = emails.support_failed(reference=request.reference, name=request.name, subject=request.subject)
    document.reference.update({"status": FAILED, "failure_code": code, "failed_at": now(),
                               "user_message": emails.support_failed_message(request.reference)})
    queue_email(key=f"support-failed:{request.reference}", to=[request.email], subject=email.subject,
                text=email.text, html=email.html, tags={"kind": "support_failed"})
    return {"status": FAILED}


def _queue_acknowledgement(request: SupportRequest) -> None:
    email = emails.support_acknowledgement(reference=request.reference, name=request.name,
                                           subject=request.subject)
    queue_email(key=f"support-ack:{request.reference}", to=[request.email], subject=email.subject,
                text=email.text, html=email.html, tags={"kind": "support_ack"})


def _parse(data: dict[str, Any]) -> SupportRequest:
    """The `support` message contract; a malformed message is permanent (retrying cannot fix it)."""
    required = ("reference", "uid", "email", "subject", "message")
    missing = [name for name in required if not isinstance(data.get(name), str) or not data[name].strip()]
    if missing:
        raise PermanentError("invalid_message", f"missing or empty: {', '.join(missing)}")
    return SupportRequest(
        reference=data["reference"].strip(), uid=data["uid"], email=data["email"].strip(),
        name=str(data.get("name") or "").strip(), subject=data["subject"].strip(), message=data["message"],
        category=str(data.get("category") or "other"), created_at=str(data.get("created_at") or ""))
