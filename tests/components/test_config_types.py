"""The stack setting types: what each accepts and refuses, and that the policy pack's venv can import them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("kind", "good", "bad"),
    [
        (
            Hostname,
            ["example.com", "api.staging.example.com", "a-b.example.co"],
            ["localhost", "Example.com", "-a.example.com", "a..b.com"],
        ),
        (AuthorizedDomain, ["app.example.com", "localhost"], ["local host", "app.example.com/"]),
        # Today an SPF include is a hostname: an underscored label (_spf.google.com) is refused.
        (SpfDomainSpec, ["amazonses.com", "spf.protection.outlook.com"], ["_spf.google.com", "bad include"]),
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


def test_the_shared_modules_import_without_any_pulumi_package() -> None:
    # The policy pack imports them in .venv-policy, which has pydantic but no Google or Cloudflare SDK.
    code = (
        "import builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0].startswith('pulumi'):\n"
        "        raise ImportError('pulumi must not be imported')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import components.config_types, components.data_bearing, components.catalog\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
