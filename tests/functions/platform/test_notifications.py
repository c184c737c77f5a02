"""queue_email on the Pub/Sub emulator, and the email templates' content and escaping."""

import json

import pytest
from launchready.platform import notifications
from launchready.platform.config import settings

from tests.functions.helpers import Subscription


def test_queue_email_publishes_the_notifications_contract(outbox: Subscription) -> None:
    notifications.queue_email(key="welcome:u1", to="ada@example.com", subject="Welcome",
                              text="Hello Ada", html="<p>Hello Ada</p>", tags={"kind": "welcome"})

    [message] = outbox.drain()
    assert json.loads(message.data) == {"key": "welcome:u1", "to": ["ada@example.com"], "subject": "Welcome",
                                        "text": "Hello Ada", "html": "<p>Hello Ada</p>",
                                        "tags": {"kind": "welcome"}}
    assert message.attributes["event_id"] == "email:welcome:u1"
    assert message.attributes["source_topic"] == "notifications"
    assert message.attributes["correlation_id"]


def test_queue_email_renders_escaped_html_when_only_text_is_given(outbox: Subscription) -> None:
    notifications.queue_email(key="plain:1", to=["a@example.com", "b@example.com"], subject="Plain",
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
        notifications.queue_email(**arguments)
    assert outbox.drain() == []


def test_support_acknowledgement_escapes_user_text_in_html_only() -> None:
    email = notifications.support_acknowledgement(reference="SR-7F3K2Q", name="Ada <script>",
                                                  subject='Refund "now" & <b>')
    assert email.subject == "We received your request [SR-7F3K2Q]"
    assert "Hi Ada <script>," in email.text and 'Refund "now" & <b>' in email.text
    assert "<script>" not in email.html and "<b>" not in email.html
    assert "Ada &lt;script&gt;" in email.html
    assert "Refund &quot;now&quot; &amp; &lt;b&gt;" in email.html
    assert "<strong>SR-7F3K2Q</strong>" in email.html


def test_support_acknowledgement_without_a_name_greets_plainly() -> None:
    email = notifications.support_acknowledgement(reference="SR-AAAAAA", name="  ", subject="Help")
    assert email.text.startswith("Hi,\n")


def test_payment_failed_links_to_billing_in_both_parts() -> None:
    default = notifications.payment_failed(name="Ada")
    assert f"{settings().app_url}/billing" in default.text
    assert f'href="{settings().app_url}/billing"' in default.html

    email = notifications.payment_failed(name="Ada", billing_url="https://billing.example.com/p?a=1&b=2",
                                         amount="$9.00")
    assert email.subject == "Your payment didn't go through"
    assert "your payment of $9.00" in email.text
    assert "https://billing.example.com/p?a=1&b=2" in email.text
    assert 'href="https://billing.example.com/p?a=1&amp;b=2"' in email.html


def test_ops_alert_names_the_environment_and_lists_known_details_escaped() -> None:
    email = notifications.ops_alert(title="Dead letters", summary="2 messages <dead-lettered>",
                                    details={"topic": "crm-sync", "first error": "HTTP 500 <html>",
                                             "uid": None})
    assert email.subject == f"[launchready {settings().environment}] Dead letters"
    assert email.text == "2 messages <dead-lettered>\n\ntopic: crm-sync\nfirst error: HTTP 500 <html>\n"
    assert "&lt;dead-lettered&gt;" in email.html and "<html>" not in email.html.split("<body", 1)[1]
    assert "<th align=\"left\">first error</th><td>HTTP 500 &lt;html&gt;</td>" in email.html
