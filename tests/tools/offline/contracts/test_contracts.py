"""The plan checks every registered resource against the provider contracts, one class at a time.

A copy of the program with violating resources appended at the end of `__main__.py` is planned once
(with Pulumi.prod.yaml: adopt mode, Free Cloudflare plan) and each test expects its resource named in
a violation line of `make plan`'s output, which exits 2.
"""

from __future__ import annotations

import contextlib
import io
import shutil
from pathlib import Path

import pytest

from tools.offline.contracts import data_bearing_types, load_contracts
from tools.offline.plan.evaluate import run
from tools.offline.plan.mocks import PlanMocks

ROOT = Path(__file__).resolve().parents[4]

APPENDED = """

# ---- appended: one violating resource per provider-contract class ----
import pulumi as _pulumi
import pulumi_cloudflare as _cf
import pulumi_gcp as _gcp

_P = "launch-ready-prod"
_ZONE = "0123456789abcdef0123456789abcdef"
_gcp.cloudscheduler.Job(
    "bad-exactly-one-of", project=_P, region="europe-west1", schedule="0 * * * *",
    http_target=_gcp.cloudscheduler.JobHttpTargetArgs(uri="https://example.com/run"),
    pubsub_target=_gcp.cloudscheduler.JobPubsubTargetArgs(topic_name="projects/x/topics/y", data="e30="),
)
_gcp.pubsub.Subscription(
    "bad-conflicts-with", project=_P, topic="projects/x/topics/y",
    push_config=_gcp.pubsub.SubscriptionPushConfigArgs(push_endpoint="https://example.com/push"),
    bigquery_config=_gcp.pubsub.SubscriptionBigqueryConfigArgs(table="p.d.t"),
)
_gcp.secretmanager.Secret(
    "bad-required-with", project=_P, secret_id="ROTATED",
    replication=_gcp.secretmanager.SecretReplicationArgs(auto=_gcp.secretmanager.SecretReplicationAutoArgs()),
    rotation=_gcp.secretmanager.SecretRotationArgs(
        rotation_period="86400s", next_rotation_time="2030-01-01T00:00:00Z"
    ),
)
_gcp.cloudfunctionsv2.Function(
    "bad-enum", project=_P, location="europe-west1", name="bad-enum",
    service_config=_gcp.cloudfunctionsv2.FunctionServiceConfigArgs(ingress_settings="ALLOW_EVERYTHING"),
)
_gcp.serviceaccount.Account("bad-format", project=_P, account_id="Bad_Account")
_gcp.pubsub.Subscription(
    "bad-range", project=_P, topic="projects/x/topics/y",
    dead_letter_policy=_gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
        dead_letter_topic="projects/x/topics/dlq", max_delivery_attempts=3
    ),
)
_gcp.firebaserules.Release(
    "bad-singleton", project=_P, name="cloud.firestore", ruleset_name="projects/x/rulesets/y",
    opts=_pulumi.ResourceOptions(import_="projects/launch-ready-prod/releases/cloud.firestore"),
)
_gcp.identityplatform.Config(
    "bad-adopt", project=_P, opts=_pulumi.ResourceOptions(delete_before_replace=True)
)
_cf.Ruleset(
    "bad-plan-tier", zone_id=_ZONE, kind="zone", phase="http_ratelimit", name="limits",
    rules=[_cf.RulesetRuleArgs(
        action="block", expression="true", ref="limit",
        action_parameters=_cf.RulesetRuleActionParametersArgs(
            response=_cf.RulesetRuleActionParametersResponseArgs(
                status_code=429, content="{}", content_type="application/json"
            )
        ),
        ratelimit=_cf.RulesetRuleRatelimitArgs(
            characteristics=["cf.colo.id", "ip.src"], period=10, requests_per_period=10, mitigation_timeout=10
        ),
    )],
)
_cf.DnsRecord(
    "bad-certificate", zone_id=_ZONE, name="a.b.example.com", type="CNAME",
    content="x.web.app", proxied=True, ttl=1,
)
_cf.DnsRecord(
    "bad-create-check", zone_id=_ZONE, name="b.example.com", type="CNAME",
    content="x.web.app", proxied=True, ttl=300,
)
_source = _gcp.pubsub.Topic("computed-source", project=_P, name="computed-source")
_gcp.cloudfunctionsv2.Function(
    "bad-enum-computed", project=_P, location="europe-west1", name="bad-enum-computed",
    service_config=_gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
        ingress_settings=_source.id.apply(lambda _: "ALLOW_EVERYTHING")
    ),
)
_gcp.pubsub.Topic("good-topic", project=_P, name="good-topic", message_retention_duration="86400s")
_gcp.pubsub.TopicIAMMember(
    "bad-member-prefix", project=_P, topic="good-topic", role="roles/pubsub.publisher",
    member="robot@launch-ready-prod.iam.gserviceaccount.com",
)
_gcp.pubsub.TopicIAMMember(
    "good-member", project=_P, topic="good-topic", role="roles/pubsub.publisher", member="allUsers",
)
"""


