"""Security policies: public access, least privilege, secrets, storage and the edge's TLS.

A function's project roles are judged by this module's own allow-list of role families per trigger type,
never by the catalog's list the program grants from.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from components.function_env import CONSOLE, WEB_API_KEY_SETTING, WEB_API_KEY_VARIABLE

from .common import (
    COMPUTED_MEMBER,
    Report,
    catalog,
    checkov,
    cis_gcp,
    credential_reason,
    dependency_named,
    function_of_member,
    get,
    grants,
    items,
    known_or,
    last_segment,
    of_type,
    resolved_member,
    resource_policy,
    stack_policy,
)

PUBLIC_MEMBERS = ("allUsers", "allAuthenticatedUsers")
BASIC_ROLES = ("roles/owner", "roles/editor", "roles/viewer")
INVOKER_ROLES = ("roles/run.invoker", "roles/cloudfunctions.invoker")
PUBLIC_INVOKER_TYPES = (
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
    "gcp:cloudfunctionsv2/functionIamMember:FunctionIamMember",
)
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
PUBLISHER_ROLE = "roles/pubsub.publisher"


def _public_http_services() -> set[str]:
    return {spec.resource_name for spec in catalog().public_http}


# ---- no public IAM ------------------------------------------------------------------------------------


def _service_of(resource: PolicyResource) -> str:
    """The Cloud Run service (function) an IAM grant is on. Its name is the function's computed output
    at a first preview, so it is read from the function the grant depends on when unknown."""
    name = known_or(lambda: resource.props.get("name") or resource.props.get("cloudFunction"), None)
    return last_segment(name or dependency_named(resource, FUNCTION, "name"))


def _no_public_iam(args: StackValidationArgs, report: Report) -> None:
    for resource in args.resources:
        for role, member in grants(resource.resource_type, resource.props):
            if member not in PUBLIC_MEMBERS:
                continue
            if (
                resource.resource_type in PUBLIC_INVOKER_TYPES
                and role in INVOKER_ROLES
                and _service_of(resource) in _public_http_services()
            ):
                continue  # a catalog public HTTP function: the internet is its caller by design
            report(
                f"{role} granted to {member}: only the catalog's public HTTP functions may be public",
                resource.urn,
            )


NO_PUBLIC_IAM = stack_policy(
    "no-public-iam",
    "No IAM grant to allUsers or allAuthenticatedUsers, except the invoker role on the catalog's "
    "public HTTP functions.",
    _no_public_iam,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    framework=cis_gcp("5.1"),
    tags=["security", "CKV_GCP_102", "CKV_GCP_107", "CKV_GCP_28", "CKV_GCP_97"],
    remediation_steps=(
        "Grant the role to the service account that needs it instead of allUsers/allAuthenticatedUsers. "
        'A function meant to be public is marked "public": true with a path in components/data/catalog.json.'
    ),
)

# ---- no basic roles on service accounts -----------------------------------------------------------------


def _no_basic_roles(args: ResourceValidationArgs, report: Report) -> None:
    for role, member in grants(args.resource_type, args.props):
        if role in BASIC_ROLES and member.startswith(("serviceAccount:", COMPUTED_MEMBER)):
            report(f"basic role {role} granted to {member}: grant the predefined roles it needs")


NO_BASIC_ROLES = resource_policy(
    "no-basic-roles-on-service-accounts",
    "Service accounts never hold the basic roles owner, editor or viewer.",
    _no_basic_roles,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=cis_gcp("1.5"),
    tags=["security", "least-privilege", "CKV_GCP_117"],
    remediation_steps=(
        "Replace the basic role with the predefined roles the account uses (a function's roles are listed, "
        "each with its reason, in components/data/catalog.json)."
    ),
)

# ---- each function's account holds only roles of the families its kind of trigger may need -------------

# Role families (fnmatch patterns) a function's own account may hold on the project, by trigger type. The
# program grants the roles the catalog lists; this allow-list is the independent judgement of what a
# function of each kind can need, so a role added to the catalog outside it fails here until a reviewer
# also widens this list (or the pack config's extraRoles).
ANY_FUNCTION_ROLES = (
    "roles/datastore.user",  # the Firestore ledger, read and write; never datastore.owner or index admin
    "roles/datastore.viewer",
    "roles/logging.logWriter",  # structured logs
)
ROLE_FAMILIES_BY_TRIGGER: dict[str, tuple[str, ...]] = {
    # Public endpoints verify Firebase ID tokens (check_revoked reads the user): read-only Auth access.
    "http": (*ANY_FUNCTION_ROLES, "roles/firebaseauth.viewer"),
    # Workers apply entitlements to custom claims.
    "pubsub": (*ANY_FUNCTION_ROLES, "roles/firebaseauth.*"),
    # Account lifecycle (claims of created and deleted users); Eventarc delivers the document events.
    "firestore": (*ANY_FUNCTION_ROLES, "roles/firebaseauth.*", "roles/eventarc.eventReceiver"),
    # Scheduled reconciliation heals custom claims.
    "schedule": (*ANY_FUNCTION_ROLES, "roles/firebaseauth.*"),
}

FUNCTION_ROLES_SCHEMA = PolicyConfigSchema(
    properties={
        "extraRoles": {
            "type": "object",
            "description": "More project roles allowed per catalog function name.",
            "additionalProperties": {"type": "array", "items": {"type": "string", "pattern": "^roles/"}},
        }
    }
)


def _function_roles(args: StackValidationArgs, report: Report) -> None:
    extra: Mapping[str, Any] = args.get_config().get("extraRoles") or {}
    for resource in args.resources:
        for role, member in grants(resource.resource_type, resource.props):
            spec = function_of_member(resolved_member(resource, member))
            if spec is None or resource.resource_type == "gcp:secretmanager/secretIamMember:SecretIamMember":
                continue  # secrets have their own policy
            if resource.resource_type == "gcp:projects/iAMMember:IAMMember":
                allowed = (*ROLE_FAMILIES_BY_TRIGGER.get(spec.trigger.type, ()), *items(extra.get(spec.name)))
                if not any(fnmatchcase(role, family) for family in allowed):
                    report(
                        f"{spec.name}'s account holds {role}, outside what a {spec.trigger.type}-triggered "
                        f"function may hold ({', '.join(allowed)})",
                        resource.urn,
                    )
            elif resource.resource_type == "gcp:pubsub/topicIAMMember:TopicIAMMember":
                topic = last_segment(resource.props.get("topic"))
                if role != PUBLISHER_ROLE or topic not in spec.publishes:
                    report(
                        f"{spec.name}'s account holds {role} on topic {topic}; its catalog entry publishes "
                        f"to {list(spec.publishes) or 'no topic'}",
                        resource.urn,
                    )
            elif (
                resource.resource_type == "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
                and role == "roles/run.invoker"
                and spec.trigger.type == "firestore"
                and last_segment(
                    known_or(lambda r=resource: r.props.get("name"), None)
                    or dependency_named(resource, FUNCTION, "name")
                )
                == spec.resource_name
            ):
                continue  # Eventarc invokes a Firestore-triggered function as the function's own account
            else:
                report(f"{spec.name}'s account holds {role} on a {resource.resource_type}", resource.urn)


FUNCTION_ROLES = stack_policy(
    "function-roles-least-privilege",
    "Each function's service account holds only project roles of the families its trigger type may need "
    "(an allow-list of its own, not the catalog's roles), publisher on the topics its catalog entry "
    "publishes to, and invoker on its own service when Eventarc calls it.",
    _function_roles,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=cis_gcp("1.5"),
    tags=["security", "least-privilege", "CKV_GCP_49"],
    config_schema=FUNCTION_ROLES_SCHEMA,
    remediation_steps=(
        "Remove the grant. A role the function needs goes into its catalog entry's roles with the reason "
        "(components/data/catalog.json); outside its trigger type's families it also needs "
        "ROLE_FAMILIES_BY_TRIGGER widened in policy/launchready_policies/security.py, or the pack config's "
        "extraRoles for this function, after review."
    ),
)

# ---- secret accessor only to the functions that declare the secret ------------------------------------


def _secret_accessors(args: StackValidationArgs, report: Report) -> None:
    for resource in args.resources:
        for role, granted in grants(resource.resource_type, resource.props):
            if role != ACCESSOR_ROLE:
                continue
            member = resolved_member(resource, granted)
            if resource.resource_type == "gcp:projects/iAMMember:IAMMember":
                report(
                    f"{member} may read every secret of the project: grant {role} per secret", resource.urn
                )
                continue
            secret = last_segment(resource.props.get("secretId"))
            spec = function_of_member(member)
            if spec is None:
                report(
                    f"{member} is not a catalog function's account but may read secret {secret}", resource.urn
                )
            elif secret not in spec.secrets:
                report(
                    f"{spec.name} may read secret {secret}, which its catalog entry does not declare",
                    resource.urn,
                )


SECRET_ACCESSORS = stack_policy(
    "secret-accessor-least-privilege",
    "The secret accessor role is granted per secret, only to the functions whose catalog entry "
    "declares that secret (a stack policy: a new account's member is known only through the grant's "
    "dependency on it at a first preview).",
    _secret_accessors,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    tags=["security", "least-privilege", "secrets"],
    remediation_steps=(
        'Declare the secret in the function\'s catalog entry (components/data/catalog.json "secrets"), or '
        "remove the grant; never grant roles/secretmanager.secretAccessor on the whole project."
    ),
)

# ---- no credential in a plain environment variable -------------------------------------------------------


def _is_the_consoles_web_api_key(args: ResourceValidationArgs, block: str, name: str, value: Any) -> bool:
    """The Firebase web API key is public by design, but shaped like every Google API key (server keys
    included): it is exempt only as the configured launchready:firebaseWebApiKey, in the variable the ops
    console reads, on the ops console's function."""
    configured = pulumi.runtime.get_config(WEB_API_KEY_SETTING)
    return (
        block == "serviceConfig"
        and name == WEB_API_KEY_VARIABLE
        and bool(configured)
        and value == configured
        and args.props.get("name") == catalog().function(CONSOLE).resource_name
    )


