"""queue_email (providers/resend_queue.py) on the Pub/Sub emulator: the `notifications` contract, and
what Resend would refuse refused before anything is published."""

import json

import pytest
from launchready.providers.resend_queue import queue_email

from tests.functions.helpers import Subscription

pytestmark = pytest.mark.runs_as("support_worker")


def test_queue_email_publishes_the_notifications_contract(outbox: Subscription) -> None:
    queue_email(key="welcome:u1", to="ada@example.com", subject="Welcome", text="Hello Ada",
                html="<p>Hello Ada</p>", tags={"kind": "welcome"})

    [message] = outbox.drain()
    assert json.loads(message.data) == {"key": "welcome:u1", "to": ["ada@example.com"], "subject": "Welcome",
                                        "text": "Hello Ada", "html": "<p>Hello Ada</p>",
                                        "tags": {"kind": "welcome"}}
    assert message.attributes["event_id"] == "email:welcome:u1"
    assert message.attributes["source_topic"] == "notifications"
    assert message.attributes["correlation_id"]


def test_queue_email_renders_escaped_html_when_only_text_is_given(outbox: Subscription) -> None:
    queue_email(key="plain:1", to=["a@example.com", "b@example.com"], subject="Plain",
                text="Line <one> & more\nline two\n\nSecond paragraph")

    [message] = outbox.drain()
    data = json.loads(message.data)
    assert data["to"] == ["a@example.com", "b@example.com"]
    assert data["html"] == "<p>Line &lt;one&gt; &amp; more<br>\nline two</p>\n<p>Second paragraph</p>"
    assert data["tags"] == {}


@pytest.mark.parametrize("kwargs, problem", [
    ({"to": []}, "recipient"),
    ({"tags": {"kind": "has space"}}, "tags"),
    ({"key": ""}, "key"),
    ({"key": "k" * 257}, "key"),
])
def test_queue_email_rejects_what_resend_would_refuse_and_publishes_nothing(
        outbox: Subscription, kwargs: dict, problem: str) -> None:
    arguments = {"key": "bad:1", "to": ["a@example.com"], "subject": "s", "text": "t", **kwargs}
    with pytest.raises(ValueError, match=problem):
        queue_email(**arguments)
    assert outbox.drain() == []


def test_a_function_that_does_not_publish_to_notifications_cannot_queue(
        outbox: Subscription, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAUNCHREADY_PUBLISHES", "crm-sync")  # crm_worker's grant, not support_worker's
    with pytest.raises(ValueError, match="not among the topics this function publishes to"):
        queue_email(key="k:1", to=["a@example.com"], subject="s", text="t")
    assert outbox.drain() == []
