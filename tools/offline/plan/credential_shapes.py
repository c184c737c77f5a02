"""Credential shapes of the providers this program talks to: the one list the plan and the diff read.

Each shape follows the provider's documented key format or gitleaks' rule of the same name (docs/tools.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from components.function_env import WEB_API_KEY_SETTING


@dataclass(frozen=True)
class Shape:
    """One credential shape. `pattern` is unanchored; `in_values` says whether a whole input value of
    this shape is flagged by the plan (context-bound shapes only make sense inside text)."""

    name: str
    pattern: str
    in_values: bool = True


SHAPES: tuple[Shape, ...] = (
    # https://docs.stripe.com/keys#obtain-api-keys: sk_live_/sk_test_ secret, rk_ restricted keys
    Shape("Stripe secret or restricted key", r"(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{8,}"),
    # https://docs.stripe.com/webhooks#verify-events: endpoint secrets start whsec_
    Shape("Stripe webhook signing secret", r"whsec_[0-9A-Za-z]{8,}"),
    # https://developers.hubspot.com/docs/api/private-apps: pat-<region>-<uuid>
    Shape("HubSpot private app token", r"pat-[a-z]{2,4}\d?-[0-9a-f-]{20,}"),
    # https://resend.com/docs/api-reference/api-keys/create-api-key: re_...
    Shape("Resend API key", r"\bre_[0-9A-Za-z_]{16,}"),
    Shape("Google API key", r"AIza[0-9A-Za-z_-]{35}"),
    Shape("AWS access key id", r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    Shape("GitHub token", r"gh[pousr]_[0-9A-Za-z]{30,}"),
    Shape("Slack token", r"xox[abprs]-[0-9A-Za-z-]{10,}"),
    Shape("PEM private key", r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    # Any other PEM block (certificate, public key) has no place in a diff either.
    Shape("PEM block", r"-----BEGIN [A-Z0-9 ]+-----", in_values=False),
    # gitleaks zendesk-secret-key: 40 alphanumerics after a "zendesk..." key.
    Shape(
        "Zendesk API token",
        r"(?i:zendesk[\w.-]{0,20}[\s'\"]{0,3}(?:=|:|=>)[\s'\"=]{0,5}[a-z0-9]{40}(?![a-z0-9]))",
        in_values=False,
    ),
    # gitleaks cloudflare-api-key (40 [\w-]) and cloudflare-global-api-key (37 hex) after "cloudflare...".
    Shape(
        "Cloudflare API token or global key",
        r"(?i:cloudflare[\w.-]{0,20}[\s'\"]{0,3}(?:=|:|=>)[\s'\"=]{0,5}"
        r"(?:[\w-]{40}|[a-f0-9]{37})(?![\w-]))",
        in_values=False,
    ),
    # gitleaks cloudflare-origin-ca-key: v1.0-<24 hex>-<146 hex>
    Shape("Cloudflare Origin CA key", r"v1\.0-[a-f0-9]{24}-[a-f0-9]{146}"),
)


# Settings public by design though shaped like a credential (a Firebase web API key is a Google API key):
# their configured values stay in the plan and the diff; the policy pack judges where they are used.
PUBLIC_SETTINGS = (WEB_API_KEY_SETTING,)


def value_pattern() -> re.Pattern[str]:
    """Matches a plain-text input value that starts with a credential shape (the plan's check)."""
    return re.compile("|".join(f"^(?:{s.pattern})" for s in SHAPES if s.in_values))


def text_pattern() -> re.Pattern[str]:
    """Matches any credential shape anywhere in a text (the output scan)."""
    return re.compile("|".join(f"(?P<s{i}>{s.pattern})" for i, s in enumerate(SHAPES)))


def shape_name(match: re.Match[str]) -> str:
    """The shape a `text_pattern()` match belongs to."""
    group = match.lastgroup or ""
    return SHAPES[int(group[1:])].name if group.startswith("s") else "credential"
