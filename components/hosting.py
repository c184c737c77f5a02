"""The public API host: a Firebase Hosting site that rewrites each catalog public path to its function's
Cloud Run service.

Routes come from the catalog's `trigger.path` alone, so a new public function gets its route without a
change here. Why Hosting: docs/architecture.md, "Why Firebase Hosting for the API host".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_gcp as gcp

from components.catalog import Catalog


@dataclass
class HostingArgs:
    project_id: pulumi.Input[str]
    site_id: str
    region: str
    api_host: str
    catalog: Catalog
    # Catalog function name -> Cloud Run service name (short form).
    service_names: Mapping[str, pulumi.Input[str]]
    # The Firebase project must exist before a site can be added to it.
    firebase_project: pulumi.Resource
    # False in a first deploy's foundation phase: the site and custom domain are created (the certificate
    # takes time to issue), the routes wait for the functions.
    routes: bool = True


def rewrite_rules(
    catalog: Catalog, service_names: Mapping[str, pulumi.Input[str]], region: str
) -> list[gcp.firebase.HostingVersionConfigRewriteArgs]:
    """One rewrite per public path. A rule matches with exactly one of `glob`/`regex` and names exactly one
    destination (`path`, `function` or `run`): `path` is a destination (rewrite to that URL), never a match.
    Source: google-beta services/firebasehosting/resource_firebase_hosting_version.go (config.rewrites) and
    https://firebase.google.com/docs/reference/hosting/rest/v1beta1/sites.versions#rewrite
    """
    return [
        gcp.firebase.HostingVersionConfigRewriteArgs(
            # A literal path is a glob that matches exactly that path.
            glob=str(spec.trigger.path),
            run=gcp.firebase.HostingVersionConfigRewriteRunArgs(
                service_id=service_names[spec.name], region=region
            ),
        )
        for spec in sorted(catalog.public_http, key=lambda s: str(s.trigger.path))
    ]


class ApiHosting(pulumi.ComponentResource):
    """Hosting site, versioned rewrite config, its release and the API's custom domain."""

    default_host: pulumi.Output[str]
    cname_target: pulumi.Output[str]
    required_dns_updates: pulumi.Output[list]
    certificate_state: pulumi.Output[str]

    def __init__(self, name: str, args: HostingArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("launchready:hosting:ApiHosting", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # Explicitly named (site_id, custom_domain are ForceNew): a replacement must delete the old one first,
        # a second site or domain mapping with the same id cannot be created beside it.
        named = pulumi.ResourceOptions(parent=self, delete_before_replace=True)
        self.site = gcp.firebase.HostingSite(
            f"{name}-site",
            project=args.project_id,
            site_id=args.site_id,
            opts=named.merge(pulumi.ResourceOptions(depends_on=[args.firebase_project])),
        )
        if args.routes:
            # A version is immutable: a change of routes creates a new version and a new release.
            self.version = gcp.firebase.HostingVersion(
                f"{name}-version",
                site_id=self.site.site_id,
                config=gcp.firebase.HostingVersionConfigArgs(
                    rewrites=rewrite_rules(args.catalog, args.service_names, args.region)
                ),
                opts=child,
            )
            self.release = gcp.firebase.HostingRelease(
                f"{name}-release",
                site_id=self.site.site_id,
                version_name=self.version.name,
                message="Routes from components/data/catalog.json",
                opts=child,
            )
        self.custom_domain = gcp.firebase.HostingCustomDomain(
            f"{name}-domain",
            project=args.project_id,
            site_id=self.site.site_id,
            custom_domain=args.api_host,
            # DNS is created by the edge in the same run; do not block on verification.
            wait_dns_verification=False,
            opts=named,
        )
        # CERT_ACTIVE once Hosting has issued the certificate: the deploy proxies the record only then.
        self.certificate_state = self.custom_domain.certs.apply(
            lambda certs: str(certs[0].state or "") if certs else ""
        )
        self.default_host = self.site.default_url.apply(lambda url: str(url).removeprefix("https://"))
        # Firebase Hosting serves a subdomain through a CNAME to the site's web.app host.
        self.cname_target = self.default_host
        self.required_dns_updates = self.custom_domain.required_dns_updates.apply(
            lambda updates: [
                {"domain": record.domain_name, "type": record.type, "rdata": record.rdata}
                for update in updates or []
                for desired in update.desireds or []
                for record in desired.records or []
            ]
        )
        self.register_outputs(
            {
                "default_host": self.default_host,
                "cname_target": self.cname_target,
                "required_dns_updates": self.required_dns_updates,
                "certificate_state": self.certificate_state,
            }
        )
