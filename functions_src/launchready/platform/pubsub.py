"""Publishing to the stack's topics. Every message carries `event_id` (its ledger key, stable across
redeliveries and replays), `correlation_id` and `source_topic` (where a dead letter came from) as
attributes. (`topic` itself cannot be an attribute name: it is the client's first parameter.)"""

import functools
import json
from typing import Any

from google.cloud import pubsub_v1

from launchready.platform import log
from launchready.platform.config import publishes, settings
from launchready.platform.errors import TransientError

PUBLISH_TIMEOUT_SECONDS = 10


@functools.cache
def _publisher() -> pubsub_v1.PublisherClient:
    return pubsub_v1.PublisherClient()


def topic_path(topic: str) -> str:
    """The topic's resource name. Raises ValueError for a topic this function may not publish to (its
    catalog entry's `publishes`), which the cloud would refuse too."""
    if topic not in publishes():
        raise ValueError(f"{topic!r} is not among the topics this function publishes to "
                         f"({', '.join(publishes())}): its `publishes` in components/data/catalog.json")
    return _publisher().topic_path(settings().project_id, topic)


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def publish(topic: str, payload: dict[str, Any], *, event_id: str, correlation_id: str | None = None,
            **attributes: str) -> str:
    """Publish and wait for the server's ack, so a 2xx answer upstream means the message is stored."""
    correlation_id = correlation_id or log.current_correlation_id() or log.new_correlation_id()
    future = _publisher().publish(topic_path(topic), encode(payload), event_id=event_id,
                                  correlation_id=correlation_id, source_topic=topic, **attributes)
    try:
        message_id = future.result(timeout=PUBLISH_TIMEOUT_SECONDS)
    except Exception as exc:  # the client raises several transport error types; all are retryable here
        raise TransientError(f"publish to {topic} failed: {exc}") from exc
    log.info("published", topic=topic, message_id=message_id, published_event_id=event_id)
    return message_id
