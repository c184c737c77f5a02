"""Cloudflare edge for one environment: API hostname, TLS hardening, mail authentication, CAA, rate limits.

Arguments arrive validated by the stack config model (components/config_types.py types); zone-wide
records and settings are registered only by the stack that owns the zone (`manage_zone`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_cloudflare as cloudflare

from components.config_types import (
    CaaIodef,
    CloudflarePlan,
    CloudflareZoneId,
    DmarcPolicy,
    DnsRecord,
    Hostname,
    MailtoAddress,
    SpfDomainSpec,
    fqdn,
)

# Cloudflare's "automatic" TTL; the only value allowed on proxied records.
AUTOMATIC_TTL = 1
HSTS_MAX_AGE_SECONDS = 31_536_000  # one year
RATE_LIMITED_BODY = (
    '{"error":{"code":"rate_limited","message":"too many requests from this address, retry in 10 seconds"}}'
)
# 10 s period and 10 s block are the values every Cloudflare plan accepts.
RATE_LIMIT_PERIOD_SECONDS = 10
RATE_LIMIT_MITIGATION_SECONDS = 10


@dataclass
class EdgeArgs:
    zone_id: CloudflareZoneId
    domain: Hostname
    # A full hostname inside `domain`, or a name relative to it (`api`).
    api_host: str
    api_target: pulumi.Input[str]
    dmarc_policy: DmarcPolicy
    dmarc_rua: MailtoAddress
    # The email provider's records (e.g. Resend: `resend._domainkey` TXT, `send` MX + TXT).
    dkim_records: Sequence[DnsRecord]
    spf_includes: Sequence[SpfDomainSpec]
    caa_issuers: Sequence[Hostname]
    # Exact URL paths (catalog public HTTP paths), rate limited per client.
    rate_limited_paths: Sequence[str]
    # Where CAs report refused certificate requests (mailto: or https: URL); empty for none.
    caa_iodef: CaaIodef = ""
    # Per client IP and Cloudflare data centre, per 10 s. Stripe delivers bursts from a few IPs, so this is
    # set well above one client's normal rate; it exists to cut off floods, not to shape traffic.
    rate_limit_requests_per_period: int = 50
    # Zone-wide state (TLS settings, apex SPF/DMARC/CAA, the zone's rate-limit entry point) can have one
    # owner only: with staging and prod on one zone, prod sets True and staging False, else the second
    # stack's apex records and ruleset collide with the first's.
    manage_zone: bool = True
    # The domain this stack sends email from; its SPF and DMARC records (and so its DMARC policy) are
    # published there. Empty: the apex. A staging subdomain keeps staging's policy apart from prod's.
    mail_domain: str = ""
    # The zone's plan (launchready:cloudflarePlan): features above Free are used only where the plan has them.
    cloudflare_plan: CloudflarePlan = "free"


# A rate limiting rule's custom response (status, body) "is only available on Pro plans and above":
# https://developers.cloudflare.com/waf/rate-limiting-rules/create-zone-dashboard/#configure-a-custom-response-for-blocked-requests
CUSTOM_RATE_LIMIT_RESPONSE_PLANS: tuple[CloudflarePlan, ...] = ("pro", "business", "enterprise")


def rate_limit_response(plan: CloudflarePlan) -> cloudflare.RulesetRuleActionParametersArgs | None:
    """The JSON 429 answer where the plan allows a custom response; None: Cloudflare's default 429 page."""
    if plan not in CUSTOM_RATE_LIMIT_RESPONSE_PLANS:
        return None
    return cloudflare.RulesetRuleActionParametersArgs(
        response=cloudflare.RulesetRuleActionParametersResponseArgs(
            status_code=429, content_type="application/json", content=RATE_LIMITED_BODY
        )
    )


# RFC 1035 3.3: a <character-string> is one length octet followed by at most 255 octets.
TXT_STRING_MAX_BYTES = 255


def txt_chunks(text: str) -> list[str]:
    """`text` cut into pieces of at most 255 UTF-8 bytes, never inside a character."""
    chunks: list[str] = []
    current, size = "", 0
    for char in text:
        width = len(char.encode("utf-8"))
        if size + width > TXT_STRING_MAX_BYTES:
            chunks.append(current)
            current, size = "", 0
        current += char
        size += width
    return [*chunks, current]


