"""Stack configuration, validated once at start into a frozen dataclass.

`parse_stack_config` is a pure function of the raw `launchready:*` values and the stack name, so it is
tested without the Pulumi engine. Every problem found is reported in one `StackConfigError` whose message
names the stack file and each offending key; `__main__` turns it into a clean Pulumi error, without a trace.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

NAMESPACE = "launchready"
DMARC_POLICIES = ("none", "quarantine", "reject")
# The kind of environment a stack is: rules that differ by environment read this, never the stack name.
ENVIRONMENTS = ("production", "staging", "preview")
MIN_LOG_RETENTION_DAYS = 7
DEFAULT_LOG_RETENTION_DAYS = 30
DEFAULT_CAA_ISSUERS = ("pki.goog", "letsencrypt.org")

_PROJECT_ID = re.compile(r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[a-z]{2,63}$", re.IGNORECASE)
# Google API keys: "AIza" and 35 more characters (https://cloud.google.com/docs/authentication/api-keys).
_BROWSER_API_KEY = re.compile(r"^AIza[0-9A-Za-z_-]{35}$")
_BILLING_ACCOUNT = re.compile(r"^[0-9A-F]{6}-[0-9A-F]{6}-[0-9A-F]{6}$")
_NUMERIC_ID = re.compile(r"^[0-9]{6,20}$")
_ZONE_ID = re.compile(r"^[0-9a-f]{32}$")
_SITE_ID = re.compile(r"^[a-z0-9]([a-z0-9-]{2,61}[a-z0-9])$")
_DNS_TYPES = ("TXT", "CNAME", "MX")


class StackConfigError(ValueError):
    """The stack's configuration is missing or malformed. The message is meant for the user as is."""


@dataclass(frozen=True)
class DnsRecord:
    """A DNS record as the email provider (Resend) shows it: name relative to the zone, type, value."""

    name: str
    type: str
    value: str
    priority: int | None = None


@dataclass(frozen=True)
class NewProject:
    """Settings for creating the GCP project; absent when an existing project is adopted."""

    billing_account: str
    folder_id: str | None
    org_id: str | None


@dataclass(frozen=True)
class StackConfig:
    stack: str
    environment: str
    project_id: str
    new_project: NewProject | None
    region: str
    domain: str
    api_host: str
    cloudflare_zone_id: str
    dmarc_policy: str
    dmarc_rua: str
    alert_email: str
    ops_email: str
    email_from: str
    app_url: str
    authorized_domains: tuple[str, ...]
    zendesk_base_url: str
    stripe_price_id: str
    max_instances_scale: float
    log_retention_days: int
    dkim_records: tuple[DnsRecord, ...]
    spf_includes: tuple[str, ...]
    caa_issuers: tuple[str, ...]
    caa_iodef: str
    hosting_site_id: str
    firestore_location: str
    manage_zone: bool
    proxy_api_host: bool
    mail_domain: str
    # The Firebase web app's browser API key (public, in every Firebase client config): the ops
    # console's sign-in form sends it to the Identity Toolkit. Empty: the console asks for it.
    firebase_web_api_key: str = ""



