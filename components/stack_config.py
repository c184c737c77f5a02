"""Stack configuration: one pydantic model of Pulumi.<stack>.yaml, built from the types in
components/config_types.py.

`StackConfig` is the single source of the validation (`parse_stack_config`), the editors' JSON schema and
the docs table (`python -m tools stack-schema` writes both). Settings are validated here and
nowhere else: every problem is reported in one `StackConfigError` naming the stack file and each key.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    Strict,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from components.config_types import (
    SPF_MAX_DNS_LOOKUPS,
    AuthorizedDomain,
    BillingAccountId,
    CaaIodef,
    CloudflarePlan,
    CloudflareZoneId,
    DmarcPolicy,
    DnsRecord,
    EdgeCertificate,
    EmailAddress,
    EmailSender,
    Environment,
    GoogleApiKey,
    HostingSiteId,
    Hostname,
    HttpsUrl,
    LogRetentionDays,
    MailtoAddress,
    ProjectId,
    ResourceManagerId,
    SpfDomainSpec,
    StripePriceId,
    expected_form,
    is_spf,
    parse_sender,
)
from components.example_values import example_text

NAMESPACE = "launchready"
PROVIDER_NAMESPACE = "gcp"
# Uploading a custom certificate needs a Business or Enterprise plan (UNIVERSAL_SSL_DOC).
CUSTOM_CERTIFICATE_PLANS: tuple[CloudflarePlan, ...] = ("business", "enterprise")
DEFAULT_LOG_RETENTION_DAYS = 30
DEFAULT_CAA_ISSUERS = ("pki.goog", "letsencrypt.org")
PLACEHOLDER_MARK = "# REPLACE"

# Google's published location lists, with their source and retrieval date.
LOCATIONS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "data" / "gcp_locations.json").read_text(encoding="utf-8")
)
FUNCTION_REGIONS: tuple[str, ...] = tuple(LOCATIONS["cloud_run_functions"]["regions"])
FIRESTORE_LOCATIONS: tuple[str, ...] = (
    *LOCATIONS["firestore"]["multi_regions"],
    *LOCATIONS["firestore"]["regions"],
)
_FUNCTIONS_SOURCE = (
    "Cloud Run functions regions (" + LOCATIONS["cloud_run_functions"]["source"].split(" ")[0] + ")"
)
_FIRESTORE_SOURCE = "Firestore locations (" + LOCATIONS["firestore"]["source"].split(" ")[0] + ")"

# "Universal SSL certificates only support SSL for the root or first-level subdomains"; deeper hosts need an
# advanced certificate (Advanced Certificate Manager) or an uploaded custom one (Business, Enterprise):
# https://developers.cloudflare.com/ssl/edge-certificates/universal-ssl/limitations/#hostname-coverage
UNIVERSAL_SSL_DOC = (
    "https://developers.cloudflare.com/ssl/edge-certificates/universal-ssl/limitations/#hostname-coverage"
)
# Firebase/Identity Toolkit calls made with user credentials need a quota project:
# https://firebase.google.com/docs/projects/terraform/get-started (user_project_override, billing_project)
QUOTA_PROJECT_DOC = "https://firebase.google.com/docs/projects/terraform/get-started"


class StackConfigError(ValueError):
    """The stack's configuration is missing or malformed. The message is meant for the user as is."""


def engine_form(value: Any) -> str:
    """A stack-file value as the Pulumi engine hands it to a program or policy pack: text as is, any other
    YAML value (number, boolean, list, mapping) as its JSON text. `123456789012` becomes "123456789012"."""
    return value if isinstance(value, str) else json.dumps(value)


def _engine_value(value: Any) -> Any:
    # The inverse of engine_form for the settings that take numbers, booleans or structures.
    if isinstance(value, str):
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return value if isinstance(decoded, str) else decoded
    return value


def _blank_is_unset(value: Any) -> Any:
    return None if value == "" else value


