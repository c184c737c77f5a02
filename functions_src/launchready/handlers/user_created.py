"""`user_created`: a new `users/{uid}` profile queues the contact's first CRM upsert.

In the cloud the Firestore event's data is protobuf; it is not parsed. The uid comes from the
CloudEvent subject (`documents/users/<uid>`) and the profile is read from Firestore, which also keeps
the code unchanged for the local runner's binary-mode HTTP delivery. `signup:{uid}` is claimed in the
ledger and the publish is its step, so a redelivered event queues the upsert once.
"""

from typing import Any

import flask
import functions_framework
from cloudevents.http import CloudEvent

from launchready.domain import steps
from launchready.platform import firestore_events, log
from launchready.platform.clients import db
from launchready.platform.config import in_flight
from launchready.platform.ledger import Ledger
from launchready.platform.pubsub import publish
from launchready.platform.web import endpoint, json_response
from launchready.records import journal

FUNCTION = "user_created"
TOPIC = "crm-sync"


def crm_message(uid: str) -> tuple[dict[str, Any], str]:
    """The crm-sync message for a sign-up and its event id (crm:<uid>:<source_event_id>)."""
    source_event_id = f"signup:{uid}"
    payload = {"uid": uid, "reason": "signed_up", "source_event_id": source_event_id, "event_created": None}
    return payload, f"crm:{uid}:{source_event_id}"


@functions_framework.http
@endpoint(FUNCTION)
def user_created(request: flask.Request) -> flask.Response:
    """Eventarc delivers the Firestore event as an HTTP POST carrying a CloudEvent (binary or structured
    mode). Served as an HTTP function so that, like every entry point, a GET answers health."""
    handle_created(firestore_events.cloud_event(request))
    return json_response({"status": "ok"})


def handle_created(event: CloudEvent) -> None:
    uid = firestore_events.uid_from_subject(event.get("subject"))
    key = f"signup:{uid}"
    ledger = Ledger()
    earlier = ledger.get(key) if uid else None
    # A redelivery keeps the correlation id of the first delivery, so the whole chain shares one.
    correlation_id = (earlier or {}).get("correlation_id") or log.new_correlation_id()
    with log.bound(function=FUNCTION, correlation_id=correlation_id, event_id=key if uid else None,
                   cloud_event_id=event.get("id"), uid=uid):
        if event.get("type") != firestore_events.CREATED or uid is None:
            # Acknowledged: redelivering an event this function cannot use would never succeed.
            log.warning("not a users/{uid} create event, ignored", cloud_event_type=event.get("type"),
                        subject=event.get("subject"))
            return
        if earlier and earlier.get("published"):
            log.info("duplicate delivery, the crm upsert is already queued")
            return
        profile = db().collection("users").document(uid).get()
        if not profile.exists:
            log.info("profile deleted before its create event was handled, nothing to sync")
            return
        email = (profile.to_dict() or {}).get("email")
        if isinstance(email, str) and email:
            journal.index_email(email, uid)  # the ops console's search by email
        payload, event_id = crm_message(uid)

        def publish_signup() -> str:
            return publish(TOPIC, payload, event_id=event_id, correlation_id=correlation_id)

        # A failed publish raises, so the event is retried (the trigger's retry policy) and resumes here.
        if ledger.claim(key, source=FUNCTION, cloud_event_id=event.get("id"), correlation_id=correlation_id):
            log.info("sign-up claimed")
            message_id = ledger.run_step(key, steps.PUBLISH, publish_signup)
        else:
            # Claimed by a concurrent delivery that may still be publishing: StepInProgress fails this one,
            # so the event is retried later and finds the upsert queued (or takes over if that one died).
            message_id, _ = ledger.resume_step(key, steps.PUBLISH, publish_signup,
                                               claimed_at=(earlier or {}).get("claimed_at"),
                                               in_flight=in_flight())
        ledger.update(key, published=True, message_id=message_id)
        log.info("crm upsert queued")
