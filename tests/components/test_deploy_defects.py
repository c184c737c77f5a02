"""One test per deploy defect the offline plan used to miss; each fails on the program before the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.components.options_monitor import OptionsMonitor, evaluate
from tools.offline.plan.mocks import PlanMocks

ROOT = Path(__file__).resolve().parents[2]
RELEASE = ("gcp:firebaserules/release:Release", "project-firestore-rules-release")
DATABASE = ("gcp:firestore/database:Database", "project-firestore")
FIREBASE = ("gcp:firebase/project:Project", "project-firebase")
AUTH = ("gcp:identityplatform/config:Config", "project-auth")
API_RECORD = ("cloudflare:index/dnsRecord:DnsRecord", "edge-api")


@pytest.fixture(scope="module")
def prod_foundation() -> tuple[PlanMocks, OptionsMonitor]:
    return evaluate("prod", ROOT, "foundation")


@pytest.fixture(scope="module")
def prod_complete() -> tuple[PlanMocks, OptionsMonitor]:
    return evaluate("prod", ROOT, "complete")


@pytest.fixture(scope="module")
def staging_complete() -> tuple[PlanMocks, OptionsMonitor]:
    return evaluate("staging", ROOT, "complete")


# (1) Hosting rewrites match with glob; `path` is a destination.
def test_1_hosting_rewrites_match_public_paths_with_glob(
    staging_complete: tuple[PlanMocks, OptionsMonitor],
) -> None:
    mocks, _ = staging_complete
    (version,) = mocks.of_type("gcp:firebase/hostingVersion:HostingVersion")
    for rule in version.inputs["config"]["rewrites"]:
        matchers = [key for key in ("glob", "regex") if key in rule]
        destinations = [key for key in ("path", "function", "run") if key in rule]
        assert matchers == ["glob"] and destinations == ["run"], rule


# (2) The cloud.firestore release is replaced on every rules change: delete first, stated explicitly.
def test_2_named_singletons_are_deleted_before_replacement(
    prod_complete: tuple[PlanMocks, OptionsMonitor],
) -> None:
    _, monitor = prod_complete
    for key in (
        RELEASE,
        DATABASE,
        ("gcp:firebase/hostingSite:HostingSite", "api-site"),
        ("gcp:firebase/hostingCustomDomain:HostingCustomDomain", "api-domain"),
        ("cloudflare:index/ruleset:Ruleset", "edge-rate-limit"),
    ):
        assert monitor.get(*key).delete_before_replace, key
    assert all(s.delete_before_replace for s in monitor.of_type("gcp:secretmanager/secret:Secret"))


# (3) Prod adopts its Firebase project: what exists there is imported, Identity Platform left alone.
def test_3_adopted_project_imports_what_already_exists(
    prod_foundation: tuple[PlanMocks, OptionsMonitor],
) -> None:
    _, monitor = prod_foundation
    assert monitor.get(*FIREBASE).import_id == "projects/launch-ready-prod"
    assert monitor.get(*DATABASE).import_id == "projects/launch-ready-prod/databases/(default)"
    assert monitor.get(*RELEASE).import_id == "projects/launch-ready-prod/releases/cloud.firestore"
    # The import must match the live release: its ruleset is taken over in the next phase.
    assert monitor.get(*RELEASE).ignore_changes == ["rulesetName"]
    assert AUTH not in monitor.registered  # no silent, irreversible Identity Platform upgrade


def test_3_identity_platform_is_an_explicit_opt_in_and_imported_when_adopted() -> None:
    _, monitor = evaluate("prod", ROOT, "complete", {"launchready:identityPlatform": True})
    assert monitor.get(*AUTH).import_id == "projects/launch-ready-prod/config"
    assert monitor.get(*RELEASE).ignore_changes == []  # after adoption the rules are ours again


# (4) A project created in the same run cannot be its own quota project yet.
def test_4_project_and_apis_use_a_provider_without_user_project_override(
    staging_complete: tuple[PlanMocks, OptionsMonitor],
) -> None:
    mocks, monitor = staging_complete
    (provider,) = [r for r in mocks.of_type("pulumi:providers:gcp") if r.name == "project-bootstrap"]
    assert provider.inputs["userProjectOverride"] in (False, "false")
    bootstrap = monitor.get("pulumi:providers:gcp", "project-bootstrap").urn
    assert monitor.get("gcp:organizations/project:Project", "project-project").provider.startswith(bootstrap)
    assert all(s.provider.startswith(bootstrap) for s in monitor.of_type("gcp:projects/service:Service"))
    # Everything else runs on the stack's default provider, which bills the quota project.
    assert monitor.get(*DATABASE).provider == ""


# (5) Plan-dependent features follow launchready:cloudflarePlan (the stacks say free).
def test_5_free_plan_rate_limit_rule_has_no_custom_response(
    prod_complete: tuple[PlanMocks, OptionsMonitor],
) -> None:
    mocks, _ = prod_complete
    (ruleset,) = mocks.of_type("cloudflare:index/ruleset:Ruleset")
    assert all("actionParameters" not in rule for rule in ruleset.inputs["rules"])


# (6) First deploy in phases.
def test_6_foundation_phase_defers_what_cannot_work_yet(
    prod_foundation: tuple[PlanMocks, OptionsMonitor],
) -> None:
    mocks, _ = prod_foundation
    types = {r.type for r in mocks.resources}
    assert "gcp:cloudfunctionsv2/function:Function" not in types  # no secret version exists yet
    assert "gcp:monitoring/alertPolicy:AlertPolicy" not in types  # metrics first, policies later
    assert "gcp:logging/metric:Metric" in types
    assert mocks.named(*API_RECORD).inputs["proxied"] is False  # no Hosting certificate yet: 526
    assert "gcp:projects/serviceIdentity:ServiceIdentity" in types  # Eventarc agent gets time to propagate
    assert mocks.stack_outputs["deployPhase"] == "foundation"


def test_uptime_alerts_only_once_the_certificate_gate_has_passed() -> None:
    # Issue: uptime alert policies went live in the functions phase and paged ops during every first deploy.
    functions, _ = evaluate("staging", ROOT, "functions")
    complete, _ = evaluate("staging", ROOT, "complete")

    def uptime_alerts(mocks: PlanMocks) -> list[str]:
        policies = mocks.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
        return [p.name for p in policies if "uptime" in p.name]

    assert functions.of_type("gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig")
    assert uptime_alerts(functions) == []
    assert uptime_alerts(complete)


def test_6_complete_phase_keeps_the_api_dns_only_and_orders_alerts_after_their_metrics(
    prod_complete: tuple[PlanMocks, OptionsMonitor],
) -> None:
    mocks, monitor = prod_complete
    # Firebase Hosting must see its own records: the API record stays DNS-only in every phase.
    assert mocks.named(*API_RECORD).inputs["proxied"] is False
    metric_urns = {m.urn for m in monitor.of_type("gcp:logging/metric:Metric")}
    on_metrics = [
        p
        for p in monitor.of_type("gcp:monitoring/alertPolicy:AlertPolicy")
        if set(p.dependencies) & metric_urns
    ]
    assert len(on_metrics) >= 3
    agent = monitor.get("gcp:projects/serviceIdentity:ServiceIdentity", "project-eventarc-agent").urn
    functions = monitor.of_type("gcp:cloudfunctionsv2/function:Function")
    assert functions and all(agent in f.dependencies for f in functions)