def _one_of(choices: tuple[str, ...], source: str) -> Any:
    """A check against a published list (regions, locations) that names the list's source."""

    def check(value: Any) -> Any:
        if value is None or (isinstance(value, str) and value in choices):
            return value
        raise PydanticCustomError(
            "location", "is not one of the {source}: {value}", {"source": source, "value": repr(value)}
        )

    return check


Flag = Annotated[bool, Strict(), BeforeValidator(_engine_value)]


class Clone(StrEnum):
    """What `make clone-env` does with a key when it derives a new stack from an existing one.

    Every field of StackConfig carries one (JSON schema key `x-clone`, the docs' Clone column); the rules
    that compute rewritten and policy values live in tools/offline/clone/derive.py.
    """

    COPY = "copy"  # the same in every environment (region, zone, CAA, alert recipients, ...)
    REWRITE = "rewrite"  # an identity of the environment, derived anew (project id, hosts, mail domain, ...)
    POLICY = "policy"  # set by the new environment's kind; its effects are the declared plan differences
    NEVER = "never"  # never copied: the new stack gets a value to fill in (live-mode Stripe ids)


CLONE_KEY = "x-clone"
# Stack-file keys beside `config`: the secrets provider and its encrypted data key / salt belong to the
# source stack alone (a clone gets its own from `pulumi stack init --secrets-provider`).
STACK_FILE_KEYS_NEVER_COPIED = ("secretsprovider", "encryptedkey", "encryptionsalt")


def _clone_extra(clone: Clone, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(extra or {}), CLONE_KEY: clone.value}


def _setting(
    clone: Clone, key: str, description: str, default: Any = ..., json_schema_extra: Any = None
) -> Any:
    """A `launchready:<key>` field; the description doubles as the hint in error messages and docs;
    `clone` says what `make clone-env` does with it."""
    return Field(
        default,
        alias=f"{NAMESPACE}:{key}",
        description=description,
        json_schema_extra=_clone_extra(clone, json_schema_extra),
    )


def clone_class(alias: str) -> Clone | None:
    """The Clone class of a config key (`launchready:projectId`, `gcp:project`), None when it has none."""
    field = next((f for f in StackConfig.model_fields.values() if f.alias == alias), None)
    extra = field.json_schema_extra if field is not None else None
    value = extra.get(CLONE_KEY) if isinstance(extra, dict) else None
    return Clone(value) if isinstance(value, str) else None


@dataclass(frozen=True)
class NewProject:
    """Settings for creating the GCP project; absent when an existing project is adopted."""

    billing_account: str
    folder_id: str | None
    org_id: str | None