def txt_content(text: str) -> str:
    """TXT content as RFC 1035 quoted character strings of at most 255 bytes each, joined by one space:
    the form Cloudflare stores and returns ("each with a length of up to 255 bytes. Strings exceeding this
    allowed maximum length are automatically split", cloudflare-python types/dns/txt_record_param.py).
    Sent unsplit, a 2048-bit DKIM key comes back split and never converges
    (cloudflare/terraform-provider-cloudflare#6238). Content already in quotes is taken as written."""
    text = text.strip()
    if text.startswith('"') and text.endswith('"'):
        return text
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in txt_chunks(text))


def spf_value(includes: Sequence[str]) -> str:
    # No include means nothing may send as the apex: a hard fail tells receivers to reject spoofs.
    if not includes:
        return "v=spf1 -all"
    return "v=spf1 " + " ".join(f"include:{host}" for host in includes) + " ~all"


def dmarc_value(policy: DmarcPolicy, rua: str) -> str:
    address = rua.removeprefix("mailto:")
    return f"v=DMARC1; p={policy}; rua=mailto:{address}"


def rate_limit_expression(paths: Sequence[str]) -> str:
    # Path only: the Free plan's rate limiting rules accept no other request field.
    quoted = " ".join(f'"{path}"' for path in paths)
    return f"(http.request.uri.path in {{{quoted}}})"


def hostname_of(target: str) -> str:
    """A CNAME target from either a hostname or a URL (`https://x.run.app/` -> `x.run.app`)."""
    target = target.strip()
    target = re.sub(r"^[a-z]+://", "", target)
    return target.split("/", 1)[0].rstrip(".")