def _no_plain_credentials(args: ResourceValidationArgs, report: Report) -> None:
    for block in ("serviceConfig", "buildConfig"):
        variables = get(args.props, block, "environmentVariables")
        if not isinstance(variables, Mapping):
            continue
        for name in variables:
            if _is_the_consoles_web_api_key(args, block, str(name), variables[name]):
                continue
            reason = credential_reason(str(name), variables[name])
            if reason:
                report(f"{block}.environmentVariables.{name} looks like a credential: {reason}")


NO_PLAIN_CREDENTIALS = resource_policy(
    "no-credentials-in-plain-environment",
    "Functions get credentials only as Secret Manager-backed environment variables, never as plain ones.",
    _no_plain_credentials,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    tags=["security", "secrets", "CWE-798"],
    remediation_steps=(
        "Store the value with `make secrets STACK=<stack>` and list its name under the function's "
        '"secrets" in components/data/catalog.json: it then arrives as secretEnvironmentVariables.'
    ),
)

# ---- buckets ---------------------------------------------------------------------------------------------


def _bucket(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != "gcp:storage/bucket:Bucket":
        return
    if args.props.get("uniformBucketLevelAccess") is not True:
        report("uniformBucketLevelAccess is not true: object ACLs could make objects public")
    if args.props.get("publicAccessPrevention") != "enforced":
        report(f"publicAccessPrevention is {args.props.get('publicAccessPrevention')!r}, not 'enforced'")
    if get(args.props, "versioning", "enabled") is not True:
        report("versioning is not enabled: an overwritten or deleted object cannot be recovered")


BUCKETS = resource_policy(
    "storage-bucket-hardening",
    "Cloud Storage buckets use uniform bucket-level access, enforce public access prevention and keep "
    "object versions.",
    _bucket,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    framework=cis_gcp("5.2"),
    tags=["security", "storage", "CIS-GCP-5.1", "CKV_GCP_29", "CKV_GCP_114", "CKV_GCP_78"],
    remediation_steps=(
        'Set uniform_bucket_level_access=True, public_access_prevention="enforced" and '
        'versioning={"enabled": True} on the bucket.'
    ),
)

# ---- workers are not publicly reachable -----------------------------------------------------------------

PRIVATE_INGRESS = ("ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB")


def _workers_not_public(args: StackValidationArgs, report: Report) -> None:
    for resource in args.resources:
        if resource.resource_type not in (FUNCTION, *PUBLIC_INVOKER_TYPES):
            continue
        service = _service_of(resource)
        spec = next((s for s in catalog().functions if s.resource_name == service), None)
        if spec is None or (spec.trigger.type == "http" and spec.trigger.public):
            continue
        if resource.resource_type == FUNCTION:
            ingress = get(resource.props, "serviceConfig", "ingressSettings")
            if ingress not in PRIVATE_INGRESS:
                report(
                    f"{spec.name} is a {spec.trigger.type}-triggered worker but its ingress is {ingress!r}",
                    resource.urn,
                )
            continue
        for role, member in grants(resource.resource_type, resource.props):
            if member in PUBLIC_MEMBERS or member.startswith(("user:", "group:", "domain:")):
                report(f"{spec.name} is a worker; {member} must not hold {role} on it", resource.urn)


WORKERS_NOT_PUBLIC = stack_policy(
    "workers-not-public",
    "Functions not marked public in the catalog accept only internal traffic and no outside invoker.",
    _workers_not_public,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    framework=checkov("CKV_GCP_124"),
    tags=["security", "CKV_GCP_102", "CKV_GCP_107"],
    remediation_steps=(
        'Set service_config.ingress_settings="ALLOW_INTERNAL_ONLY" and grant roles/run.invoker only to '
        "the Pub/Sub push, Eventarc or Scheduler service account that delivers to the worker."
    ),
)

# ---- Cloudflare TLS -------------------------------------------------------------------------------------

ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
TLS_VERSIONS = ("1.0", "1.1", "1.2", "1.3")
# One year: the minimum max-age the HSTS preload list accepts (https://hstspreload.org/, "Submission
# Requirements").
MIN_HSTS_MAX_AGE = 31536000


def _cloudflare_tls(args: StackValidationArgs, report: Report) -> None:
    settings = {str(r.props.get("settingId")): r for r in of_type(args, ZONE_SETTING)}
    if not settings:
        args.not_applicable("this stack manages no Cloudflare zone settings")
    ssl = settings.get("ssl")
    if ssl is None or ssl.props.get("value") != "strict":
        report(
            "zone setting ssl must be 'strict' (Full (strict): the origin certificate is validated)",
            ssl.urn if ssl else None,
        )
    tls = settings.get("min_tls_version")
    version = str(tls.props.get("value")) if tls else None
    if version not in TLS_VERSIONS or TLS_VERSIONS.index(version) < TLS_VERSIONS.index("1.2"):
        report(
            f"zone setting min_tls_version is {version!r}; it must be 1.2 or 1.3", tls.urn if tls else None
        )
    header = settings.get("security_header")
    hsts = get(header.props, "value", "strict_transport_security") if header else None
    if not isinstance(hsts, Mapping) or hsts.get("enabled") is not True:
        report(
            "HSTS (zone setting security_header.strict_transport_security) is not enabled",
            header.urn if header else None,
        )
    elif float(hsts.get("max_age") or 0) < MIN_HSTS_MAX_AGE:
        report(
            f"HSTS max_age {hsts.get('max_age')} is below {MIN_HSTS_MAX_AGE} s (one year)",
            header.urn if header else None,
        )


CLOUDFLARE_TLS = stack_policy(
    "cloudflare-tls",
    "A stack that manages the Cloudflare zone sets SSL mode strict, minimum TLS 1.2 and HSTS.",
    _cloudflare_tls,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    tags=["security", "edge", "cloudflare"],
    remediation_steps=(
        "In components/edge.py keep the zone settings ssl=strict, min_tls_version=1.2 (or 1.3) and "
        "security_header.strict_transport_security enabled with max_age >= 31536000."
    ),
)

POLICIES = (
    NO_PUBLIC_IAM,
    NO_BASIC_ROLES,
    FUNCTION_ROLES,
    SECRET_ACCESSORS,
    NO_PLAIN_CREDENTIALS,
    BUCKETS,
    WORKERS_NOT_PUBLIC,
    CLOUDFLARE_TLS,
)
