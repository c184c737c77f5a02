"""`make replay-dlq`: republish a topic's dead-lettered messages to the topic.

The `event_id` attribute is kept, so a replay finishes what failed and repeats nothing (docs/tools.md).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from google.api_core.exceptions import DeadlineExceeded, NotFound, ServiceUnavailable
from google.api_core.retry import Retry, if_exception_type
from google.cloud import pubsub_v1
from google.cloud.pubsub_v1.publisher import client as publisher_client
from google.pubsub_v1.types import PubsubMessage

from tools.exit_codes import ExitCode
from tools.project_files import read_catalog

from .failures import explain

PULL_BATCH = 100
PULL_TIMEOUT_SECONDS = 10.0
PUBLISH_TIMEOUT_SECONDS = 30.0
# An unreachable Pub/Sub (or emulator) is reported after this long rather than the client's 60 s default.
PULL_RETRY = Retry(predicate=if_exception_type(ServiceUnavailable), initial=0.25, maximum=2.0,
                   timeout=PULL_TIMEOUT_SECONDS)
NEEDS = "roles/pubsub.subscriber and roles/pubsub.publisher"
# Added by Pub/Sub when it dead-letters a message; they describe the failed delivery, not the message.
DEAD_LETTER_ATTRIBUTE_PREFIX = "CloudPubSubDeadLetter"


class ReplayError(RuntimeError):
    pass


def dead_letter_subscription(topic: str) -> str:
    return f"{topic}-dlq-sub"


@dataclass
class Summary:
    replayed: list[str] = field(default_factory=list)  # dead-letter message ids
    listed: list[str] = field(default_factory=list)

    def line(self, dry_run: bool) -> str:
        if dry_run:
            return f"dry run: {len(self.listed)} message(s) in the dead-letter subscription, nothing replayed"
        return f"replayed {len(self.replayed)} message(s)"


def replay_attributes(attributes: dict[str, str], dead_letter_message_id: str) -> dict[str, str]:
    kept = {
        name: value for name, value in attributes.items() if not name.startswith(DEAD_LETTER_ATTRIBUTE_PREFIX)
    }
    return {**kept, "replayed_from": dead_letter_message_id}


def publish_raw(
    publisher: pubsub_v1.PublisherClient, topic_path: str, data: bytes, attributes: dict[str, str]
) -> str:
    """One Publish RPC, waiting for the server's message id. The batching `publish()` takes attributes
    as keyword arguments, where a name such as `topic`, `retry` or `timeout` would collide with its own
    parameters; the RPC takes them as a map, so any dead-lettered message is republished unchanged."""
    rpc: Any = super(publisher_client.Client, publisher)  # the generated client underneath the batching one
    response = rpc.publish(
        topic=topic_path,
        messages=[PubsubMessage(data=data, attributes=attributes)],
        timeout=PUBLISH_TIMEOUT_SECONDS,
    )
    return response.message_ids[0]


def published_at(message: PubsubMessage) -> str:
    # proto-plus hands the Timestamp field over as a datetime at run time.
    return message.publish_time.isoformat()  # pyright: ignore[reportAttributeAccessIssue]


def describe(message: PubsubMessage) -> str:
    attributes = dict(message.attributes)
    attempts = attributes.get("CloudPubSubDeadLetterSourceDeliveryCount", "?")
    return (
        f"{message.message_id} event_id={attributes.get('event_id', '-')} "
        f"event_type={attributes.get('event_type', '-')} published={published_at(message)} "
        f"attempts={attempts} bytes={len(message.data)}"
    )


def replay(
    project: str,
    topic: str,
    *,
    max_messages: int | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
    subscriber: pubsub_v1.SubscriberClient | None = None,
    publisher: pubsub_v1.PublisherClient | None = None,
) -> Summary:
    subscriber = subscriber or pubsub_v1.SubscriberClient()
    publisher = publisher or pubsub_v1.PublisherClient()
    subscription = subscriber.subscription_path(project, dead_letter_subscription(topic))
    topic_path = publisher.topic_path(project, topic)
    summary = Summary()
    seen: set[str] = set()
    held: list[str] = []  # dry run: ack ids to hand back at the end

    try:
        while max_messages is None or len(seen) < max_messages:
            wanted = PULL_BATCH if max_messages is None else min(PULL_BATCH, max_messages - len(seen))
            received = _pull(subscriber, subscription, wanted)
            fresh = [item for item in received if item.message.message_id not in seen]
            held += [item.ack_id for item in received if item.message.message_id in seen]
            if not fresh:
                break
            for item in fresh:
                message = item.message
                seen.add(message.message_id)
                if dry_run:
                    summary.listed.append(message.message_id)
                    held.append(item.ack_id)
                    print(f"would replay {describe(message)}", file=out)
                    continue
                new_id = publish_raw(
                    publisher,
                    topic_path,
                    message.data,
                    replay_attributes(dict(message.attributes), message.message_id),
                )
                # Acknowledged only after the republish is stored: a crash in between replays it
                # again, which the ledger absorbs.
                subscriber.acknowledge(subscription=subscription, ack_ids=[item.ack_id])
                summary.replayed.append(message.message_id)
                print(f"replayed {describe(message)} -> {topic} as {new_id}", file=out)
    finally:
        if held:  # release what a dry run looked at, so it is immediately pullable again
            subscriber.modify_ack_deadline(subscription=subscription, ack_ids=held, ack_deadline_seconds=0)
    return summary


def _pull(subscriber: pubsub_v1.SubscriberClient, subscription: str, wanted: int) -> list[Any]:
    request: dict[str, Any] = {"subscription": subscription, "max_messages": wanted}
    if os.environ.get("PUBSUB_EMULATOR_HOST"):
        # The emulator holds a pull on an empty subscription open until the deadline; Pub/Sub itself
        # answers an empty pull promptly, where return_immediately is deprecated.
        request["return_immediately"] = True
    try:
        response = subscriber.pull(request=request, timeout=PULL_TIMEOUT_SECONDS, retry=PULL_RETRY)
    except DeadlineExceeded:  # nothing arrived within the timeout: the subscription is empty
        return []
    except NotFound as exc:
        raise ReplayError(
            f"{subscription} does not exist (has the stack been deployed, or `make up` run?)"
        ) from exc
    return list(response.received_messages)


def _listening(host_port: str) -> bool:
    host, _, port = host_port.rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=2):
            return True
    except (OSError, ValueError):
        return False


def run(
    topic: str,
    *,
    project: str | None = None,
    local: Path | None = None,
    max_messages: int | None = None,
    dry_run: bool = False,
    out: TextIO = sys.stdout,
) -> ExitCode:
    """Replay (or with `dry_run`, list) the dead letters of `topic` in `project`, or on the running
    `make up` whose endpoints.json is `local`: OK, FAILED when a message could not be replayed, USAGE for
    a bad topic or project, ENVIRONMENT for credentials, permission, project or network."""
    topics = list(read_catalog().topics)
    if topic not in topics:
        print(f"error: unknown topic {topic!r}; topics with a dead-letter queue: {', '.join(topics)}",
              file=sys.stderr)
        return ExitCode.USAGE
    if max_messages is not None and max_messages < 1:
        print("error: --max must be at least 1", file=sys.stderr)
        return ExitCode.USAGE
    if local:
        try:
            endpoints = json.loads(local.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: {local} is not readable ({exc}); is `make up` running?", file=sys.stderr)
            return ExitCode.ENVIRONMENT
        os.environ["PUBSUB_EMULATOR_HOST"] = endpoints["emulators"]["pubsub"]
        project = project or endpoints["project_id"]
    project = project or os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCLOUD_PROJECT")
    if not project:
        print("error: pass --project or set GOOGLE_CLOUD_PROJECT", file=sys.stderr)
        return ExitCode.USAGE
    emulator = os.environ.get("PUBSUB_EMULATOR_HOST")
    where = f"emulator {emulator}" if emulator else "GCP"
    if emulator and not _listening(emulator):
        print(f"error: nothing listens at the Pub/Sub emulator {emulator}: start it with `make up` "
              "(or fix PUBSUB_EMULATOR_HOST), then retry", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    print(
        f"{'listing' if dry_run else 'replaying'} {dead_letter_subscription(topic)} -> "
        f"{topic} in project {project} ({where})",
        file=out,
    )
    try:
        summary = replay(project, topic, max_messages=max_messages, dry_run=dry_run, out=out)
    except ReplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    except Exception as exc:
        line = explain(exc, project=project, needs=NEEDS, service="Pub/Sub")
        if line is None:
            raise
        print(f"error: {line}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    print(summary.line(dry_run), file=out)
    return ExitCode.OK
