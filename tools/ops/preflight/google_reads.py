"""Read-only Google Cloud calls the preflight makes, through google-api-python-client's bundled discovery
documents; every refusal becomes CannotCheck naming the role that would allow the read.

Invariant: nothing here writes; each method is a GET (or getEffectivePolicy) of a documented REST method.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SCOPE = "https://www.googleapis.com/auth/cloud-platform.read-only"


class CannotCheck(Exception):
    """The read was refused or failed; the message says what to grant or enable."""


@dataclass(frozen=True)
class Reader:
    """How to ask whether a planned resource already exists; `request` builds the discovery request
    from the service, the plan inputs and the project id."""

    api: str
    version: str
    permission: str
    request: Callable[[Any, dict[str, Any], str], Any]


# Plan type -> its read. Sources: the REST references of each method, e.g.
# https://cloud.google.com/pubsub/docs/reference/rest/v1/projects.topics/get,
# https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets/get,
# https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/get,
# https://firebase.google.com/docs/reference/hosting/rest/v1beta1/projects.sites/get ("projects/-/sites/
# SITE_ID": site ids are global). Permissions: https://cloud.google.com/iam/docs/roles-permissions.
READERS: dict[str, Reader] = {
    "gcp:pubsub/topic:Topic": Reader(
        "pubsub",
        "v1",
        "pubsub.topics.get (roles/pubsub.viewer)",
        lambda s, i, p: s.projects().topics().get(topic=f"projects/{p}/topics/{i['name']}"),
    ),
    "gcp:pubsub/subscription:Subscription": Reader(
        "pubsub",
        "v1",
        "pubsub.subscriptions.get (roles/pubsub.viewer)",
        lambda s, i, p: (
            s.projects().subscriptions().get(subscription=f"projects/{p}/subscriptions/{i['name']}")
        ),
    ),
    "gcp:secretmanager/secret:Secret": Reader(
        "secretmanager",
        "v1",
        "secretmanager.secrets.get (roles/secretmanager.viewer)",
        lambda s, i, p: s.projects().secrets().get(name=f"projects/{p}/secrets/{i['secretId']}"),
    ),
    "gcp:serviceaccount/account:Account": Reader(
        "iam",
        "v1",
        "iam.serviceAccounts.get (roles/iam.serviceAccountViewer)",
        lambda s, i, p: (
            s.projects()
            .serviceAccounts()
            .get(name=f"projects/{p}/serviceAccounts/{i['accountId']}@{p}.iam.gserviceaccount.com")
        ),
    ),
    "gcp:firebase/hostingSite:HostingSite": Reader(
        "firebasehosting",
        "v1beta1",
        "firebasehosting.sites.get (roles/firebasehosting.viewer)",
        lambda s, i, p: s.projects().sites().get(name=f"projects/-/sites/{i['siteId']}"),
    ),
}
ORG_POLICY_PERMISSION = "orgpolicy.policy.get (roles/orgpolicy.policyViewer)"


class GoogleReads:
    """`http` (httplib2-compatible) replaces Application Default Credentials, for tests."""

    def __init__(self, http: Any = None) -> None:
        self.http = http
        self._services: dict[tuple[str, str], Any] = {}

    def service(self, api: str, version: str) -> Any:
        from googleapiclient.discovery import build

        if (api, version) not in self._services:
            if self.http is not None:
                built = build(api, version, http=self.http, static_discovery=True)
            else:
                import google.auth

                try:
                    credentials, _ = google.auth.default(scopes=[SCOPE])
                except Exception as exc:
                    raise CannotCheck(
                        f"no Google credentials ({exc}): run `gcloud auth application-default login`"
                    ) from exc
                built = build(api, version, credentials=credentials, static_discovery=True)
            self._services[(api, version)] = built
        return self._services[(api, version)]

    def read(self, request: Any, what: str, permission: str) -> dict[str, Any] | None:
        """The response body; None on 404. CannotCheck on 403 or any other failure."""
        from googleapiclient.errors import HttpError

        try:
            return request.execute()
        except HttpError as error:
            status = int(error.resp.status)
            if status == 404:
                return None
            if status == 403:
                raise CannotCheck(
                    f"cannot check {what}: grant the deployer {permission} and enable the API "
                    f"({error.reason})"
                ) from error
            raise CannotCheck(f"cannot check {what}: HTTP {status} ({error.reason})") from error

    def effective_policy(self, parent: str, constraint: str) -> dict[str, Any]:
        """orgpolicy v2 {parent}/policies/{constraint}:getEffectivePolicy (parent: projects/P, folders/F or
        organizations/O): the policy in force after inheritance; {} when none applies."""
        service = self.service("orgpolicy", "v2")
        kind = parent.split("/", 1)[0]
        request = (
            getattr(service, kind)().policies().getEffectivePolicy(name=f"{parent}/policies/{constraint}")
        )
        return self.read(request, f"{constraint} on {parent}", ORG_POLICY_PERMISSION) or {}

    def exists(self, reader: Reader, inputs: dict[str, Any], project: str, what: str) -> bool:
        request = reader.request(self.service(reader.api, reader.version), inputs, project)
        return self.read(request, what, reader.permission) is not None