class StackConfig(BaseModel):
    """Every setting of one stack: `launchready:*` keys and the `gcp:*` provider keys the program reads."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=False, validate_default=False)

    # --- Environment and GCP project -----------------------------------------------------------------
    environment: Environment = _setting(
        Clone.POLICY,
        "environment",
        "the kind of environment: production, staging or preview; rules that differ by environment read it",
    )
    project_id: ProjectId = _setting(
        Clone.REWRITE, "projectId", "the GCP project id, 6-30 lowercase letters, digits, hyphens"
    )
    create_project: Flag = _setting(
        Clone.POLICY,
        "createProject",
        "true: create the project; false: adopt an existing Firebase project",
        False,
    )
    billing_account: Annotated[BillingAccountId | None, BeforeValidator(_blank_is_unset)] = _setting(
        Clone.COPY, "billingAccount", "billing account XXXXXX-XXXXXX-XXXXXX (createProject only)", None
    )
    folder_id: Annotated[ResourceManagerId | None, BeforeValidator(_blank_is_unset)] = _setting(
        Clone.COPY, "folderId", "numeric folder id for a created project (or orgId, exactly one)", None
    )
    org_id: Annotated[ResourceManagerId | None, BeforeValidator(_blank_is_unset)] = _setting(
        Clone.COPY, "orgId", "numeric organization id for a created project (or folderId, exactly one)", None
    )
    identity_platform: Flag = _setting(
        Clone.POLICY,
        "identityPlatform",
        "manage sign-in with Identity Platform; on a Firebase Auth project this upgrades it, which cannot "
        "be undone",
        False,
    )
    region: Annotated[str, BeforeValidator(_one_of(FUNCTION_REGIONS, _FUNCTIONS_SOURCE))] = _setting(
        Clone.COPY,
        "region",
        "the GCP region for functions, e.g. europe-west1",
        json_schema_extra={"enum": list(FUNCTION_REGIONS)},
    )
    firestore_location: Annotated[
        str | None,
        BeforeValidator(_one_of(FIRESTORE_LOCATIONS, _FIRESTORE_SOURCE)),
        BeforeValidator(_blank_is_unset),
    ] = _setting(
        Clone.COPY,
        "firestoreLocation",
        "Firestore location, e.g. eur3 or europe-west1 (default: region)",
        None,
        json_schema_extra={"enum": list(FIRESTORE_LOCATIONS)},
    )

    # --- Domain and edge (Cloudflare) ----------------------------------------------------------------
    domain: Hostname = _setting(Clone.COPY, "domain", "the apex zone name in Cloudflare, e.g. example.com")
    api_host: Hostname = _setting(Clone.REWRITE, "apiHost", "the API hostname, e.g. api.example.com")
    cloudflare_zone_id: CloudflareZoneId = _setting(
        Clone.COPY, "cloudflareZoneId", "32 hex characters from the Cloudflare dashboard"
    )
    cloudflare_plan: CloudflarePlan = _setting(
        Clone.COPY,
        "cloudflarePlan",
        "the zone's Cloudflare plan: free, pro, business or enterprise (gates plan-dependent features)",
        "free",
    )
    edge_certificate: EdgeCertificate = _setting(
        Clone.COPY,
        "edgeCertificate",
        "the zone's edge certificate for the API host: universal (apex and one subdomain level), advanced "
        "(Advanced Certificate Manager) or custom (uploaded; Business or Enterprise plan)",
        "universal",
    )
    manage_zone: Flag = _setting(
        Clone.POLICY,
        "manageZone",
        "this stack owns the zone-wide records (apex SPF, DMARC, CAA) and the rate limit",
        True,
    )
    proxy_api_host: Flag = _setting(
        Clone.COPY,
        "proxyApiHost",
        "must stay false: Firebase Hosting serves the API host DNS-only (docs/architecture.md)",
        False,
    )
    hosting_site_id: Annotated[HostingSiteId | None, BeforeValidator(_blank_is_unset)] = _setting(
        Clone.REWRITE,
        "hostingSiteId",
        "Firebase Hosting site id for the API, globally unique (default: <projectId>-api)",
        None,
    )
    mail_domain: Annotated[Hostname | None, BeforeValidator(_blank_is_unset)] = _setting(
        Clone.REWRITE, "mailDomain", "domain the stack sends email from (default: domain)", None
    )
    # Public by design (every Firebase client config holds it). It belongs to the source's Firebase project,
    # so a clone never copies it: the new project's web app has its own.
    firebase_web_api_key: Annotated[GoogleApiKey | None, BeforeValidator(_blank_is_unset)] = _setting(
        Clone.NEVER,
        "firebaseWebApiKey",
        "the Firebase web app's apiKey (AIza...), for the ops console's sign-in",
        None,
    )
    dmarc_policy: DmarcPolicy = _setting(Clone.POLICY, "dmarcPolicy", "one of none, quarantine, reject")
    dmarc_rua: MailtoAddress = _setting(Clone.COPY, "dmarcRua", "mailto: address for DMARC aggregate reports")
    spf_includes: Annotated[
        tuple[SpfDomainSpec, ...], BeforeValidator(_engine_value), Field(max_length=SPF_MAX_DNS_LOOKUPS)
    ] = _setting(
        Clone.COPY,
        "spfIncludes",
        f"SPF include: domains, at most {SPF_MAX_DNS_LOOKUPS} (each costs one of SPF's "
        f"{SPF_MAX_DNS_LOOKUPS} DNS lookups, RFC 7208 4.6.4)",
        (),
    )
    caa_issuers: Annotated[tuple[Hostname, ...], BeforeValidator(_engine_value)] = _setting(
        Clone.COPY, "caaIssuers", "certificate authorities allowed to issue", DEFAULT_CAA_ISSUERS
    )
    caa_iodef: CaaIodef = _setting(
        Clone.COPY, "caaIodef", "mailto: or https:// address for refused-certificate reports", ""
    )
    dkim_records: Annotated[tuple[DnsRecord, ...], BeforeValidator(_engine_value)] = _setting(
        Clone.REWRITE, "dkimRecords", "the DNS records Resend shows for the domain"
    )

    # --- App, people and providers -------------------------------------------------------------------
    app_url: HttpsUrl = _setting(Clone.REWRITE, "appUrl", "the app's public URL, https://...")
    authorized_domains: Annotated[tuple[AuthorizedDomain, ...], BeforeValidator(_engine_value)] = _setting(
        Clone.REWRITE, "authorizedDomains", "hostnames allowed to sign in, e.g. [app.example.com]"
    )
    alert_email: EmailAddress = _setting(Clone.COPY, "alertEmail", "who receives alerts")
    ops_email: EmailAddress = _setting(Clone.COPY, "opsEmail", "who receives the daily ops digest")
    email_from: EmailSender = _setting(
        Clone.REWRITE,
        "emailFrom",
        "sender of transactional email, e.g. 'App <hello@example.com>', inside mailDomain",
    )
    zendesk_base_url: HttpsUrl = _setting(Clone.COPY, "zendeskBaseUrl", "https://<subdomain>.zendesk.com")
    stripe_price_id: StripePriceId = _setting(
        Clone.NEVER, "stripePriceId", "the Stripe price the checkout sells, price_..."
    )

    # --- Capacity and retention ----------------------------------------------------------------------
    max_instances_scale: Annotated[float, Strict(), BeforeValidator(_engine_value), Field(gt=0, le=10)] = (
        _setting(
            Clone.POLICY, "maxInstancesScale", "multiplies catalog max instances (rounded, at least 1)", 1.0
        )
    )
    log_retention_days: Annotated[LogRetentionDays, Strict(), BeforeValidator(_engine_value)] = _setting(
        Clone.POLICY, "logRetentionDays", "days Cloud Logging keeps logs", DEFAULT_LOG_RETENTION_DAYS
    )

    # --- Google provider (gcp:*) ---------------------------------------------------------------------
    gcp_project: Annotated[ProjectId | None, BeforeValidator(_blank_is_unset)] = Field(
        None,
        alias="gcp:project",
        description="the provider's default project: same as launchready:projectId",
        json_schema_extra=_clone_extra(Clone.REWRITE),
    )
    gcp_region: Annotated[
        str | None,
        BeforeValidator(_one_of(FUNCTION_REGIONS, _FUNCTIONS_SOURCE)),
        BeforeValidator(_blank_is_unset),
    ] = Field(
        None,
        alias="gcp:region",
        description="the provider's default region",
        json_schema_extra=_clone_extra(Clone.COPY, {"enum": list(FUNCTION_REGIONS)}),
    )
    gcp_user_project_override: Flag = Field(
        False,
        alias="gcp:userProjectOverride",
        description="must be true: Firebase and Identity Toolkit calls bill a quota project",
        json_schema_extra=_clone_extra(Clone.COPY),
    )
    gcp_billing_project: Annotated[ProjectId | None, BeforeValidator(_blank_is_unset)] = Field(
        None,
        alias="gcp:billingProject",
        description="the quota project for API calls (usually projectId)",
        json_schema_extra=_clone_extra(Clone.REWRITE),
    )

    _stack: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _cross_field_rules(self) -> StackConfig:
        problems = [f"{key} {why}" for key, why in _cross_field_problems(self)]
        if problems:
            raise PydanticCustomError("stack_rules", "{problems}", {"problems": problems})
        return self

    # --- Values derived from the settings, read by the components ------------------------------------
    @property
    def stack(self) -> str:
        return self._stack

    @property
    def new_project(self) -> NewProject | None:
        if not self.create_project or not self.billing_account:
            return None
        return NewProject(self.billing_account, self.folder_id, self.org_id)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def firestore_location_id(self) -> str:
        return self.firestore_location or self.region

    @property
    def site_id(self) -> str:
        return self.hosting_site_id or f"{self.project_id}-api"[:63]

    @property
    def sending_domain(self) -> str:
        return self.mail_domain or self.domain

    @property
    def quota_project(self) -> str:
        return self.gcp_billing_project or self.project_id

    @property
    def api_host_depth(self) -> int:
        """Labels between the API host and the zone apex: api.example.com is 1, api.staging.example.com 2."""
        return self.api_host.removesuffix("." + self.domain).count(".") + 1


def _key(name: str) -> str:
    return f"{NAMESPACE}:{name}"


def _cross_field_problems(config: StackConfig) -> list[tuple[str, str]]:
    """Rules between settings; each problem is (full key, why)."""
    problems: list[tuple[str, str]] = []
    if config.create_project:
        if not config.billing_account:
            problems.append((_key("billingAccount"), "is required when createProject is true"))
        if bool(config.folder_id) == bool(config.org_id):
            problems.append(
                (
                    _key("folderId"),
                    "or launchready:orgId (exactly one) is required when createProject is true",
                )
            )
    if config.proxy_api_host:
        problems.append(
            (
                _key("proxyApiHost"),
                "true is refused: behind Cloudflare's proxy the host resolves to Cloudflare, Firebase "
                "Hosting reports HOST_MISMATCH and cannot renew its certificate (the API answers 526 weeks "
                "later); "
                "set it to false (docs/architecture.md, 'The API host is DNS-only')",
            )
        )
    if not config.api_host.endswith("." + config.domain):
        problems.append((_key("apiHost"), f"must be a subdomain of {config.domain}"))
    if config.edge_certificate == "custom" and config.cloudflare_plan not in CUSTOM_CERTIFICATE_PLANS:
        problems.append(
            (
                _key("edgeCertificate"),
                f"custom needs a Business or Enterprise plan, the zone is on {config.cloudflare_plan} "
                f"({UNIVERSAL_SSL_DOC})",
            )
        )
    if config.is_production and "localhost" in config.authorized_domains:
        # Any page on a developer's machine could then complete sign-in against production accounts.
        problems.append((_key("authorizedDomains"), "must not include localhost in a production environment"))
    mail_domain = config.sending_domain
    if mail_domain != config.domain and not mail_domain.endswith("." + config.domain):
        problems.append((_key("mailDomain"), f"must be {config.domain} or a subdomain of it"))
    sender = parse_sender(config.email_from)
    if sender is not None and sender.domain != mail_domain:
        problems.append(
            (
                _key("emailFrom"),
                f"sends from {sender.domain}, outside launchready:mailDomain {mail_domain} "
                "(the email provider only sends from the verified domain)",
            )
        )
    # This stack's own SPF record is published at the sending domain, the zone owner's at the apex.
    spf_hosts = {config.domain, mail_domain}
    for index, record in enumerate(config.dkim_records):
        if record.type == "TXT" and is_spf(record.value) and record.host(config.domain) in spf_hosts:
            problems.append(
                (
                    f"{_key('dkimRecords')}[{index}]",
                    f"is an SPF record at {record.host(config.domain)}, where launchready:spfIncludes "
                    "is published: put its includes there (two SPF records at one name are a permanent "
                    "error, RFC 7208 4.5)",
                )
            )
    if config.manage_zone and not config.caa_issuers:
        problems.append(
            (
                _key("caaIssuers"),
                "is empty: this stack owns the zone's CAA records (launchready:manageZone), list the "
                "certificate authorities allowed to issue, e.g. pki.goog",
            )
        )
    if config.gcp_project is not None and config.gcp_project != config.project_id:
        problems.append(
            ("gcp:project", f"is {config.gcp_project!r} but launchready:projectId is {config.project_id!r}")
        )
    if not config.gcp_user_project_override:
        problems.append(
            (
                "gcp:userProjectOverride",
                f"must be true: Identity Toolkit and Firebase need a quota project ({QUOTA_PROJECT_DOC})",
            )
        )
    if config.gcp_billing_project is None:
        problems.append(("gcp:billingProject", f"is missing: the quota project, usually {config.project_id}"))
    return problems


def _describe_bounds(field_name: str) -> str:
    metadata = StackConfig.model_fields[field_name].metadata
    lower = next((m for m in metadata if hasattr(m, "ge") or hasattr(m, "gt")), None)
    upper = next((m for m in metadata if hasattr(m, "le")), None)
    if lower is not None and hasattr(lower, "ge") and upper is not None:
        return f"must be between {lower.ge} and {upper.le}"
    if lower is not None and hasattr(lower, "gt") and upper is not None:
        return f"must be greater than {lower.gt} and at most {upper.le}"
    return "is out of range"


_FIELD_BY_ALIAS = {str(field.alias): name for name, field in StackConfig.model_fields.items()}
_KNOWN_KEYS = tuple(_FIELD_BY_ALIAS)


def _location(loc: tuple[int | str, ...]) -> str:
    key = str(loc[0]) if loc else ""
    for part in loc[1:]:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


def _problem(error: Any) -> list[str]:
    """Turn one pydantic error into the user's words: `<key> <why>`."""
    kind, loc, value = error["type"], tuple(error["loc"]), error.get("input")
    if kind == "stack_rules":
        return list(error["ctx"]["problems"])
    key = _location(loc)
    field_name = _FIELD_BY_ALIAS.get(str(loc[0])) if loc else None
    hint = StackConfig.model_fields[field_name].description if field_name and len(loc) == 1 else ""
    hint_text = f" ({hint})" if hint else ""
    if kind == "missing":
        return [f"{key} is missing{hint_text}"]
    if kind == "string_pattern_mismatch":
        form = expected_form(str(error["ctx"]["pattern"]))
        expected = f", expected {form}" if form else ""
        return [f"{key} is malformed: {value!r}{expected}{hint_text}"]
    if kind == "literal_error":
        listed = str(error["ctx"]["expected"]).replace("'", "")
        return [f"{key} must be {listed}, got {value!r}"]
    if kind == "too_long":
        return [f"{key} has more than {error['ctx']['max_length']} entries{hint_text}"]
    if kind in ("bool_type", "bool_parsing"):
        return [f"{key} must be true or false, got {value!r}"]
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return [f"{key} must be a whole number, got {value!r}"]
    if kind in ("float_type", "float_parsing"):
        return [f"{key} must be a number, got {value!r}"]
    if kind in ("string_type",):
        return [f"{key} must be a string{hint_text}, got {value!r}"]
    if kind in ("tuple_type", "list_type"):
        return [f"{key} must be a list{hint_text}, got {value!r}"]
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal") and field_name:
        return [f"{key} {_describe_bounds(field_name)}, got {value!r}"]
    if kind in ("model_type", "dict_type"):
        return [f"{key} must have name, type and value"]
    if kind == "extra_forbidden":
        return [f"{key} is not a known field"]
    return [f"{key} {error['msg'][0].lower()}{error['msg'][1:]}"]


