"""Email authentication records: SPF, DKIM and DMARC as receivers evaluate them."""

from __future__ import annotations

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    ResourceValidationArgs,
    Severity,
    StackValidationArgs,
)

from .common import Report, of_type, resource_policy, stack_policy

DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
DKIM_LABEL = "._domainkey."


def _txt(content: object) -> str:
    return str(content or "").strip().strip('"')


def _one_spf(args: StackValidationArgs, report: Report) -> None:
    # RFC 7208 section 4.5: more than one v=spf1 record at a name is a permanent error (no SPF at all).
    by_name: dict[str, list[str]] = {}
    for record in of_type(args, DNS_RECORD):
        if record.props.get("type") == "TXT" and _txt(record.props.get("content")).startswith("v=spf1"):
            by_name.setdefault(str(record.props.get("name")), []).append(record.urn)
    for name, urns in sorted(by_name.items()):
        for urn in urns if len(urns) > 1 else ():
            report(
                f"{len(urns)} SPF records at {name}: a permanent error to receivers (RFC 7208 4.5)",
                urn,
            )


ONE_SPF = stack_policy(
    "one-spf-per-name",
    "At most one SPF (v=spf1) TXT record per DNS name.",
    _one_spf,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    tags=["email", "spf", "RFC-7208"],
    remediation_steps="Merge the includes into one v=spf1 record (launchready:spfIncludes).",
)


def _dkim_not_proxied(args: ResourceValidationArgs, report: Report) -> None:
    if (
        args.resource_type == DNS_RECORD
        and DKIM_LABEL in f".{args.props.get('name')}."
        and args.props.get("proxied")
    ):
        report(f"DKIM record {args.props.get('name')} is proxied: receivers must see the provider's key")


DKIM_NOT_PROXIED = resource_policy(
    "dkim-not-proxied",
    "DKIM records (<selector>._domainkey) are DNS-only, never proxied through Cloudflare.",
    _dkim_not_proxied,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    tags=["email", "dkim", "cloudflare"],
    remediation_steps="Set proxied=False on the record (Cloudflare would answer with its own address).",
)


def _dmarc_for_senders(args: StackValidationArgs, report: Report) -> None:
    records = of_type(args, DNS_RECORD)
    senders = {
        str(r.props.get("name")).split(DKIM_LABEL, 1)[1]
        for r in records
        if DKIM_LABEL in str(r.props.get("name"))
    }
    mail_domain = pulumi.runtime.get_config("launchready:mailDomain")
    if mail_domain:
        senders.add(str(mail_domain))
    if not senders:
        args.not_applicable("this stack sends no mail (no DKIM record, no launchready:mailDomain)")
    dmarc = {
        str(r.props.get("name"))
        for r in records
        if r.props.get("type") == "TXT" and _txt(r.props.get("content")).startswith("v=DMARC1")
    }
    for domain in sorted(senders):
        if f"_dmarc.{domain}" not in dmarc:
            report(f"sending domain {domain} has no DMARC record at _dmarc.{domain}")


DMARC_FOR_SENDERS = stack_policy(
    "dmarc-for-every-sending-domain",
    "Every domain the stack sends mail from has a DMARC record in the same stack.",
    _dmarc_for_senders,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.HIGH,
    tags=["email", "dmarc", "RFC-7489"],
    remediation_steps=(
        "Set launchready:mailDomain and launchready:dmarcPolicy; components/edge.py adds the record."
    ),
)

POLICIES = (ONE_SPF, DKIM_NOT_PROXIED, DMARC_FOR_SENDERS)
