"""Types of the stack's settings: each set of accepted values and each pattern, defined once.

The stack config model, the components' arguments, the clone, secrets and smoke tools and the policy pack
name these types; no other module compiles a hostname, email or SPF pattern (tests/components/
test_one_definition.py walks the tree). Standard library and pydantic only: the policy pack imports it
from .venv-policy, which has no Google SDK.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

# ---- sets of accepted values ---------------------------------------------------------------------------

Environment = Literal["production", "staging", "preview"]
ENVIRONMENTS: tuple[Environment, ...] = get_args(Environment)
# The DMARC record's p= tag (RFC 7489 6.3).
DmarcPolicy = Literal["none", "quarantine", "reject"]
DMARC_POLICIES: tuple[DmarcPolicy, ...] = get_args(DmarcPolicy)
# Lowest tier first: a feature of one plan is on every later one (https://www.cloudflare.com/plans/).
CloudflarePlan = Literal["free", "pro", "business", "enterprise"]
CLOUDFLARE_PLANS: tuple[CloudflarePlan, ...] = get_args(CloudflarePlan)
EdgeCertificate = Literal["universal", "advanced", "custom"]
EDGE_CERTIFICATES: tuple[EdgeCertificate, ...] = get_args(EdgeCertificate)
# What the email provider asks for on the sending domain (Resend: DKIM TXT, return-path MX and SPF TXT).
DnsRecordType = Literal["TXT", "CNAME", "MX"]

# ---- patterns ------------------------------------------------------------------------------------------

# An LDH label (RFC 1035 2.3.1, RFC 1123 2.1): letters, digits, inner hyphens, 1-63 characters.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ANY_CASE_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# A host name as stack files spell it: lowercase labels under an alphabetic top-level label.
_HOSTNAME = rf"(?:{_LABEL}\.)+[a-z]{{2,63}}"
# An address: an RFC 5322 3.2.3 dot-atom local part at a host name (RFC 5321 domains ignore case).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_EMAIL = rf"{_ATOM}(?:\.{_ATOM})*@(?:{_ANY_CASE_LABEL}\.)+[A-Za-z]{{2,63}}"
# A sender as Resend's `from` takes it: `address` or `Display Name <address>`
# (https://resend.com/docs/api-reference/emails/send-email, "from").
_SENDER = rf"^\s*(?:([^<>]*?)\s*<({_EMAIL})>|({_EMAIL}))\s*$"
_SENDER_FORM = re.compile(_SENDER)

HOSTNAME_PATTERN = rf"^{_HOSTNAME}$"
EMAIL_PATTERN = rf"^{_EMAIL}$"

# ---- types ------------------------------------------------------------------------------------------------

# What each pattern accepts, in words: the expected form an error message names (expected_form).
_FORMS: dict[str, str] = {}


def _form(pattern: str, form: str) -> str:
    _FORMS[pattern] = form
    return pattern


def expected_form(pattern: str) -> str | None:
    """The accepted form, in words, of the type whose pattern is `pattern` (from a pydantic
    string_pattern_mismatch error's ctx), e.g. "an email address such as ops@myapp.io"; None if unknown."""
    return _FORMS.get(pattern)


# JSON Schema's `format` names (draft 2020-12, 7.3) tell editors and the docs what a pattern means.
Hostname = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(HOSTNAME_PATTERN, "a lowercase host name such as api.myapp.co.uk (no scheme, no path)"),
        max_length=253,
        json_schema_extra={"format": "hostname"},
    ),
]
# Hostnames allowed to complete a sign-in; localhost for local development only.
AuthorizedDomain = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(
            rf"^(?:{_HOSTNAME}|localhost)$", "a lowercase host name such as app.myapp.io, or localhost"
        ),
        max_length=253,
    ),
]
DnsLabel = Annotated[
    str,
    Strict(),
    Field(pattern=_form(rf"^{_LABEL}$", "one DNS label: lowercase letters, digits, inner hyphens")),
]
# An SPF include: target (RFC 7208 5.2) is a domain-spec, whose grammar is RFC 7208 7.1
# (https://www.rfc-editor.org/rfc/rfc7208#section-7.1):
#   domain-spec   = macro-string domain-end
#   domain-end    = ( "." toplabel [ "." ] ) / macro-expand
#   toplabel      = ( *alphanum ALPHA *alphanum ) / ( 1*alphanum "-" *( alphanum / "-" ) alphanum )
#   macro-string  = *( macro-expand / macro-literal )
#   macro-expand  = ( "%{" macro-letter transformers *delimiter "}" ) / "%%" / "%_" / "%-"
#   macro-literal = %x21-24 / %x26-7E  (visible characters except "%")
# so underscored labels below the top label (_spf.google.com, _spf.mx.cloudflare.net) are valid, while a
# top label must be an LDH label holding a letter. ABNF strings ignore case (RFC 5234 2.3).
_MACRO_EXPAND = r"(?:%\{[SLODIPHCRTVslodiphcrtv][0-9]*[Rr]?[.+,/_=-]*\}|%%|%_|%-)"
_MACRO_LITERAL = r"[\x21-\x24\x26-\x7e]"
_TOPLABEL = r"(?:[A-Za-z0-9]*[A-Za-z][A-Za-z0-9]*|[A-Za-z0-9]+-[A-Za-z0-9-]*[A-Za-z0-9])"
SPF_DOMAIN_SPEC_PATTERN = rf"^(?:{_MACRO_EXPAND}|{_MACRO_LITERAL})*(?:\.{_TOPLABEL}\.?|{_MACRO_EXPAND})$"
# A domain name is at most 253 characters in text form (RFC 1035 2.3.4: 255 octets on the wire).
SpfDomainSpec = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(SPF_DOMAIN_SPEC_PATTERN, "an SPF domain-spec such as _spf.google.com (RFC 7208 7.1)"),
        max_length=253,
        description="an SPF domain-spec (RFC 7208 7.1)",
    ),
]
# RFC 7208 4.6.4: more than 10 DNS-querying terms make the check a permerror; each include: is one.
SPF_MAX_DNS_LOOKUPS = 10
# RFC 5321 4.5.3.1.3: a path is at most 256 octets including the angle brackets.
EmailAddress = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(EMAIL_PATTERN, "an email address such as ops@myapp.io"),
        max_length=254,
        json_schema_extra={"format": "email"},
    ),
]
EmailSender = Annotated[
    str,
    Strict(),
    Field(pattern=_form(_SENDER, "an address or 'Name <address>', e.g. 'MyApp <hello@myapp.io>'")),
]
# DMARC aggregate reports go to a mailto: URI (RFC 7489 6.3, rua).
MailtoAddress = Annotated[
    str,
    Strict(),
    Field(pattern=_form(rf"^mailto:{_EMAIL}$", "mailto: and an address, e.g. mailto:dmarc@myapp.io")),
]
# CAA iodef: where CAs report refused requests, a mailto: or https: URL (RFC 8659 4.4); empty for none.
CaaIodef = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(rf"^(?:mailto:{_EMAIL}|https://\S+)?$", "mailto:<address>, an https:// URL or empty")
    ),
]
HttpsUrl = Annotated[str, Strict(), Field(pattern=_form(r"^https://", "an https:// URL"))]

