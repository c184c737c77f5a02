"""The stack setting types: what each accepts and refuses."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from components.config_types import (
    AuthorizedDomain,
    CaaIodef,
    DnsRecord,
    EmailAddress,
    Hostname,
    MailtoAddress,
    SpfDomainSpec,
    StackName,
    conforms,
    fqdn,
    is_spf,
    parse_sender,
)


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (
            Hostname,
            ["example.com", "api.staging.example.com", "a-b.example.co"],
            ["localhost", "Example.com", "-a.example.com", "a..b.com"],
        ),
        (AuthorizedDomain, ["app.example.com", "localhost"], ["local host", "app.example.com/"]),
        # RFC 7208 7.1 domain-specs: underscores below the top label, macros, a final dot; the top label is
        # an LDH label holding a letter.
        (
            SpfDomainSpec,
            [
                "amazonses.com",
                "spf.protection.outlook.com",
                "_spf.google.com",
                "_spf.mx.cloudflare.net",
                "_spf.example.co.uk",
                "mailgun.org.",
                "%{i}._spf.example.com",
                "%{d2r}.spf.example.net",
            ],
            [
                "bad include",
                "com",
                "example.123",
                "example.-com",
                "example.com-",
                "%{z}.example.com",
                "a%b.com",
            ],
        ),
        (
            EmailAddress,
            ["ops@example.com", "first.last+alerts@Mail.Example.co.uk", "o'neil@example.org"],
            ["ops", "ops@", "a b@example.com", "a@-.-", "a@x..", "a@resend.dev@x.io", "ops@example.com."],
        ),
        (
            MailtoAddress,
            ["mailto:dmarc@example.com"],
            ["dmarc@example.com", "mailto:", "mailto:not-an-address"],
        ),
        (
            CaaIodef,
            ["", "mailto:security@example.com", "https://example.com/caa"],
            ["mailto:", "security@x.io"],
        ),
        (StackName, ["prod", "review-42", "team.staging_2"], ["", "-prod", "two words"]),
    ],
)
def test_each_type_accepts_and_refuses(kind: object, good: list[str], bad: list[str]) -> None:
    assert [value for value in good if not conforms(kind, value)] == []
    assert [value for value in bad if conforms(kind, value)] == []


def test_a_sender_is_a_bare_or_a_named_address() -> None:
    named = parse_sender("Launch Ready <hello@Example.com>")
    assert named is not None and (named.display_name, named.local_part, named.domain) == (
        "Launch Ready",
        "hello",
        "example.com",
    )
    bare = parse_sender("hello@example.com")
    assert bare is not None and bare.display_name is None
    assert parse_sender("Launch Ready hello@example.com") is None
    assert parse_sender("Launch Ready <hello@example.com") is None


def test_record_names_are_read_relative_to_the_zone() -> None:
    assert fqdn("@", "example.com") == "example.com"
    assert fqdn("resend._domainkey", "Example.com.") == "resend._domainkey.example.com"
    assert fqdn("send.staging.example.com.", "example.com") == "send.staging.example.com"
    assert DnsRecord(name="send", type="mx", value="feedback-smtp.example", priority=10).host(
        "example.com"
    ) == ("send.example.com")
    assert is_spf('"v=spf1 include:amazonses.com ~all"') and not is_spf("v=DMARC1; p=reject")


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"name": "send", "type": "MX", "value": "feedback-smtp.example"}, "needs a whole-number priority"),
        ({"name": "resend._domainkey", "type": "TXT", "value": " "}, "has an empty value"),
        ({"name": "x", "type": "A", "value": "192.0.2.1"}, "Input should be 'TXT', 'CNAME' or 'MX'"),
    ],
)
def test_an_incomplete_record_is_refused(record: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        DnsRecord.model_validate(record)