def _unknown_keys(values: Mapping[str, Any]) -> list[str]:
    problems = []
    for key in sorted(values):
        if key.startswith(f"{NAMESPACE}:") and key not in _FIELD_BY_ALIAS:
            close = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
            suggestion = f"; did you mean {close[0]}?" if close else ""
            problems.append(f"{key} is not a known setting{suggestion}")
    return problems


def _namespaced(values: Mapping[str, Any]) -> dict[str, Any]:
    # Tests and callers may pass bare launchready keys; provider keys always carry their namespace.
    return {key if ":" in key else f"{NAMESPACE}:{key}": value for key, value in values.items()}


def parse_stack_config(values: Mapping[str, Any], stack: str) -> StackConfig:
    """Validate the raw config values of `stack` (`launchready:*`, bare launchready keys, `gcp:*`).

    Values in other namespaces (e.g. `cloudflare:apiToken`) are ignored. Raises StackConfigError listing
    every problem, each with its full key and the stack file.
    """
    # YAML values are read in the engine's form, so a value validates the same in every tool and in the
    # program (an unquoted folder id is the same digits either way).
    raw = {key: engine_form(value) for key, value in _namespaced(values).items()}
    problems: list[str] = []
    try:
        config = StackConfig.model_validate({k: v for k, v in raw.items() if k in _FIELD_BY_ALIAS})
    except ValidationError as error:
        problems = [problem for detail in error.errors() for problem in _problem(detail)]
        config = None
    problems += _unknown_keys(raw)
    if problems or config is None:
        lines = "\n".join(f"  - {problem}" for problem in problems)
        raise StackConfigError(f"Pulumi.{stack}.yaml: invalid configuration:\n{lines}")
    config._stack = stack
    return config


