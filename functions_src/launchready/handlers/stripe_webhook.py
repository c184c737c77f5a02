"""`stripe_webhook`: verify the delivery, claim `stripe:{event.id}` in the ledger, publish the event to
`billing-events` as the step "publish", answer 200 once Pub/Sub has stored it.

Nothing is written before the delivery is verified, and concurrent duplicates publish once
(docs/architecture.md, "Stripe webhook").
"""

import flask

from launchready.domain import steps
from launchready.domain.billing_state import HANDLED_EVENT_TYPES
from launchready.platform import after_answer, log
from launchready.platform.config import in_flight, secret
from launchready.platform.ledger import DEFAULT_LEASE_SECONDS, Ledger, StepInProgress, published_record
from launchready.platform.pubsub import publish
from launchready.platform.web import HttpError, endpoint, json_response, read_body
from launchready.providers.stripe_webhooks import (
    StripeEvent,
    decode_payload,
    parse_event,
    signing_secrets,
    verify_signature,
)

FUNCTION = "stripe_webhook"
TOPIC = "billing-events"
# Stripe events are far smaller; the cap keeps a forged giant body from costing memory.
MAX_BODY_BYTES = 256 * 1024


@endpoint(FUNCTION)
def stripe_webhook(request: flask.Request) -> flask.Response:
    payload = decode_payload(read_body(request, max_bytes=MAX_BODY_BYTES))
    verify_signature(payload, request.headers.get("Stripe-Signature"),
                     signing_secrets(secret("STRIPE_WEBHOOK_SECRET")))
    event = parse_event(payload)
    log.bind(event_id=event.ledger_key, event_type=event.type)
    status = accept(event)
    return json_response({"received": True, "event_id": event.id, "status": status})


def accept(event: StripeEvent, ledger: Ledger | None = None) -> str:
    """Record and forward a verified event once; returns published, duplicate or ignored."""
    ledger = ledger or Ledger()
    correlation_id = log.current_correlation_id()
    fields = {"source": FUNCTION, "event_type": event.type, "event_created": event.created,
              "livemode": event.livemode, "correlation_id": correlation_id}
    if event.type not in HANDLED_EVENT_TYPES:  # the billing worker's handler table decides
        claimed = ledger.claim(event.ledger_key, status="ignored", **fields)
        log.info("event type not handled, recorded as ignored" if claimed else "duplicate ignored event")
        return "ignored"

    def publish_event() -> str:
        return publish(TOPIC, event.payload, event_id=event.ledger_key, correlation_id=correlation_id,
                       event_type=event.type)

    try:
        # The claim is the publish step's lease; the answer does not wait for the outcome's write.
        if ledger.claim(event.ledger_key, lease_seconds=DEFAULT_LEASE_SECONDS, status="received",
                        published=False, **fields):
            ledger.run_leased_step(event.ledger_key, steps.PUBLISH, publish_event, published_record,
                                   write_outcome=after_answer.defer)
            return "published"
        earlier = ledger.get(event.ledger_key) or {}
        if earlier.get("published"):
            log.info("duplicate delivery, already published")
            return "duplicate"
        # A non-2xx while the claiming delivery may still be publishing makes Stripe retry later;
        # checking before the step's transaction keeps a burst of duplicates from contending on it.
        message_id, ran_now = ledger.resume_step(event.ledger_key, steps.PUBLISH, publish_event,
                                                 claimed_at=earlier.get("claimed_at"),
                                                 in_flight=in_flight(),
                                                 lease_until=earlier.get("lease_until"))
    except StepInProgress as exc:
        raise _in_progress() from exc
    ledger.update(event.ledger_key, **published_record(message_id))
    return "published" if ran_now else "duplicate"


def _in_progress() -> HttpError:
    return HttpError(409, "event_in_progress", "this event is being processed by another delivery")
