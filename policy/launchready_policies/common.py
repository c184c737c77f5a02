"""What every Launch Ready policy shares: the stack's environment kind, the catalog, the exceptions
allowlist, compliance framework references and small accessors for proxied resource properties.

Properties reach a policy wrapped in pulumi-policy's unknown-checking proxy: mappings are
`collections.abc.Mapping` (not `dict`), lists are `Sequence`, and reading an unknown value raises
`UnknownValueError`, which the engine turns into an advisory "can't run policy during preview" note.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pulumi
from pulumi_policy import (
    PolicyComplianceFramework,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from components.catalog import Catalog, FunctionSpec, load_catalog
from components.config_types import ENVIRONMENTS

PACK_DIR = Path(__file__).resolve().parents[1]
EXCEPTIONS_PATH = PACK_DIR / "exceptions.json"
ENVIRONMENT_KEY = "launchready:environment"

# Offline plan markers (build/plan-<stack>.json): a Pulumi secret, and a plaintext value shaped like a
# credential that the plan redacted although nothing marked it secret.
CREDENTIAL_MARKERS = ("[credential-shaped plaintext]",)


def cis_gcp(control: str) -> PolicyComplianceFramework:
    """CIS Google Cloud Platform Foundation Benchmark v3.0.0 control, e.g. "5.2"."""
    return PolicyComplianceFramework(
        name="CIS Google Cloud Platform Foundation Benchmark",
        version="3.0.0",
        reference=control,
        specification="https://www.cisecurity.org/benchmark/google_cloud_computing_platform",
    )


def checkov(check_id: str) -> PolicyComplianceFramework:
    """A Checkov 3.3.30 check id (checkov/terraform/checks/resource/gcp/*.py)."""
    return PolicyComplianceFramework(
        name="Checkov",
        version="3.3.30",
        reference=check_id,
        specification=f"https://www.checkov.io/5.Policy%20Index/terraform.html#{check_id}",
    )


class Report(Protocol):
    """report_violation as pulumi-policy calls it: the URN is optional (ReportViolation's type says
    Callable[[str, Optional[str]], None], but the SDK's function defaults it to None)."""

    def __call__(self, message: str, urn: str | None = None) -> None: ...


# ---- the stack's environment kind -----------------------------------------------------------------------


def environment_of(args: ResourceValidationArgs | StackValidationArgs) -> str:
    """The stack's environment kind: the policy's `environment` config if set, else the stack config
    `launchready:environment` that the engine hands the pack (pulumi-policy's
    `_configure_runtime_settings` loads PULUMI_CONFIG). Never derived from the stack's name.

    Raises ValueError when neither is set or the value is not production, staging or preview.
    """
    value = args.get_config().get("environment") or pulumi.runtime.get_config(ENVIRONMENT_KEY)
    if value not in ENVIRONMENTS:
        raise ValueError(
            f"stack config {ENVIRONMENT_KEY} must be one of {', '.join(ENVIRONMENTS)}, got {value!r}"
        )
    return str(value)


ENVIRONMENT_SCHEMA: dict[str, Any] = {
    "type": "string",
    "enum": list(ENVIRONMENTS),
    "description": "Overrides the stack config launchready:environment for this policy.",
}

# ---- catalog ---------------------------------------------------------------------------------------------

_catalog: Catalog | None = None


def catalog() -> Catalog:
    """components/data/catalog.json, the same data the program deploys from (read once)."""
    global _catalog
    if _catalog is None:
        _catalog = load_catalog()
    return _catalog


def function_account_id(spec: FunctionSpec) -> str:
    """Account id of a function's runtime service account: `fn-<service name>` cut to 30 characters,
    the rule of components/functions.py `account_id` (ids are 6-30 chars of [a-z0-9-])."""
    return f"fn-{spec.resource_name}"[:30].rstrip("-")


def function_of_member(member: str) -> FunctionSpec | None:
    """The catalog function whose runtime service account `member` (serviceAccount:<email>) is."""
    if not member.startswith("serviceAccount:"):
        return None
    local = member.split(":", 1)[1].split("@", 1)[0]
    return next((spec for spec in catalog().functions if function_account_id(spec) == local), None)


# ---- exceptions allowlist -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyException:
    policy: str
    resource: str
    reason: str
    expires: datetime.date

    def matches(self, policy: str, urn: str, name: str) -> bool:
        return self.policy == policy and self.resource in (urn, name)

    def expired(self, today: datetime.date) -> bool:
        return today > self.expires


class AllowlistError(ValueError):
    """exceptions.json is malformed; the message names the entry and field."""


def load_exceptions(path: Path = EXCEPTIONS_PATH) -> tuple[PolicyException, ...]:
    """Read the allowlist; every entry needs policy, resource, a non-empty reason and an ISO expiry date."""
    document = json.loads(path.read_text(encoding="utf-8"))
    entries = document.get("exceptions") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise AllowlistError(f"{path.name}: 'exceptions' must be a list")
    result = []
    for index, entry in enumerate(entries):
        where = f"{path.name} exceptions[{index}]"
        if not isinstance(entry, dict):
            raise AllowlistError(f"{where}: must be an object")
        missing = [
            k for k in ("policy", "resource", "reason", "expires") if not str(entry.get(k, "")).strip()
        ]
        if missing:
            raise AllowlistError(f"{where}: missing {', '.join(missing)}")
        try:
            expires = datetime.date.fromisoformat(str(entry["expires"]))
        except ValueError:
            raise AllowlistError(f"{where}: expires {entry['expires']!r} is not a YYYY-MM-DD date") from None
        result.append(
            PolicyException(str(entry["policy"]), str(entry["resource"]), str(entry["reason"]), expires)
        )
    return tuple(result)


class Allowlist:
    """The committed exceptions; tests point it at another file with `use()`."""

    path: Path = EXCEPTIONS_PATH
    fixed_today: datetime.date | None = None  # tests pin the date

    @classmethod
    def today(cls) -> datetime.date:
        return cls.fixed_today or datetime.datetime.now(datetime.UTC).date()

    @classmethod
    def use(cls, path: Path) -> None:
        cls.path = path

    @classmethod
    def entries(cls) -> tuple[PolicyException, ...]:
        return load_exceptions(cls.path)

    @classmethod
    def filter(cls, policy: str, report: ReportViolation, resource_urn: str | None = None) -> Report:
        """A report_violation that drops violations a current exception covers (matched on the
        violating resource's URN or name); an expired exception covers nothing and says so."""
        entries = [e for e in cls.entries() if e.policy == policy]

        def report_unless_excepted(message: str, urn: str | None = None) -> None:
            target = urn or resource_urn or ""
            matching = [e for e in entries if e.matches(policy, target, target.rsplit("::", 1)[-1])]
            today = cls.today()
            if any(not e.expired(today) for e in matching):
                return
            expired = [e for e in matching if e.expired(today)]
            suffix = f" (its exception expired on {expired[0].expires.isoformat()})" if expired else ""
            report(message + suffix, urn)

        return report_unless_excepted


def resource_policy(
    name: str,
    description: str,
    validate: Callable[[ResourceValidationArgs, Report], None],
    **metadata: Any,
) -> ResourceValidationPolicy:
    """A ResourceValidationPolicy whose violations pass through the exceptions allowlist."""

    def validate_with_exceptions(args: ResourceValidationArgs, report: ReportViolation) -> None:
        validate(args, Allowlist.filter(name, report, args.urn))

    return ResourceValidationPolicy(
        name=name, description=description, validate=validate_with_exceptions, **metadata
    )


def stack_policy(
    name: str,
    description: str,
    validate: Callable[[StackValidationArgs, Report], None],
    **metadata: Any,
) -> StackValidationPolicy:
    """A StackValidationPolicy whose violations pass through the exceptions allowlist."""

    def validate_with_exceptions(args: StackValidationArgs, report: ReportViolation) -> None:
        validate(args, Allowlist.filter(name, report))

    return StackValidationPolicy(
        name=name, description=description, validate=validate_with_exceptions, **metadata
    )


def of_type(args: StackValidationArgs, *types: str) -> list[PolicyResource]:
    return [r for r in args.resources if r.resource_type in types]


# ---- resource helpers --------------------------------------------------------------------------------------


def get(value: Any, *path: str | int) -> Any:
    """Nested read through proxied mappings and lists; None where a step is absent."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, Sequence) or isinstance(value, str) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


def items(value: Any) -> Iterator[Any]:
    """Elements of a proxied list (none for anything else)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        for index in range(len(value)):
            yield value[index]


def last_segment(value: Any) -> str:
    return str(value or "").rstrip("/").rsplit("/", 1)[-1]


# IAM resources that grant one member one role, and those that grant a role to a list of members.
IAM_MEMBER_TYPES = frozenset(
    {
        "gcp:projects/iAMMember:IAMMember",
        "gcp:serviceaccount/iAMMember:IAMMember",
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "gcp:cloudfunctionsv2/functionIamMember:FunctionIamMember",
        "gcp:storage/bucketIAMMember:BucketIAMMember",
        "gcp:pubsub/topicIAMMember:TopicIAMMember",
        "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember",
        "gcp:secretmanager/secretIamMember:SecretIamMember",
    }
)
IAM_BINDING_TYPES = frozenset(
    {
        "gcp:projects/iAMBinding:IAMBinding",
        "gcp:serviceaccount/iAMBinding:IAMBinding",
        "gcp:cloudrunv2/serviceIamBinding:ServiceIamBinding",
        "gcp:cloudfunctionsv2/functionIamBinding:FunctionIamBinding",
        "gcp:storage/bucketIAMBinding:BucketIAMBinding",
        "gcp:pubsub/topicIAMBinding:TopicIAMBinding",
        "gcp:pubsub/subscriptionIAMBinding:SubscriptionIAMBinding",
        "gcp:secretmanager/secretIamBinding:SecretIamBinding",
    }
)


# A member only known at deploy time: another resource's output, such as a new service account's
# `member`. It is never allUsers/allAuthenticatedUsers, which are literals in the program.
COMPUTED_MEMBER = "<computed at deploy>"


def _known(read: Callable[[], Any]) -> Any:
    try:
        return read()
    except UnknownValueError:
        return COMPUTED_MEMBER


def grants(resource_type: str, props: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(role, member) pairs an IAM member or binding resource grants; a member unknown at preview
    is COMPUTED_MEMBER (reading it through the proxy would abort the whole policy)."""
    if resource_type in IAM_MEMBER_TYPES:
        yield str(props.get("role") or ""), str(_known(lambda: props.get("member")) or "")
    elif resource_type in IAM_BINDING_TYPES:
        members = props.get("members")
        if isinstance(members, Sequence) and not isinstance(members, str):
            for index in range(len(members)):
                yield str(props.get("role") or ""), str(_known(lambda i=index: members[i]))


def known_or(read: Callable[[], Any], default: Any) -> Any:
    """`read()`, or `default` when it reaches a value unknown at preview."""
    try:
        return read()
    except UnknownValueError:
        return default


def is_set(props: Mapping[str, Any], *path: str) -> bool:
    """The input at `path` is set: non-empty, or unknown at preview (computed from another resource,
    so the program did set it)."""
    return bool(known_or(lambda: get(props, *path), True))


def dependency_named(resource: PolicyResource, resource_type: str, key: str) -> str | None:
    """`key` of the one dependency of `resource_type` (stack policies see dependencies)."""
    found = [d for d in resource.dependencies if d.resource_type == resource_type]
    return str(known_or(lambda: found[0].props.get(key), None)) if len(found) == 1 else None


def resolved_member(resource: PolicyResource, member: str) -> str:
    """A computed member resolved through the grant's dependencies (stack policies see them): the
    service account the grant depends on, as `serviceAccount:<account id>@...`."""
    if member != COMPUTED_MEMBER:
        return member
    accounts = [d for d in resource.dependencies if d.resource_type == "gcp:serviceaccount/account:Account"]
    if len(accounts) != 1:
        return member
    return f"serviceAccount:{accounts[0].props.get('accountId')}@computed.iam.gserviceaccount.com"


_SECRET_NAME = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSPHRASE|API_?KEY|PRIVATE_?KEY|CREDENTIALS?)$", re.I)
# Prefixes the providers give their credentials: Stripe (sk_/rk_/whsec_), HubSpot private apps (pat-),
# Resend (re_), Google API keys (AIza), GitHub (ghp_), AWS (AKIA).
_CREDENTIAL_VALUE = re.compile(
    r"^(sk_(live|test)_|rk_(live|test)_|whsec_|pat-[a-z]{2,3}\d?-|re_[A-Za-z0-9]{8,}|AIza|ghp_|AKIA)"
)


def credential_reason(name: str, value: Any) -> str | None:
    """Why a plain environment variable looks like a credential, or None."""
    text = str(value)
    if text in CREDENTIAL_MARKERS:
        return "the offline plan redacted its value as credential-shaped plaintext"
    if _CREDENTIAL_VALUE.match(text):
        return "its value has a provider credential prefix"
    if _SECRET_NAME.search(name) and text.strip():
        return "its name is a credential's"
    return None