class _Reader:
    """Collects every problem with the raw values, so the user fixes them in one pass."""

    def __init__(self, values: Mapping[str, Any], stack_file: str) -> None:
        self.values = {key.removeprefix(f"{NAMESPACE}:"): value for key, value in values.items()}
        self.stack_file = stack_file
        self.problems: list[str] = []
        self.known: set[str] = set()

    def _fail(self, key: str, why: str) -> None:
        self.problems.append(f"{NAMESPACE}:{key} {why}")

    def _raw(self, key: str) -> Any:
        self.known.add(key)
        value = self.values.get(key)
        return None if value == "" else value

    def text(
        self, key: str, hint: str, pattern: re.Pattern[str] | None = None, default: str | None = None
    ) -> str:
        value = self._raw(key)
        if value is None:
            if default is not None:
                return default
            self._fail(key, f"is missing ({hint})")
            return ""
        if not isinstance(value, str):
            self._fail(key, f"must be a string ({hint}), got {value!r}")
            return ""
        value = value.strip()
        if pattern is not None and not pattern.match(value):
            self._fail(key, f"is malformed: {value!r} ({hint})")
        return value

    def check(self, key: str, ok: bool, why: str) -> None:
        if not ok:
            self._fail(key, why)

    def _decoded(self, key: str) -> Any:
        # Pulumi hands structured config to the program as JSON text; YAML gives native values.
        value = self._raw(key)
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError:
                return value
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._decoded(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self._fail(key, f"must be true or false, got {value!r}")
            return default
        return value

    def number(self, key: str, default: float, kind: Callable[[Any], float]) -> Any:
        value = self._decoded(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or kind(value) != value:
            self._fail(key, f"must be a {'whole ' if kind is int else ''}number, got {value!r}")
            return default
        return kind(value)

    def items(self, key: str, hint: str, default: tuple[Any, ...] | None = None) -> list[Any]:
        value = self._decoded(key)
        if value is None:
            if default is not None:
                return list(default)
            self._fail(key, f"is missing ({hint})")
            return []
        if not isinstance(value, list):
            self._fail(key, f"must be a list ({hint}), got {value!r}")
            return []
        return value

    def unknown_keys(self) -> None:
        for key in sorted(set(self.values) - self.known):
            close = difflib.get_close_matches(key, sorted(self.known), n=1)
            suggestion = f"; did you mean {NAMESPACE}:{close[0]}?" if close else ""
            self._fail(key, f"is not a known setting{suggestion}")

    def raise_if_problems(self) -> None:
        if self.problems:
            lines = "\n".join(f"  - {problem}" for problem in self.problems)
            raise StackConfigError(f"{self.stack_file}: invalid configuration:\n{lines}")


def _dns_records(reader: _Reader, raw: list[Any]) -> tuple[DnsRecord, ...]:
    records = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict) or not {"name", "type", "value"} <= set(entry):
            reader.check(f"dkimRecords[{index}]", False, "must have name, type and value")
            continue
        record_type = str(entry["type"]).upper()
        reader.check(f"dkimRecords[{index}]", record_type in _DNS_TYPES, f"type must be one of {_DNS_TYPES}")
        priority = entry.get("priority")
        reader.check(
            f"dkimRecords[{index}]",
            record_type != "MX" or isinstance(priority, int),
            "an MX record needs a whole-number priority",
        )
        records.append(
            DnsRecord(name=str(entry["name"]), type=record_type, value=str(entry["value"]), priority=priority)
        )
    return tuple(records)


def parse_stack_config(values: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate the raw `launchready:*` values of `stack` (keys with or without the namespace).

    Raises StackConfigError listing every problem, each with its full key and the stack file.
    """
    reader = _Reader(values, f"Pulumi.{stack}.yaml")
    environment = reader.text("environment", "the kind of environment: production, staging or preview")
    reader.check(
        "environment",
        environment in ENVIRONMENTS or not environment,
        "must be production, staging or preview",
    )
    project_id = reader.text(
        "projectId", "the GCP project id, 6-30 lowercase letters, digits, hyphens", _PROJECT_ID
    )
    create_project = reader.flag("createProject", default=False)
    billing_account = reader.text("billingAccount", "XXXXXX-XXXXXX-XXXXXX", _BILLING_ACCOUNT, default="")
    folder_id = reader.text("folderId", "numeric folder id", _NUMERIC_ID, default="")
    org_id = reader.text("orgId", "numeric organization id", _NUMERIC_ID, default="")
    new_project = None
    if create_project:
        reader.check("billingAccount", bool(billing_account), "is required when createProject is true")
        reader.check(
            "folderId",
            bool(folder_id) != bool(org_id),
            "or launchready:orgId (exactly one) is required when createProject is true",
        )
        new_project = NewProject(billing_account, folder_id or None, org_id or None)

    region = reader.text("region", "the GCP region for functions, e.g. europe-west1", _REGION)
    domain = reader.text("domain", "the apex zone name in Cloudflare, e.g. example.com", _HOSTNAME)
    api_host = reader.text("apiHost", "the API hostname, e.g. api.example.com", _HOSTNAME)
    if domain and api_host:
        reader.check("apiHost", api_host.endswith(f".{domain}"), f"must be a subdomain of {domain}")
    zone_id = reader.text("cloudflareZoneId", "32 hex characters from the Cloudflare dashboard", _ZONE_ID)
    dmarc_policy = reader.text("dmarcPolicy", "one of none, quarantine, reject")
    reader.check(
        "dmarcPolicy",
        dmarc_policy in DMARC_POLICIES or not dmarc_policy,
        "must be none, quarantine or reject",
    )
    dmarc_rua = reader.text("dmarcRua", "mailto: address for DMARC aggregate reports")
    reader.check("dmarcRua", not dmarc_rua or dmarc_rua.startswith("mailto:"), "must start with mailto:")
    alert_email = reader.text("alertEmail", "who receives alerts", _EMAIL)
    ops_email = reader.text("opsEmail", "who receives the daily ops digest", _EMAIL)
    email_from = reader.text("emailFrom", "sender of transactional email, e.g. 'App <hello@example.com>'")
    reader.check("emailFrom", not email_from or "@" in email_from, "must contain an email address")
    app_url = reader.text("appUrl", "the app's public URL, https://...")
    reader.check("appUrl", not app_url or app_url.startswith("https://"), "must start with https://")
    authorized = reader.items("authorizedDomains", "hostnames allowed to sign in, e.g. [app.example.com]")
    for index, host in enumerate(authorized):
        reader.check(
            f"authorizedDomains[{index}]",
            (isinstance(host, str) and bool(_HOSTNAME.match(host))) or host == "localhost",
            f"is not a hostname: {host!r}",
        )
    zendesk = reader.text("zendeskBaseUrl", "https://<subdomain>.zendesk.com")
    reader.check("zendeskBaseUrl", not zendesk or zendesk.startswith("https://"), "must start with https://")
    price = reader.text("stripePriceId", "the Stripe price the checkout sells, price_...")
    reader.check("stripePriceId", not price or price.startswith("price_"), "must start with price_")
    scale = reader.number("maxInstancesScale", 1.0, float)
    reader.check("maxInstancesScale", 0 < scale <= 10, "must be greater than 0 and at most 10")
    retention = reader.number("logRetentionDays", DEFAULT_LOG_RETENTION_DAYS, int)
    reader.check(
        "logRetentionDays",
        MIN_LOG_RETENTION_DAYS <= retention <= 3650,
        f"must be between {MIN_LOG_RETENTION_DAYS} and 3650",
    )
    dkim = _dns_records(reader, reader.items("dkimRecords", "the DNS records Resend shows for the domain"))
    spf = reader.items("spfIncludes", "SPF include: domains", default=())
    caa = reader.items("caaIssuers", "certificate authorities allowed to issue", default=DEFAULT_CAA_ISSUERS)
    for key, entries in (("spfIncludes", spf), ("caaIssuers", caa)):
        for index, entry in enumerate(entries):
            reader.check(
                f"{key}[{index}]",
                isinstance(entry, str) and bool(_HOSTNAME.match(entry)),
                f"is not a domain: {entry!r}",
            )
    caa_iodef = reader.text(
        "caaIodef", "mailto: or https:// address for refused-certificate reports", default=""
    )
    reader.check(
        "caaIodef",
        not caa_iodef or caa_iodef.startswith(("mailto:", "https://")),
        "must start with mailto: or https://",
    )
    firestore_location = reader.text(
        "firestoreLocation", "Firestore location, e.g. eur3 or europe-west1", default=region
    )
    site_id = reader.text(
        "hostingSiteId",
        "Firebase Hosting site id for the API, globally unique",
        _SITE_ID,
        default=f"{project_id}-api"[:63] if project_id else "",
    )
    # One Cloudflare zone can hold one apex SPF/DMARC/CAA set and one rate-limit entry point:
    # exactly one stack sharing the zone (prod by default) manages them.
    manage_zone = reader.flag("manageZone", default=True)
    # SPF and DMARC are published at the sending domain, so each stack keeps its own DMARC policy.
    mail_domain = reader.text("mailDomain", "domain the stack sends email from", _HOSTNAME, default=domain)
    reader.check(
        "mailDomain",
        not domain or mail_domain == domain or mail_domain.endswith("." + domain),
        f"must be {domain} or a subdomain of it",
    )
    # Proxied through Cloudflare the API host gets the TLS settings and the rate limit; the first
    # deploy may need it DNS-only until Firebase Hosting has issued its certificate.
    proxy_api_host = reader.flag("proxyApiHost", default=True)
    web_api_key = reader.text(
        "firebaseWebApiKey", "the Firebase web app's apiKey, AIza...", _BROWSER_API_KEY, default=""
    )
    reader.unknown_keys()
    reader.raise_if_problems()
    return StackConfig(
        stack=stack,
        environment=environment,
        project_id=project_id,
        new_project=new_project,
        region=region,
        domain=domain,
        api_host=api_host,
        cloudflare_zone_id=zone_id,
        dmarc_policy=dmarc_policy,
        dmarc_rua=dmarc_rua,
        alert_email=alert_email,
        ops_email=ops_email,
        email_from=email_from,
        app_url=app_url,
        authorized_domains=tuple(authorized),
        zendesk_base_url=zendesk,
        stripe_price_id=price,
        max_instances_scale=scale,
        log_retention_days=retention,
        dkim_records=dkim,
        spf_includes=tuple(spf),
        caa_issuers=tuple(caa),
        caa_iodef=caa_iodef,
        hosting_site_id=site_id,
        firestore_location=firestore_location,
        manage_zone=manage_zone,
        proxy_api_host=proxy_api_host,
        mail_domain=mail_domain,
        firebase_web_api_key=web_api_key,
    )


def runtime_config_values() -> dict[str, Any]:
    """Every `launchready:*` value the Pulumi engine passed to this program."""
    from pulumi.runtime import config as runtime_config  # only the program needs the engine

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    return {key: value for key, value in merged.items() if key.startswith(f"{NAMESPACE}:")}
