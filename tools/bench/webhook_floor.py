"""The floor `bench webhook` measures `stripe_webhook` against: verify, one write, one publish.

Same signature check, clients and process settings as the real handler; nothing else (docs/tools.md).
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