class Edge(pulumi.ComponentResource):
    """DNS, TLS and edge protection for the API hostname and the mail domain on one Cloudflare zone."""

    api_hostname: pulumi.Output[str]
    spf_record_id: pulumi.Output[str]
    dmarc_record_id: pulumi.Output[str]
    rate_limit_ruleset_id: pulumi.Output[str]

    def __init__(self, name: str, args: EdgeArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("launchready:edge:Edge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        domain = args.domain.strip().rstrip(".").lower()
        api_host = fqdn(args.api_host, domain)

        api_record = cloudflare.DnsRecord(
            f"{name}-api",
            zone_id=args.zone_id,
            name=api_host,
            type="CNAME",
            content=pulumi.Output.from_input(args.api_target).apply(hostname_of),
            # DNS-only: Firebase Hosting must resolve its own records to keep the domain and renew the
            # certificate; proxied, the host resolves to Cloudflare (HOST_MISMATCH) and the origin Host
            # overrides that would fix it are Enterprise-only (docs/architecture.md, "The API host is
            # DNS-only").
            proxied=False,
            ttl=AUTOMATIC_TTL,
            comment="API hostname (Launch Ready)",
            opts=child,
        )

        self._provider_mail_records(name, args, domain, child)
        self.api_hostname = api_record.name
        # Empty when another stack owns the zone-wide records.
        self.spf_record_id = pulumi.Output.from_input("")
        self.dmarc_record_id = pulumi.Output.from_input("")
        self.rate_limit_ruleset_id = pulumi.Output.from_input("")
        mail_domain = fqdn(args.mail_domain, domain) if args.mail_domain else domain
        if args.manage_zone or mail_domain != domain:
            spf = spf_value(args.spf_includes)
            self.spf_record_id = self._txt_record(f"{name}-spf", args, mail_domain, spf, "SPF", child).id
            # Subdomains without their own _dmarc record (e.g. a staging sending domain) inherit this policy.
            dmarc = dmarc_value(args.dmarc_policy, args.dmarc_rua)
            dmarc_host = fqdn("_dmarc", mail_domain)
            self.dmarc_record_id = self._txt_record(
                f"{name}-dmarc", args, dmarc_host, dmarc, "DMARC policy", child
            ).id
        if args.manage_zone:
            self._zone_settings(name, args.zone_id, child)
            self._caa_records(name, args, domain, child)
            self.rate_limit_ruleset_id = self._rate_limit(name, args, child).id
        self.register_outputs(
            {
                "api_hostname": self.api_hostname,
                "spf_record_id": self.spf_record_id,
                "dmarc_record_id": self.dmarc_record_id,
                "rate_limit_ruleset_id": self.rate_limit_ruleset_id,
            }
        )

    @staticmethod
    def _zone_settings(name: str, zone_id: str, opts: pulumi.ResourceOptions) -> None:
        settings: dict[str, object] = {
            # Full (strict): Cloudflare validates the origin certificate, so the hop to the origin is not
            # open to a man in the middle.
            "ssl": "strict",
            "min_tls_version": "1.2",
            "tls_1_3": "on",
            "always_use_https": "on",
            "automatic_https_rewrites": "on",
            # Nested keys are the API's snake_case: camelCase keys are sent verbatim and never converge.
            "security_header": {
                "strict_transport_security": {
                    "enabled": True,
                    "max_age": HSTS_MAX_AGE_SECONDS,
                    "include_subdomains": True,
                    "nosniff": True,
                    "preload": False,
                }
            },
        }
        for setting_id, value in settings.items():
            cloudflare.ZoneSetting(
                f"{name}-{setting_id.replace('_', '-')}",
                zone_id=zone_id,
                setting_id=setting_id,
                value=value,
                opts=opts,
            )

    @staticmethod
    def _txt_record(
        resource_name: str, args: EdgeArgs, host: str, text: str, purpose: str, opts: pulumi.ResourceOptions
    ) -> cloudflare.DnsRecord:
        return cloudflare.DnsRecord(
            resource_name,
            zone_id=args.zone_id,
            name=host,
            type="TXT",
            content=txt_content(text),
            proxied=False,
            ttl=AUTOMATIC_TTL,
            comment=f"{purpose} (Launch Ready)",
            opts=opts,
        )

    @staticmethod
    def _provider_mail_records(name: str, args: EdgeArgs, domain: str, opts: pulumi.ResourceOptions) -> None:
        """The email provider's DKIM/return-path records; mail records are never proxied."""
        used: set[str] = set()
        for record in args.dkim_records:
            record_type = record.type
            host = record.host(domain)
            label = host.removesuffix(domain).rstrip(".").replace(".", "-").replace("_", "") or "apex"
            resource_name = f"{name}-mail-{record_type.lower()}-{label}"
            if resource_name in used:
                resource_name = f"{resource_name}-{len(used)}"
            used.add(resource_name)
            cloudflare.DnsRecord(
                resource_name,
                zone_id=args.zone_id,
                name=host,
                type=record_type,
                content=txt_content(record.value) if record_type == "TXT" else record.value.strip(),
                priority=record.priority if record_type == "MX" else None,
                # Mail hosts must resolve to the provider itself; a proxied record would hide them behind
                # Cloudflare's HTTP proxy and break DKIM lookups and delivery.
                proxied=False,
                ttl=AUTOMATIC_TTL,
                comment="Email sending (Launch Ready)",
                opts=opts,
            )

    @staticmethod
    def _caa_records(name: str, args: EdgeArgs, domain: str, opts: pulumi.ResourceOptions) -> None:
        entries = [("issue", issuer.lower()) for issuer in args.caa_issuers]
        if args.caa_iodef:
            entries.append(("iodef", args.caa_iodef))
        for tag, value in entries:
            cloudflare.DnsRecord(
                f"{name}-caa-{tag}-{re.sub(r'[^a-z0-9]+', '-', value.lower()).strip('-')}",
                zone_id=args.zone_id,
                name=domain,
                type="CAA",
                data=cloudflare.DnsRecordDataArgs(flags=0, tag=tag, value=value),
                proxied=False,
                ttl=AUTOMATIC_TTL,
                comment="CAA (Launch Ready)",
                opts=opts,
            )

    @staticmethod
    def _rate_limit(name: str, args: EdgeArgs, opts: pulumi.ResourceOptions) -> cloudflare.Ruleset:
        # One zone entry-point ruleset per phase: this owns the zone's http_ratelimit phase. kind and phase
        # force a replacement, and a second entry point for the phase cannot exist: delete first.
        return cloudflare.Ruleset(
            f"{name}-rate-limit",
            zone_id=args.zone_id,
            name="Launch Ready rate limits",
            description="Per-client request limits on the public webhook and support endpoints",
            kind="zone",
            phase="http_ratelimit",
            rules=[
                cloudflare.RulesetRuleArgs(
                    ref="launchready_public_endpoints",
                    description="Limit each client IP on the public write endpoints",
                    expression=rate_limit_expression(args.rate_limited_paths),
                    action="block",
                    action_parameters=rate_limit_response(args.cloudflare_plan),
                    ratelimit=cloudflare.RulesetRuleRatelimitArgs(
                        # cf.colo.id is required on every plan: counters are kept per data centre.
                        characteristics=["cf.colo.id", "ip.src"],
                        period=RATE_LIMIT_PERIOD_SECONDS,
                        requests_per_period=args.rate_limit_requests_per_period,
                        mitigation_timeout=RATE_LIMIT_MITIGATION_SECONDS,
                    ),
                    enabled=True,
                )
            ],
            opts=opts.merge(pulumi.ResourceOptions(delete_before_replace=True)),
        )
