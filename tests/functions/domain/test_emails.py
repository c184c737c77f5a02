"""The email templates (domain/emails.py): content, escaping of user text in the HTML part only."""

from launchready.domain import emails


def test_support_acknowledgement_escapes_user_text_in_html_only() -> None:
    email = emails.support_acknowledgement(reference="SR-7F3K2Q", name="Ada <script>",
                                           subject='Refund "now" & <b>')
    assert email.subject == "We received your request [SR-7F3K2Q]"
    assert "Hi Ada <script>," in email.text and 'Refund "now" & <b>' in email.text
    assert "<script>" not in email.html and "<b>" not in email.html
    assert "Ada &lt;script&gt;" in email.html
    assert "Refund &quot;now&quot; &amp; &lt;b&gt;" in email.html
    assert "<strong>SR-7F3K2Q</strong>" in email.html


def test_support_acknowledgement_without_a_name_greets_plainly() -> None:
    email = emails.support_acknowledgement(reference="SR-AAAAAA", name="  ", subject="Help")
    assert email.text.startswith("Hi,\n")


def test_payment_failed_links_to_billing_in_both_parts() -> None:
    email = emails.payment_failed(name="Ada", billing_url="https://billing.example.com/p?a=1&b=2",
                                  amount="$9.00")
    assert email.subject == "Your payment didn't go through"
    assert "your payment of $9.00" in email.text
    assert "https://billing.example.com/p?a=1&b=2" in email.text
    assert 'href="https://billing.example.com/p?a=1&amp;b=2"' in email.html


def test_ops_alert_names_the_environment_and_lists_known_details_escaped() -> None:
    email = emails.ops_alert(environment="staging", title="Dead letters",
                             summary="2 messages <dead-lettered>",
                             details={"topic": "crm-sync", "first error": "HTTP 500 <html>", "uid": None})
    assert email.subject == "[launchready staging] Dead letters"
    assert email.text == "2 messages <dead-lettered>\n\ntopic: crm-sync\nfirst error: HTTP 500 <html>\n"
    assert "&lt;dead-lettered&gt;" in email.html and "<html>" not in email.html.split("<body", 1)[1]
    assert "<th align=\"left\">first error</th><td>HTTP 500 &lt;html&gt;</td>" in email.html


def test_first_payment_failed_asks_to_try_again_without_promising_access() -> None:
    email = emails.first_payment_failed(name=" Ada ", billing_url="https://app.example.com/billing",
                                        amount="19.00 USD")
    assert email.text.startswith("Hi Ada,\n\nWe couldn't process your payment of 19.00 USD, so your upgrade")
    assert "https://app.example.com/billing" in email.text and "access stays on" not in email.text
    assert email.html == emails.text_to_html(email.text)


def test_text_to_html_escapes_and_keeps_paragraphs_and_line_breaks() -> None:
    assert emails.text_to_html("Line <one> & more\r\nline two\n\n\nSecond") == (
        "<p>Line &lt;one&gt; &amp; more<br>\nline two</p>\n<p>Second</p>")
