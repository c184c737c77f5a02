"""The program's wiring: components connected through outputs, exports, and the bad-config path."""

from __future__ import annotations

import runpy
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime.config import set_all_config

from components.catalog import Catalog
from tools.offline.plan.mocks import PlanMocks, run_under_mocks
from tools.project_files import engine_config, read_stack

ROOT = Path(__file__).resolve().parents[1]
DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"


def test_api_dns_points_at_the_hosting_site(stack_plan: PlanMocks) -> None:
    site = next(iter(stack_plan.of_type("gcp:firebase/hostingSite:HostingSite")))
    domain = next(iter(stack_plan.of_type("gcp:firebase/hostingCustomDomain:HostingCustomDomain")))
    api = next(r for r in stack_plan.of_type(DNS_RECORD) if r.inputs["name"] == domain.inputs["customDomain"])
    assert api.inputs["type"] == "CNAME"
    assert api.inputs["content"] == f"{site.inputs['siteId']}.web.app"


def test_monitoring_watches_every_dead_letter_subscription(stack_plan: PlanMocks, catalog: Catalog) -> None:
    policy = stack_plan.named("gcp:monitoring/alertPolicy:AlertPolicy", "monitoring-alert-dead-letters")
    text = str(policy.inputs)
    for topic in catalog.topics:
        assert f"{topic}-dlq-sub" in text


def test_uptime_checks_cover_every_public_path_on_the_api_host(
    stack_plan: PlanMocks, catalog: Catalog
) -> None:
    host = next(iter(stack_plan.of_type("gcp:firebase/hostingCustomDomain:HostingCustomDomain"))).inputs[
        "customDomain"
    ]
    checks = stack_plan.of_type("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
    checked = {
        (c.inputs["monitoredResource"]["labels"]["host"], c.inputs["httpCheck"]["path"]) for c in checks
    }
    # A prefix route (the ops console, `/ops/**`) is probed at its health path, `/ops/healthz`.
    assert checked == {(host, str(spec.trigger.probe_path)) for spec in catalog.public_http}


def test_edge_rate_limits_every_public_path(stack_plan: PlanMocks, catalog: Catalog) -> None:
    rulesets = stack_plan.of_type("cloudflare:index/ruleset:Ruleset")
    if not stack_plan.of_type("cloudflare:index/zoneSetting:ZoneSetting"):  # another stack owns the zone
        # The zone owner's rule matches on the path alone, so it covers this stack's API host too.
        assert rulesets == []
        return
    text = str(stack_plan.named("cloudflare:index/ruleset:Ruleset", "edge-rate-limit").inputs)
    exact = [spec for spec in catalog.public_http if not spec.trigger.is_prefix]
    assert exact and all(f'"{spec.trigger.path}"' in text for spec in exact)
    # The console is behind its own sign-in; a rate limit on a literal "/ops/**" would match nothing.
    assert "**" not in text


def test_exports_give_the_user_what_they_need(stack_plan: PlanMocks, catalog: Catalog) -> None:
    outputs = stack_plan.stack_outputs
    host = next(iter(stack_plan.of_type("gcp:firebase/hostingCustomDomain:HostingCustomDomain"))).inputs[
        "customDomain"
    ]
    assert outputs["apiBaseUrl"] == f"https://{host}"
    assert outputs["stripeWebhookUrl"] == f"https://{host}/v1/stripe/webhook"
    assert set(outputs["publicEndpoints"]) == {spec.name for spec in catalog.public_http}
    assert set(outputs["functionServiceUrls"]) == {spec.name for spec in catalog.functions}
    assert set(outputs["secretIds"]) == set(catalog.secret_names)
    assert set(outputs["deadLetterSubscriptions"]) == set(catalog.topics)
    objects = outputs["functionsSourceObjects"]
    assert set(objects) == {spec.name for spec in catalog.functions}
    assert all(objects[spec.name].startswith(f"{spec.resource_name}-") for spec in catalog.functions)


def test_stacks_differ_only_where_configured(staging: PlanMocks, prod: PlanMocks) -> None:
    dmarc = {
        name: next(r for r in plan.of_type(DNS_RECORD) if r.inputs["name"].startswith("_dmarc.")).inputs[
            "content"
        ]
        for name, plan in (("staging", staging), ("prod", prod))
    }
    assert "p=quarantine" in dmarc["staging"] and "p=reject" in dmarc["prod"]
    # Prod adopts its project, staging creates one; prod owns the shared zone's settings and rate limit.
    staging_types = {r.type for r in staging.resources}
    prod_types = {r.type for r in prod.resources}
    # Staging opts in to Identity Platform (launchready:identityPlatform); prod keeps its Firebase Auth.
    assert staging_types - prod_types == {
        "gcp:organizations/project:Project",
        "gcp:identityplatform/config:Config",
    }
    assert prod_types - staging_types == {
        "cloudflare:index/zoneSetting:ZoneSetting",
        "cloudflare:index/ruleset:Ruleset",
    }


def test_bad_config_ends_the_program_with_the_readable_message() -> None:
    config, secret_keys = engine_config(read_stack("staging", ROOT))
    del config["launchready:apiHost"]
    mocks = PlanMocks()
    mocks.install(stack="staging")
    set_all_config(config, secret_keys)
    with pytest.raises(pulumi.RunError) as raised:
        run_under_mocks(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"))
    assert str(raised.value).startswith("Pulumi.staging.yaml: invalid configuration:")
    assert "launchready:apiHost is missing" in str(raised.value)
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert mocks.resources == []


def test_project_file_runs_python_from_the_pip_virtualenv() -> None:
    import yaml

    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "launch-ready"
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}
    for stack in ("staging", "prod"):
        keys = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        # Program settings sit under launchready:, provider settings under their own namespace.
        assert {key.split(":")[0] for key in keys} <= {"launchready", "gcp", "cloudflare"}
