"""The floor `stripe_webhook` is measured against (`python -m tools.bench.webhook`): an HTTP function
that only verifies the Stripe signature, creates one Firestore document and publishes once, with the
same signature check and clients as the real handler and none of its ledger, logging or error handling.

Served by functions-framework exactly like the stack's functions (same process settings and
environment), with `launchready` importable through PYTHONPATH=functions_src.
"""

import functools
import json
import os
from datetime import UTC, datetime

import flask
from google.cloud import firestore, pubsub_v1
from launchready.providers.stripe_webhooks import decode_payload, signing_secrets, verify_signature

COLLECTION = "bench_floor"
TOPIC = "billing-events"


@functools.cache
def _db() -> firestore.Client:
    return firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])


@functools.cache
def _publisher() -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient()


def floor_webhook(request: flask.Request) -> flask.Response:
    if request.method == "GET":
        return flask.jsonify({"status": "ok"})
    payload = decode_payload(request.get_data())
    verify_signature(
        payload, request.headers.get("Stripe-Signature"), signing_secrets(os.environ["STRIPE_WEBHOOK_SECRET"])
    )
    event_id = json.loads(payload)["id"]
    _db().collection(COLLECTION).document(event_id).create({"received_at": datetime.now(UTC)})
    topic = _publisher().topic_path(os.environ["GOOGLE_CLOUD_PROJECT"], TOPIC)
    message_id = _publisher().publish(topic, payload.encode(), event_id=event_id).result(timeout=10)
    return flask.jsonify({"received": True, "event_id": event_id, "message_id": message_id})
