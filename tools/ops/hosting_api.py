"""The live state of the API's Firebase Hosting custom domain, read from the Hosting REST API (read-only).

The deploy's certificate gate reads it here on every run, never from a stack output: `pulumi up` does not
re-read the custom domain, so its stored `certs` stay as they were at creation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .preflight.google_reads import GoogleReads

# Firebase Hosting REST v1beta1, CustomDomain.cert.state: "Only the CERT_ACTIVE and CERT_EXPIRING_SOON
# states provide SSL coverage for a domain name." (discovery document firebasehosting.v1beta1, revision
# 20260920, shipped in google-api-python-client; https://firebase.google.com/docs/reference/hosting/rest/
# v1beta1/projects.sites.customDomains#Certificate)
SERVING_CERTIFICATE_STATES = frozenset({"CERT_ACTIVE", "CERT_EXPIRING_SOON"})
# Firebase Hosting's only read permissions are firebasehosting.sites.get/list; roles/firebasehosting.viewer
# holds both (https://cloud.google.com/iam/docs/roles-permissions/firebasehosting).
READ_PERMISSION = "roles/firebasehosting.viewer (firebasehosting.sites.get)"


@dataclass(frozen=True)
class CustomDomainState:
    """`exists` False before phase 1 created the domain; states are the API's enum names ('' when absent);
    `certificate_expires` is the RFC 3339 `cert.expireTime` or ''."""

    exists: bool
    certificate_state: str = ""
    host_state: str = ""
    ownership_state: str = ""
    certificate_expires: str = ""

    @property
    def certificate_serving(self) -> bool:
        return self.certificate_state in SERVING_CERTIFICATE_STATES

    @classmethod
    def from_resource(cls, body: dict[str, Any]) -> CustomDomainState:
        """From a CustomDomain resource as the API returns it (camelCase keys)."""
        cert = body.get("cert") or {}
        return cls(
            exists=True,
            certificate_state=str(cert.get("state") or ""),
            host_state=str(body.get("hostState") or ""),
            ownership_state=str(body.get("ownershipState") or ""),
            certificate_expires=str(cert.get("expireTime") or ""),
        )


def custom_domain_name(project: str, site: str, domain: str) -> str:
    """The resource name customDomains.get takes: projects/{project}/sites/{site}/customDomains/{domain}."""
    return f"projects/{project}/sites/{site}/customDomains/{domain}"


def read_custom_domain(project: str, site: str, domain: str, http: Any = None) -> CustomDomainState:
    """GET v1beta1/projects/{project}/sites/{site}/customDomains/{domain}. `http` (an httplib2-compatible
    object) replaces the deployer's Application Default Credentials, for tests. Raises CannotCheck on 403,
    an API not enabled, or no credentials; a 404 is a domain not created yet (`exists` False)."""
    reads = GoogleReads(http)
    service = reads.service("firebasehosting", "v1beta1")
    request = service.projects().sites().customDomains().get(name=custom_domain_name(project, site, domain))
    body = reads.read(request, f"the certificate of {domain} in {project}", READ_PERMISSION)
    return CustomDomainState(exists=False) if body is None else CustomDomainState.from_resource(body)