# --- The stack file --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Placeholder:
    """A config key that still holds one of the template's example values (components/example_values.py)."""

    key: str
    line: int
    value: str


@dataclass(frozen=True)
class StackFile:
    """Pulumi.<stack>.yaml as read from disk: config values, encrypted keys and the keys still holding the
    template's example values."""

    path: Path
    config: dict[str, Any]
    secret_keys: tuple[str, ...]
    placeholders: tuple[Placeholder, ...]
    secrets_provider: str | None = None  # the file's `secretsprovider` (e.g. gcpkms://...), when it names one

    def warnings(self) -> list[str]:
        """One line per key still holding an example value."""
        return [
            f"warning: {self.path.name}:{p.line}: {p.key} still holds the template's example value "
            f"{p.value!r}: put in your own before deploying"
            for p in self.placeholders
        ]


_CONFIG_KEY_LINE = re.compile(r"^  (?P<key>[A-Za-z][\w-]*:[A-Za-z][\w-]*):(?P<rest>.*)$")


def _key_lines(text: str) -> dict[str, int]:
    """The line number of each config key in a stack file's text."""
    lines: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        match = _CONFIG_KEY_LINE.match(line)
        if match:
            lines.setdefault(match["key"], number)
    return lines


def find_placeholders(text: str, config: Mapping[str, Any]) -> tuple[Placeholder, ...]:
    """The keys of `config` still holding a template example value, in file order, with their lines."""
    lines = _key_lines(text)
    found = []
    for key, value in config.items():
        example = example_text(key, value)
        if example is not None:
            found.append(Placeholder(key, lines.get(key, 0), _brief(example)))
    return tuple(sorted(found, key=lambda placeholder: placeholder.line))


