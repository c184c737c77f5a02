"""The emails the stack sends, each a pure function of what it needs, returning subject, text and HTML.

Text from users (names, subjects) reaches the HTML part escaped and the text part as written.
"""

import html as html_lib
from collections.abc import Mapping, Sequence
from typing import NamedTuple


class Email(NamedTuple):
    subject: str
    text: str
    html: str


def text_to_html(text: str) -> str:
    """Plain text as minimal HTML: escaped, one paragraph per blank-line-separated block."""
    blocks = [block.strip() for block in text.replace("\r\n", "\n").split("\n\n") if block.strip()]
    paragraphs = ("<p>" + _escape(block).replace("\n", "<br>\n") + "</p>" for block in blocks)
    return "\n".join(paragraphs)


def _escape(value: str) -> str:
    return html_lib.escape(value, quote=True)


def _greeting(name: str | None) -> str:
    name = (name or "").strip()
    return f"Hi {name}," if name else "Hi,"


def _layout(paragraphs: Sequence[str], extra: str = "") -> str:
    """Paragraphs that are already HTML (escaped by the caller) in a plain, client-safe wrapper."""
    body = "\n".join([f"<p>{paragraph}</p>" for paragraph in paragraphs] + ([extra] if extra else []))
    return ('<!doctype html>\n<html><body style="font-family:Arial,Helvetica,sans-serif;'
            f'font-size:15px;line-height:1.5;color:#1a1a1a">\n{body}\n</body></html>')


def support_acknowledgement(*, reference: str, name: str | None, subject: str) -> Email:
    """Sent once per support request when its ticket exists."""
    email_subject = f"We received your request [{reference}]"
    text = (
        f"{_greeting(name)}\n\n"
        f"Thanks for getting in touch. We received your request \"{subject}\" and a member of the team "
        f"will reply by email.\n\n"
        f"Your reference is {reference}. Reply to this email or quote the reference if you need to add "
        f"anything.\n"
    )
    html = _layout([
        _escape(_greeting(name)),
        f"Thanks for getting in touch. We received your request &ldquo;{_escape(subject)}&rdquo; and a "
        f"member of the team will reply by email.",
        f"Your reference is <strong>{_escape(reference)}</strong>. Reply to this email or quote the "
        f"reference if you need to add anything.",
    ])
    return Email(email_subject, text, html)


def support_failed_message(reference: str) -> str:
    """What the user is told (in the app and by email) when their request could not be filed."""
    return (f"We could not file your request {reference} with our support system. Our team has been "
            f"alerted and will contact you by email; you do not need to send it again.")


def support_failed(*, reference: str, name: str | None, subject: str) -> Email:
    """Sent once when a support request was accepted (202) but its ticket could not be created."""
    email_subject = f"About your request [{reference}]"
    text = f"{_greeting(name)}\n\nAbout \"{subject}\": {support_failed_message(reference)}\n"
    html = _layout([_escape(_greeting(name)),
                    f"About &ldquo;{_escape(subject)}&rdquo;: {_escape(support_failed_message(reference))}"])
    return Email(email_subject, text, html)


def payment_failed(*, name: str | None, billing_url: str, amount: str | None = None) -> Email:
    """Recovery email after a failed renewal payment: what happened and where to fix it."""
    what = f"your payment of {amount}" if amount else "your latest payment"
    subject = "Your payment didn't go through"
    text = (
        f"{_greeting(name)}\n\n"
        f"We couldn't process {what}. Your access stays on for now while we retry the card.\n\n"
        f"To keep your subscription active, update your payment method here:\n{billing_url}\n\n"
        f"If you think this is a mistake, just reply to this email.\n"
    )
    html = _layout([
        _escape(_greeting(name)),
        f"We couldn't process {_escape(what)}. Your access stays on for now while we retry the card.",
        f'To keep your subscription active, <a href="{_escape(billing_url)}">update your payment method</a>.',
        "If you think this is a mistake, just reply to this email.",
    ])
    return Email(subject, text, html)


def first_payment_failed(*, name: str | None, billing_url: str, amount: str | None = None) -> Email:
    """Recovery email for a payment that never granted access (first payment, one-off purchase):
    unlike a renewal there is no access to keep, so it asks the user to try again."""
    what = f"your payment of {amount}" if amount else "your payment"
    subject = "Your payment didn't go through"
    text = (f"{_greeting(name)}\n\nWe couldn't process {what}, so your upgrade is not active yet.\n\n"
            f"You can try again with another payment method here:\n{billing_url}\n\n"
            "If you think this is a mistake, just reply to this email.\n")
    return Email(subject, text, text_to_html(text))


def ops_alert(*, environment: str, title: str, summary: str,
              details: Mapping[str, object] | None = None) -> Email:
    """A short alert to the ops address: what happened, in which environment, with key facts."""
    subject = f"[launchready {environment}] {title}"
    facts = [(name, value) for name, value in (details or {}).items() if value is not None]
    text = f"{summary}\n\n" + "".join(f"{name}: {value}\n" for name, value in facts)
    rows = "".join(
        f"<tr><th align=\"left\">{_escape(str(name))}</th><td>{_escape(str(value))}</td></tr>"
        for name, value in facts)
    table = f'<table cellpadding="4">{rows}</table>' if rows else ""
    return Email(subject, text.rstrip() + "\n", _layout([_escape(summary)], table))
