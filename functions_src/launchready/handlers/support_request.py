"""`support_request`: a signed-in user's support request, accepted once per client_request_id.

The request document is created with Firestore `create` under a reference derived from
(uid, client_request_id), so a replay finds the same document and answers with the same reference.
The hand-off to `support` is the ledger step "publish" of `support:{reference}`: a replay publishes
again only if the first attempt never completed.
"""

import hashlib
import uuid
from datetime import datetime
from typing import Any

import flask
from google.api_core.exceptions import AlreadyExists

from launchready.domain import steps
from launchready.platform import log
from launchready.platform.auth import User, require_user
from launchready.platform.clients import db
from launchready.platform.config import in_flight
from launchready.platform.ledger import Ledger, StepInProgress, now
from launchready.platform.pubsub import publish
from launchready.platform.validation import RequestValidator
from launchready.platform.web import HttpError, endpoint, json_response, parse_json_object, read_body

FUNCTION = "support_request"
TOPIC = "support"
COLLECTION = "support_requests"
MAX_BODY_BYTES = 16 * 1024
CATEGORIES = ("billing", "account", "bug", "feature", "other")
# Crockford's base32: no I, L, O or U, so a reference read over the phone cannot be misheard.
REFERENCE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
REFERENCE_LENGTH = 6
# 32^6 references: a collision between two requests is rare but possible, so the derivation probes on.
MAX_REFERENCE_PROBES = 8
UUID_IN_WORDS = "a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
# A replay must carry the same request: the same id with other content is a client bug, not a retry.
REPLAY_FIELDS = ("subject", "message", "category")
NEXT_STEPS = ("We have received your request. A confirmation with your reference is on its way to {email}; "
              "our team will reply by email, usually within one business day.")

REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["subject", "message", "category", "client_request_id"],
    "properties": {
        "subject": {"type": "string", "minLength": 1, "maxLength": 150, "pattern": r"\S",
                    "description": "more than spaces"},
        "message": {"type": "string", "minLength": 1, "maxLength": 5000, "pattern": r"\S",
                    "description": "more than spaces"},
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "client_request_id": {"type": "string", "pattern": UUID_PATTERN, "description": UUID_IN_WORDS},
    },
}
_validator = RequestValidator(REQUEST_SCHEMA, "support request")


@endpoint(FUNCTION)
def support_request(request: flask.Request) -> flask.Response:
    user = require_user(request)
    body = validate(parse_json_object(read_body(request, max_bytes=MAX_BODY_BYTES)))
    if not user.email:
        raise HttpError(403, "email_required",
                        "support replies go by email: add an email address to the account")
    client_request_id = str(uuid.UUID(body["client_request_id"]))  # one spelling per request id
    log.bind(uid=user.uid, client_request_id=client_request_id)
    document, created = create_once(user, body, client_request_id)
    log.bind(reference=document["reference"], event_id=event_id(document["reference"]))
    hand_off(document, created)
    return json_response({"reference": document["reference"], "status": "received",
                          "next_steps": NEXT_STEPS.format(email=document["email"])}, 202)


def validate(body: dict[str, Any]) -> dict[str, Any]:
    return _validator.check(body)


def reference_candidates(uid: str, client_request_id: str) -> list[str]:
    """The references a request may get, in order: the first that is free (or already its own) wins."""
    candidates = []
    for probe in range(MAX_REFERENCE_PROBES):
        digest = hashlib.sha256(f"{uid}\n{client_request_id}\n{probe}".encode()).digest()
        bits = int.from_bytes(digest[:8], "big")
        chars = [REFERENCE_ALPHABET[(bits >> (5 * i)) & 31] for i in range(REFERENCE_LENGTH)]
        candidates.append("SR-" + "".join(chars))
    return candidates


def event_id(reference: str) -> str:
    return f"support:{reference}"


def create_once(user: User, body: dict[str, Any], client_request_id: str) -> tuple[dict[str, Any], bool]:
    """The request's document and whether this attempt created it (else an earlier attempt did)."""
    collection = db().collection(COLLECTION)
    for reference in reference_candidates(user.uid, client_request_id):
        document = {
            "reference": reference, "uid": user.uid, "email": user.email, "name": user.name,
            "subject": body["subject"].strip(), "message": body["message"], "category": body["category"],
            "client_request_id": client_request_id, "status": "received", "created_at": now(),
            "correlation_id": log.current_correlation_id(),
        }
        try:
            collection.document(reference).create(document)
            log.info("support request created")
            return document, True
        except AlreadyExists:
            existing = collection.document(reference).get().to_dict() or {}
        if existing.get("uid") == user.uid and existing.get("client_request_id") == client_request_id:
            changed = [field for field in REPLAY_FIELDS if existing.get(field) != document[field]]
            if changed:
                log.warning("support request id reused with different content", changed=changed)
                raise HttpError(409, "idempotency_conflict",
                                "this client_request_id was already used for a different support request "
                                f"({', '.join(changed)} differ); use a new one",
                                reference=reference, fields=changed)
            log.info("support request replayed")
            return existing, False
        log.warning("support reference taken by another request, probing on", taken=reference)
    raise RuntimeError(f"no free support reference after {MAX_REFERENCE_PROBES} probes")


def hand_off(document: dict[str, Any], created: bool) -> None:
    """Publish the request once. A replay publishes only if the attempt that stored the request visibly
    died before publishing; while that attempt may still be running, the replay is told to retry."""
    reference = document["reference"]
    created_at = document["created_at"]
    ledger = Ledger()
    message = {
        "reference": reference, "uid": document["uid"], "email": document["email"], "name": document["name"],
        "subject": document["subject"], "message": document["message"], "category": document["category"],
        "created_at": created_at.isoformat() if isinstance(created_at, datetime) else str(created_at),
    }

    def publish_request() -> str:
        return publish(TOPIC, message, event_id=event_id(reference),
                       correlation_id=log.current_correlation_id())

    try:
        if created:
            ledger.run_step(event_id(reference), steps.PUBLISH, publish_request)
        else:
            ledger.resume_step(event_id(reference), steps.PUBLISH, publish_request,
                               claimed_at=created_at if isinstance(created_at, datetime) else None,
                               in_flight=in_flight())
    except StepInProgress as exc:
        raise _in_progress(reference) from exc


def _in_progress(reference: str) -> HttpError:
    # The same request is being handed on by a concurrent attempt; the app retries with the same id.
    return HttpError(409, "request_in_progress", "this request is already being submitted; retry shortly",
                     reference=reference)
