"""How the store sandboxes push: App Store Server Notifications to the app's server URL, Google Play
real-time developer notifications to the Pub/Sub emulator.

Nothing here reaches a Google or Apple service (docs/tools.md).
"""

from __future__ import annotations

import base64
import re
from dataclasses import asdict, dataclass
from typing import Any

import requests

TIMEOUT_SECONDS = 10.0
TOPIC = re.compile(r"^projects/[a-z][a-z0-9-]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}$")
EMULATOR_HOST = re.compile(r"^(localhost|127\.0\.0\.1|\[::1\]):\d{1,5}$")


@dataclass
class Delivery:
    """What became of one push: `result` in Apple's `sendAttemptResult` words (SUCCESS,
    UNSUCCESSFUL_HTTP_RESPONSE_CODE, TIMED_OUT, NO_RESPONSE;
    `appstoreserverlibrary/models/SendAttemptResult.py`) or NOT_SENT when nowhere to send was configured."""

    result: str
    target: str = ""
    status: int | None = None
    answer: Any = None
    message_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def post_notification(url: str, body: dict[str, Any]) -> Delivery:
    """POST `body` as JSON. Apple counts 200-206 as delivered and anything else as a failure
    (https://developer.apple.com/documentation/appstoreservernotifications/responding-to-app-store-server-notifications)."""
    try:
        response = requests.post(url, json=body, timeout=TIMEOUT_SECONDS)
    except requests.Timeout:
        return Delivery("TIMED_OUT", url)
    except requests.RequestException as exc:
        return Delivery("NO_RESPONSE", url, answer=type(exc).__name__)
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text[:500]
    result = "SUCCESS" if 200 <= response.status_code <= 206 else "UNSUCCESSFUL_HTTP_RESPONSE_CODE"
    return Delivery(result, url, response.status_code, answer)


def publish(emulator_host: str, topic: str, data: bytes) -> Delivery:
    """Publish one message with `data` to `topic` (`projects/P/topics/T`) on the emulator at
    `emulator_host` (host:port on the loopback interface)."""
    if not EMULATOR_HOST.match(emulator_host):
        raise ValueError(f"not a loopback emulator host: {emulator_host!r}")
    if not TOPIC.match(topic):
        raise ValueError(f"not a topic name (projects/PROJECT/topics/TOPIC): {topic!r}")
    url = f"http://{emulator_host}/v1/{topic}:publish"
    message = {"data": base64.b64encode(data).decode()}
    try:
        response = requests.post(url, json={"messages": [message]}, timeout=TIMEOUT_SECONDS)
    except requests.Timeout:
        return Delivery("TIMED_OUT", topic)
    except requests.RequestException as exc:
        return Delivery("NO_RESPONSE", topic, answer=type(exc).__name__)
    if response.status_code != 200:
        return Delivery("UNSUCCESSFUL_HTTP_RESPONSE_CODE", topic, response.status_code, response.text[:500])
    return Delivery("SUCCESS", topic, 200, message_id=response.json()["messageIds"][0])
