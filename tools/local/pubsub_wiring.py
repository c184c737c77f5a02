"""Topics and subscriptions on the Pub/Sub emulator, derived from the catalog like the cloud's.

Push subscriptions point at the push relay, which forwards to the worker (docs/tools.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from google.api_core import exceptions
from google.cloud import pubsub_v1
from google.protobuf import duration_pb2
from google.pubsub_v1 import types

from components.catalog import Catalog


@dataclass(frozen=True)
class PushRoute:
    function: str
    topic: str
    subscription: str
    push_endpoint: str


def dead_letter_topic(topic: str) -> str:
    return f"{topic}-dlq"


def dead_letter_subscription(topic: str) -> str:
    return f"{topic}-dlq-sub"


def push_subscription(topic: str, function: str) -> str:
    """The cloud's name for a worker's push subscription (components/functions.py)."""
    return f"{topic}-push-{function.replace('_', '-')}"


def _seconds(value: int) -> duration_pb2.Duration:
    return duration_pb2.Duration(seconds=value)


def _create(call, **kwargs) -> None:  # type: ignore[no-untyped-def]
    try:
        call(**kwargs)
    except exceptions.AlreadyExists:
        pass  # a restarted wiring step over the same emulator is fine


def wire(catalog: Catalog, project_id: str, relay_url: str) -> list[PushRoute]:
    """Create everything (the emulator must be reachable through PUBSUB_EMULATOR_HOST)."""
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    policy = catalog.push_subscription
    try:
        for topic in catalog.topics:
            _create(publisher.create_topic, name=publisher.topic_path(project_id, topic))
            dlq_path = publisher.topic_path(project_id, dead_letter_topic(topic))
            _create(publisher.create_topic, name=dlq_path)
            _create(
                subscriber.create_subscription,
                request=types.Subscription(
                    name=subscriber.subscription_path(project_id, dead_letter_subscription(topic)),
                    topic=dlq_path,
                    ack_deadline_seconds=policy.ack_deadline_seconds,
                    message_retention_duration=_seconds(policy.dead_letter_retention_seconds),
                    retain_acked_messages=True,
                    expiration_policy=types.ExpirationPolicy(),  # never expires
                ),
            )
        routes = []
        for spec in catalog.by_trigger("pubsub"):
            topic = spec.trigger.topic or ""
            route = PushRoute(
                spec.name, topic, push_subscription(topic, spec.name), f"{relay_url}/{spec.name}"
            )
            _create(
                subscriber.create_subscription,
                request=types.Subscription(
                    name=subscriber.subscription_path(project_id, route.subscription),
                    topic=publisher.topic_path(project_id, topic),
                    push_config=types.PushConfig(push_endpoint=route.push_endpoint),
                    ack_deadline_seconds=policy.ack_deadline_seconds,
                    message_retention_duration=_seconds(policy.message_retention_seconds),
                    retry_policy=types.RetryPolicy(
                        minimum_backoff=_seconds(policy.min_backoff_seconds),
                        maximum_backoff=_seconds(policy.max_backoff_seconds),
                    ),
                    dead_letter_policy=types.DeadLetterPolicy(
                        dead_letter_topic=publisher.topic_path(project_id, dead_letter_topic(topic)),
                        max_delivery_attempts=policy.max_delivery_attempts,
                    ),
                    expiration_policy=types.ExpirationPolicy(),
                ),
            )
            routes.append(route)
        return routes
    finally:
        subscriber.close()
        publisher.transport.close()
