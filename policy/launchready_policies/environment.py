"""Environment separation (stack validation): what staging and production must never share, and what
only production manages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from .common import (
    ENVIRONMENT_SCHEMA,
    Report,
    catalog,
    environment_of,
    get,
    items,
    resource_policy,
    stack_policy,
)

DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
IDENTIFIER_KINDS = ("projects", "hostingSites", "buckets", "apiHosts", "webhookUrls")

_IDENTIFIERS_SCHEMA = {
    "type": "object",
    "properties": {kind: {"type": "array", "items": {"type": "string"}} for kind in IDENTIFIER_KINDS},
    "additionalProperties": False,
}
SEPARATION_SCHEMA = PolicyConfigSchema(
    properties={
        "otherStacks": {
            "type": "object",
            "description": "Per other stack, the identifiers this stack must not use.",
            "additionalProperties": _IDENTIFIERS_SCHEMA,
        }
    }
)


def stack_identifiers(args: StackValidationArgs) -> dict[str, dict[str, str]]:
    """Per kind, each project, hosting site, bucket, API host and webhook URL this stack uses, with
    the URN of the first resource that uses it."""
    found: dict[str, dict[str, str]] = {kind: {} for kind in IDENTIFIER_KINDS}
    webhook = next(s for s in catalog().public_http if s.name == "stripe_webhook")
    for resource in args.resources:
        props, kind, urn = resource.props, resource.resource_type, resource.urn
        if kind.startswith("gcp:") and isinstance(props.get("project"), str):
            found["projects"].setdefault(props["project"], urn)
        if kind == "gcp:organizations/project:Project":
            found["projects"].setdefault(str(props.get("projectId")), urn)
        if kind == "gcp:firebase/hostingSite:HostingSite":
            found["hostingSites"].setdefault(str(props.get("siteId")), urn)
        if kind == "gcp:storage/bucket:Bucket":
            found["buckets"].setdefault(str(props.get("name")), urn)
        if kind == "gcp:firebase/hostingCustomDomain:HostingCustomDomain":
            found["apiHosts"].setdefault(str(props.get("customDomain")), urn)
        if kind == "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig":
            host = get(props, "monitoredResource", "labels", "host")
            if host:
                found["apiHosts"].setdefault(str(host), urn)
                if get(props, "httpCheck", "path") == webhook.trigger.path:
                    found["webhookUrls"].setdefault(f"https://{host}{webhook.trigger.path}", urn)
    return found


def _separation(args: StackValidationArgs, report: Report) -> None:
    others: Mapping[str, Any] = args.get_config().get("otherStacks") or {}
    if not others:
        args.not_applicable("no other stack's identifiers are configured (otherStacks)")
    mine = stack_identifiers(args)
    for stack in others:
        theirs = others[stack]
        for kind in IDENTIFIER_KINDS:
            for shared in sorted(set(mine[kind]) & {str(v) for v in items(theirs.get(kind))}):
                report(
                    f"shares {kind} {shared} with stack {stack}: each environment needs its own",
                    mine[kind][shared],
                )


SEPARATION = stack_policy(
    "environment-separation",
    "Stacks never share a GCP project, Firebase Hosting site, bucket, API host or webhook URL.",
    _separation,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.CRITICAL,
    config_schema=SEPARATION_SCHEMA,
    tags=["environment", "separation"],
    remediation_steps=(
        "Give this stack its own launchready:projectId, hostingSiteId and apiHost in Pulumi.<stack>.yaml; "
        "bucket names and the webhook URL derive from them."
    ),
)

# ---- production's DMARC rejects --------------------------------------------------------------------------


def _dmarc_policy(content: Any) -> str | None:
    text = str(content or "").strip('"')
    if not text.startswith("v=DMARC1"):
        return None
    tags = dict(part.strip().split("=", 1) for part in text.split(";") if "=" in part)
    return tags.get("p", "").strip()


def _production_dmarc(args: ResourceValidationArgs, report: Report) -> None:
    if args.resource_type != DNS_RECORD or args.props.get("type") != "TXT":
        return
    policy = _dmarc_policy(args.props.get("content"))
    if policy is None:
        return
    environment = environment_of(args)
    if environment != "production":
        args.not_applicable(f"DMARC p=reject is required in production; this stack is {environment}")
    if policy != "reject":
        report(f"production's DMARC policy is p={policy}; it must be p=reject")


PRODUCTION_DMARC = resource_policy(
    "production-dmarc-reject",
    "Production's DMARC record rejects mail that fails SPF/DKIM alignment (p=reject).",
    _production_dmarc,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    config_schema=PolicyConfigSchema(properties={"environment": ENVIRONMENT_SCHEMA}),
    tags=["environment", "email", "dmarc"],
    remediation_steps="Set launchready:dmarcPolicy: reject in the production stack's Pulumi.<stack>.yaml.",
)

# ---- only production manages zone-wide settings --------------------------------------------------------


def _zone_wide_only_in_production(args: StackValidationArgs, report: Report) -> None:
    environment = environment_of(args)
    if environment == "production":
        args.not_applicable("production manages the zone-wide settings")
    apex = pulumi.runtime.get_config("launchready:domain")
    for resource in args.resources:
        kind = resource.resource_type
        if kind == "cloudflare:index/zoneSetting:ZoneSetting":
            report(f"{environment} changes the zone setting {resource.props.get('settingId')}", resource.urn)
        elif kind == "cloudflare:index/ruleset:Ruleset" and resource.props.get("kind") == "zone":
            report(
                f"{environment} manages a zone-level ruleset ({resource.props.get('phase')})", resource.urn
            )
        elif kind == DNS_RECORD and apex and resource.props.get("name") in (apex, f"_dmarc.{apex}"):
            report(f"{environment} manages the apex record {resource.props.get('type')} {apex}", resource.urn)


ZONE_WIDE = stack_policy(
    "zone-wide-settings-in-production-only",
    "Only the production stack manages zone-wide Cloudflare settings, rulesets and apex records.",
    _zone_wide_only_in_production,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    config_schema=PolicyConfigSchema(properties={"environment": ENVIRONMENT_SCHEMA}),
    tags=["environment", "edge", "cloudflare"],
    remediation_steps="Set launchready:manageZone: false in every stack but production.",
)

POLICIES = (SEPARATION, PRODUCTION_DMARC, ZONE_WIDE)
