"""API hosting: catalog paths routed to their Cloud Run services, released, on the API host."""

from __future__ import annotations

import pytest

from components.catalog import Catalog
from components.hosting import ApiHosting, HostingArgs
from tools.offline.plan.mocks import PlanMocks, run_under_mocks


@pytest.fixture(scope="module")
def hosting(catalog: Catalog) -> tuple[PlanMocks, dict[str, str]]:
    mocks = PlanMocks()
    mocks.install()
    outputs: dict[str, str] = {}

    def program() -> None:
        import pulumi_gcp as gcp

        firebase = gcp.firebase.Project("firebase", project="acme-staging")
        component = ApiHosting(
            "api",
            HostingArgs(
                project_id="acme-staging",
                site_id="acme-staging-api",
                region="europe-west1",
                api_host="api.staging.acme.dev",
                catalog=catalog,
                service_names={spec.name: spec.resource_name for spec in catalog.functions},
                firebase_project=firebase,
            ),
        )
        component.cname_target.apply(lambda target: outputs.update(cname=target))

    run_under_mocks(program)
    return mocks, outputs


def test_each_public_path_rewrites_to_its_service(
    hosting: tuple[PlanMocks, dict[str, str]], catalog: Catalog
) -> None:
    mocks, _ = hosting
    version = mocks.named("gcp:firebase/hostingVersion:HostingVersion", "api-version")
    # Each rule matches its path with `glob`; `path` would be a destination and match nothing.
    assert all("path" not in r and "regex" not in r for r in version.inputs["config"]["rewrites"])
    rewrites = {r["glob"]: r["run"] for r in version.inputs["config"]["rewrites"]}
    assert rewrites == {
        spec.trigger.path: {"serviceId": spec.resource_name, "region": "europe-west1"}
        for spec in catalog.public_http
    }
    # Workers and scheduled functions are never reachable through the API host.
    private = {spec.resource_name for spec in catalog.functions} - {
        s.resource_name for s in catalog.public_http
    }
    assert not private & {run["serviceId"] for run in rewrites.values()}


def test_release_and_custom_domain(hosting: tuple[PlanMocks, dict[str, str]]) -> None:
    mocks, outputs = hosting
    release = mocks.named("gcp:firebase/hostingRelease:HostingRelease", "api-release")
    assert release.inputs["versionName"].startswith("sites/acme-staging-api/versions/")
    domain = mocks.named("gcp:firebase/hostingCustomDomain:HostingCustomDomain", "api-domain")
    assert domain.inputs["customDomain"] == "api.staging.acme.dev"
    assert domain.inputs["siteId"] == "acme-staging-api"
    assert outputs["cname"] == "acme-staging-api.web.app"
    assert {r.parent for r in mocks.resources if r.type.startswith("gcp:firebase/hosting")} == {"api"}