@pytest.fixture(scope="module")
def appended_plan(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str]]:
    """(exit status, violation lines) of `python -m tools plan --stack prod` on the copy."""
    root = tmp_path_factory.mktemp("program")
    for name in ("functions_src", "components", "firestore.rules", "firestore.indexes.json"):
        (root / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "Pulumi.prod.yaml", root / "Pulumi.prod.yaml")
    (root / "__main__.py").write_text((ROOT / "__main__.py").read_text() + APPENDED)
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        status = run("prod", root=root, quiet=True)
    return status, stderr.getvalue().splitlines()


def lines_for(plan: tuple[int, list[str]], typ: str, name: str) -> list[str]:
    status, lines = plan
    assert status == 2
    return [line for line in lines if line.startswith(f"{typ} {name}: ")]


def test_exactly_one_of(appended_plan: tuple[int, list[str]]) -> None:
    (line,) = lines_for(appended_plan, "gcp:cloudscheduler/job:Job", "bad-exactly-one-of")
    assert "exactly one of appEngineHttpTarget, httpTarget, pubsubTarget must be set" in line
    assert "got httpTarget, pubsubTarget" in line
    assert "[pulumi preview fails]" in line
    assert "resource_cloud_scheduler_job.go#L" in line


def test_conflicts_with(appended_plan: tuple[int, list[str]]) -> None:
    lines = lines_for(appended_plan, "gcp:pubsub/subscription:Subscription", "bad-conflicts-with")
    assert any(
        line.startswith(f"{p} bad-conflicts-with: pushConfig: conflicts-with: conflicts with bigqueryConfig")
        for p in ["gcp:pubsub/subscription:Subscription"]
        for line in lines
    )
    assert all("resource_pubsub_subscription.go#L" in line for line in lines)


def test_required_with(appended_plan: tuple[int, list[str]]) -> None:
    (line,) = lines_for(appended_plan, "gcp:secretmanager/secret:Secret", "bad-required-with")
    assert ": rotation: required-with: requires topics to be set too" in line
    assert "resource_secret_manager_secret.go#L" in line


def test_enum(appended_plan: tuple[int, list[str]]) -> None:
    (line,) = lines_for(appended_plan, "gcp:cloudfunctionsv2/function:Function", "bad-enum")
    assert "serviceConfig.ingressSettings: enum: must be one of ALLOW_ALL, ALLOW_INTERNAL_ONLY" in line
    assert "got 'ALLOW_EVERYTHING'" in line and "unknown at a real preview" not in line


def test_value_computed_by_the_cloud_is_flagged_unknown_at_preview(
    appended_plan: tuple[int, list[str]],
) -> None:
    (line,) = lines_for(appended_plan, "gcp:cloudfunctionsv2/function:Function", "bad-enum-computed")
    assert "got 'ALLOW_EVERYTHING'" in line
    assert "unknown at a real preview" in line and "the API will still reject it" in line


def test_format_and_range(appended_plan: tuple[int, list[str]]) -> None:
    lines = lines_for(appended_plan, "gcp:serviceaccount/account:Account", "bad-format")
    assert any("accountId: format: RFC 1035 name must match" in line for line in lines)
    (line,) = lines_for(appended_plan, "gcp:pubsub/subscription:Subscription", "bad-range")
    assert "deadLetterPolicy.maxDeliveryAttempts: range: must be in [5, 100]; got 3" in line
    assert "[the API rejects it]" in line and "projects.subscriptions#deadletterpolicy" in line