def read_stack_file(path: Path) -> StackFile:
    """Read and parse a stack file. Raises StackConfigError with file:line:column on a YAML error."""
    if not path.is_file():
        raise StackConfigError(
            f"{path.name} not found: create it (see Pulumi.staging.yaml) or pick another stack"
        )
    text = path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        where = f"{path.name}:{mark.line + 1}:{mark.column + 1}" if mark is not None else path.name
        raise StackConfigError(f"{where}: YAML syntax error: {problem}") from None
    raw = document.get("config") if isinstance(document, dict) else None
    if not isinstance(raw, dict):
        raise StackConfigError(f"{path.name}: 'config' must be a mapping of keys to values")
    config: dict[str, Any] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        if isinstance(value, dict) and set(value) == {"secure"}:
            secret_keys.append(str(key))
            continue
        config[str(key)] = value
    placeholders = find_placeholders(text, config)
    provider = document.get("secretsprovider")
    secrets_provider = provider if isinstance(provider, str) and provider else None
    return StackFile(path, config, tuple(secret_keys), placeholders, secrets_provider)


def _brief(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def stack_file_schema() -> dict[str, Any]:
    """JSON schema of a Pulumi.<stack>.yaml file for editors (yaml-language-server), from the model."""
    config = StackConfig.model_json_schema(by_alias=True, mode="validation")
    definitions = config.pop("$defs", {})
    config.pop("title", None)
    config["description"] = "Stack settings; keys in other namespaces (e.g. cloudflare:apiToken) are allowed."
    config["propertyNames"] = {"anyOf": [{"enum": list(_KNOWN_KEYS)}, {"not": {"pattern": f"^{NAMESPACE}:"}}]}
    config.pop("additionalProperties", None)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Launch Ready Pulumi stack file",
        "description": "Generated from components/stack_config.py by `python -m tools stack-schema`.",
        "type": "object",
        "properties": {
            "config": config,
            "secretsprovider": {"type": "string", CLONE_KEY: Clone.NEVER.value},
            "encryptedkey": {"type": "string", CLONE_KEY: Clone.NEVER.value},
            "encryptionsalt": {"type": "string", CLONE_KEY: Clone.NEVER.value},
        },
        "required": ["config"],
        "$defs": definitions,
    }