# GCP project ids: 6-30 lowercase letters, digits and hyphens, a letter first, no hyphen last
# (https://cloud.google.com/resource-manager/reference/rest/v3/projects#resource:-project, projectId).
_PROJECT_ID_FORM = "6-30 lowercase letters, digits and hyphens, a letter first, no hyphen last"
ProjectId = Annotated[
    str, Strict(), Field(pattern=_form(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$", _PROJECT_ID_FORM))
]
BillingAccountId = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(
            r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$",
            "three groups of 6 uppercase hex digits",
        )
    ),
]
# A folder or organization id: the number in folders/<id>, organizations/<id>.
ResourceManagerId = Annotated[
    str, Strict(), Field(pattern=_form(r"^[0-9]{6,20}$", "the 6-20 digit number of the id"))
]
HostingSiteId = Annotated[
    str,
    Strict(),
    Field(
        pattern=_form(
            r"^[a-z0-9]([a-z0-9-]{2,61}[a-z0-9])$", "4-63 lowercase letters, digits and inner hyphens"
        )
    ),
]
CloudflareZoneId = Annotated[
    str,
    Strict(),
    Field(pattern=_form(r"^[0-9a-f]{32}$", "32 lowercase hex digits (the zone's Overview page, Zone ID)")),
]
# Google API keys are "AIza" and 35 more characters (https://cloud.google.com/docs/authentication/api-keys).
GoogleApiKey = Annotated[
    str, Strict(), Field(pattern=_form(r"^AIza[0-9A-Za-z_-]{35}$", "AIza and 35 letters, digits, _ or -"))
]
StripePriceId = Annotated[str, Strict(), Field(pattern=_form(r"^price_", "a Stripe price id, price_..."))]
# Pulumi stack names: letters, digits, hyphens, underscores and periods, at most 100 characters.
STACK_NAME_FORM = "1-100 letters, digits, _, . or -, not starting with _ . -"
StackName = Annotated[
    str, Strict(), Field(pattern=_form(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", STACK_NAME_FORM))
]

# This project keeps logs a week at least (the design's floor); Cloud Logging keeps them at most 3650 days
# (https://cloud.google.com/logging/docs/buckets#custom-retention).
MIN_LOG_RETENTION_DAYS = 7
MAX_LOG_RETENTION_DAYS = 3650
LogRetentionDays = Annotated[int, Field(ge=MIN_LOG_RETENTION_DAYS, le=MAX_LOG_RETENTION_DAYS)]

_adapters: dict[int, TypeAdapter[Any]] = {}


def conforms(kind: Any, value: object) -> bool:
    """True when `value` is a valid `kind` (one of the types above), e.g. conforms(ProjectId, "my-app-1")."""
    adapter = _adapters.get(id(kind))
    if adapter is None:
        adapter = _adapters[id(kind)] = TypeAdapter(kind)
    try:
        adapter.validate_python(value)
    except ValidationError:
        return False
    return True


# ---- DNS names and records ---------------------------------------------------------------------------


def fqdn(name: str, zone: str) -> str:
    """The full hostname of a record name given relative to the zone, as `@`, or already fully qualified
    (`resend._domainkey` in example.com -> `resend._domainkey.example.com`). Lowercase, no final dot."""
    name = name.strip().rstrip(".").lower()
    zone = zone.strip().rstrip(".").lower()
    if name in ("", "@") or name == zone:
        return zone
    if name.endswith("." + zone):
        return name
    return f"{name}.{zone}"


def is_spf(text: str) -> bool:
    """A TXT value that is an SPF record (RFC 7208 4.5: it starts with the version tag v=spf1)."""
    return text.strip().strip('"').strip().lower().startswith("v=spf1")


class DnsRecord(BaseModel):
    """A DNS record as the email provider (Resend) shows it: name relative to the zone, type, value."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: Annotated[str, Strict()] = Field(
        description="record name relative to the zone, e.g. resend._domainkey"
    )
    type: DnsRecordType = Field(description="TXT, CNAME or MX")
    value: Annotated[str, Strict()] = Field(description="record content as the provider shows it")
    priority: Annotated[int, Strict()] | None = Field(
        default=None, description="MX priority (MX records only)"
    )

    @model_validator(mode="before")
    @classmethod
    def _upper_type(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("type"), str):
            return {**data, "type": data["type"].upper()}
        return data

    @model_validator(mode="after")
    def _complete(self) -> DnsRecord:
        if not self.value.strip():
            raise PydanticCustomError("blank_value", "has an empty value")
        if self.type == "MX" and self.priority is None:
            raise PydanticCustomError("mx_priority", "an MX record needs a whole-number priority")
        return self

    def host(self, zone: str) -> str:
        """The record's full hostname in `zone`."""
        return fqdn(self.name, zone)


# ---- senders -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sender:
    """An EmailSender taken apart: `Launch Ready <hello@example.com>` or a bare address."""

    display_name: str | None  # None for a bare address, "" for `<address>`
    address: str

    @property
    def local_part(self) -> str:
        return self.address.rsplit("@", 1)[0]

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1].lower()


def parse_sender(text: str) -> Sender | None:
    """The parts of an EmailSender, or None when `text` is not one."""
    match = _SENDER_FORM.fullmatch(text)
    if match is None:
        return None
    name, bracketed, bare = match.groups()
    if bare:
        return Sender(display_name=None, address=bare)
    return Sender(display_name=name.strip(), address=bracketed)