def test_an_iam_member_without_a_type_prefix_fails_as_the_provider_check_would(
    appended_plan: tuple[int, list[str]],
) -> None:
    typ = "gcp:pubsub/topicIAMMember:TopicIAMMember"
    (line,) = lines_for(appended_plan, typ, "bad-member-prefix")
    assert "member: format: IAM member must match" in line and "resource_iam_member.go" in line
    assert lines_for(appended_plan, typ, "good-member") == []


def test_every_iam_member_type_carries_the_member_rule() -> None:
    contracts = load_contracts()
    iam_types = {t for t in contracts.types if t.lower().endswith("iammember")}
    assert iam_types
    for typ in iam_types:
        assert any(r.kind == "format" and r.spec["path"] == "member" for r in contracts.for_type(typ)), typ


def test_singleton_replacement_without_delete_before_replace(appended_plan: tuple[int, list[str]]) -> None:
    # Declared with an import id, so only the replacement rule applies.
    (line,) = lines_for(appended_plan, "gcp:firebaserules/release:Release", "bad-singleton")
    assert "singleton" in line and "immutable input (name, project, rulesetName)" in line
    assert "deleteBeforeReplace" in line and "resource_firebaserules_release.go" in line


def test_adopt_mode_without_import_id(appended_plan: tuple[int, list[str]]) -> None:
    # Declared with deleteBeforeReplace, so only the adoption rule applies.
    (line,) = lines_for(appended_plan, "gcp:identityplatform/config:Config", "bad-adopt")
    assert "already exists in the adopted project" in line and "importId" in line
    assert "initializeAuth" in line


def test_plan_tier_feature(appended_plan: tuple[int, list[str]]) -> None:
    (line,) = lines_for(appended_plan, "cloudflare:index/ruleset:Ruleset", "bad-plan-tier")
    assert "rules[0].actionParameters.response" in line
    assert "needs a Cloudflare Pro plan or higher; launchready:cloudflarePlan is free" in line


def test_edge_certificate_coverage(appended_plan: tuple[int, list[str]]) -> None:
    (line,) = lines_for(appended_plan, "cloudflare:index/dnsRecord:DnsRecord", "bad-certificate")
    assert "2 levels below the zone apex is not covered by Universal SSL" in line


def test_rule_the_provider_checks_only_at_create(appended_plan: tuple[int, list[str]]) -> None:
    (line,) = lines_for(appended_plan, "cloudflare:index/dnsRecord:DnsRecord", "bad-create-check")
    assert "ttl: when: must be one of [1] when proxied is True" in line
    assert "[pulumi up fails at create]" in line and "dns_record/resource.go#L67" in line


def test_a_resource_that_keeps_the_contracts_is_not_flagged(appended_plan: tuple[int, list[str]]) -> None:
    _, lines = appended_plan
    assert not [line for line in lines if " good-topic: " in line or " computed-source: " in line]
    assert lines[-1].startswith("prod: ") and lines[-1].endswith("provider contract violation(s)")


def test_both_stacks_plan_clean(staging: PlanMocks, prod: PlanMocks) -> None:
    """The program as committed breaks no provider contract in either stack."""
    found = [v.line() for v in [*staging.violations, *prod.violations]]
    assert found == [], "\n".join(found)


def test_contracts_cover_every_type_the_program_registers(staging: PlanMocks, prod: PlanMocks) -> None:
    contracts = load_contracts()
    # Explicit provider instances (pulumi:providers:*) are configuration, not cloud resources.
    registered = {
        r.type
        for r in [*staging.resources, *prod.resources]
        if r.custom and not r.type.startswith("pulumi:providers:")
    }
    assert registered - set(contracts.terraform) == set()
    assert registered - contracts.types == set()
    behaviour = contracts.create_behaviour
    assert registered <= set(behaviour["adopts"]) | set(behaviour["fails_if_exists"])
    assert data_bearing_types() >= {"gcp:firestore/database:Database", "gcp:secretmanager/secret:Secret"}