def docs_table() -> str:
    """Markdown table of every setting: key, required or default, accepted values, meaning."""
    rows = ["| Key | Default | Accepts | Clone | Meaning |", "|---|---|---|---|---|"]
    for name, field in StackConfig.model_fields.items():
        default = "required" if field.is_required() else f"`{_show(field.get_default())}`"
        clone = clone_class(str(field.alias))
        rows.append(
            f"| `{field.alias}` | {default} | {_accepts(name)} | {clone.value if clone else '?'} "
            f"| {field.description} |"
        )
    return "\n".join(rows)


def _show(value: Any) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == "":
        return '""'
    if isinstance(value, tuple):
        return json.dumps(list(value))
    return str(value)


def _accepts(name: str) -> str:
    schema = StackConfig.model_json_schema(by_alias=True)["properties"][
        str(StackConfig.model_fields[name].alias)
    ]
    if "enum" in schema:
        values = schema["enum"]
        return (
            " \\| ".join(f"`{v}`" for v in values) if len(values) <= 5 else f"one of {len(values)} locations"
        )
    options = schema.get("anyOf", [schema])
    kinds = sorted({str(o.get("type")) for o in options if o.get("type") not in (None, "null")})
    text = " or ".join(kinds) or "object"
    pattern = next((o["pattern"] for o in options if "pattern" in o), None)
    parts = [*options, schema.get("items", {})]
    form = next((o["format"] for o in parts if "format" in o), None)
    described = next((o["description"] for o in parts[1:] if "description" in o), None)
    if form:
        text += f" of {form}s" if text == "array" else f" ({form})"
    elif described and text == "array":
        text += f", each {described}"
    elif pattern and len(pattern) < 40:
        text += " matching `" + pattern.replace("|", "\\|") + "`"
    return text


def runtime_config_values() -> dict[str, Any]:
    """Every `launchready:*` and `gcp:*` value the Pulumi engine passed to this program."""
    from pulumi.runtime import config as runtime_config  # only the program needs the engine

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    prefixes = (f"{NAMESPACE}:", f"{PROVIDER_NAMESPACE}:")
    return {key: value for key, value in merged.items() if key.startswith(prefixes)}
