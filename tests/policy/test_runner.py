"""The offline runner behaves as `pulumi preview --policy-pack` does: it drives pulumi-policy's own
analyzer, so unknowns, secrets, async validators, stack resources and config reach policies as in the
engine (pulumi_policy/policy.py `_PolicyAnalyzerServicer.Analyze` / `AnalyzeStack`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from tests.policy.conftest import REPO, resource, run, runner, violations

BUCKET = "gcp:storage/bucket:Bucket"
GOOD_BUCKET = {
    "name": "b",
    "publicAccessPrevention": "enforced",
    "uniformBucketLevelAccess": True,
    "versioning": {"enabled": True},
}


def _config(*policies: Any, **properties: Any) -> dict[str, dict[str, Any]]:
    return {p.name: {"enforcementLevel": "mandatory", "properties": dict(properties)} for p in policies}


def test_an_unknown_value_downgrades_a_mandatory_policy_to_an_advisory_note() -> None:
    plan = [resource(BUCKET, "b", {**GOOD_BUCKET, "publicAccessPrevention": "[unknown until apply]"})]
    findings = run(plan, "staging", only=["storage-bucket-hardening"])
    (note,) = findings
    assert note.kind == "unknown" and note.level == "advisory"
    assert "string value at .publicAccessPrevention can't be known during preview" in note.message
    assert runner.mandatory_violations(findings) == []


def test_an_unknown_value_the_policy_never_reads_changes_nothing() -> None:
    plan = [resource(BUCKET, "b", {**GOOD_BUCKET, "selfLink": "[unknown until apply]"})]
    assert run(plan, "staging", only=["storage-bucket-hardening"]) == []


def test_properties_arrive_as_read_only_proxies_not_dicts() -> None:
    """A hand-rolled test passing a dict would accept `isinstance(x, dict)`; the engine never does."""
    seen: dict[str, Any] = {}

    def capture(args: Any, report: Any) -> None:
        seen.update(props=args.props, nested=args.props["versioning"], name=args.name, urn=args.urn)

    policy = ResourceValidationPolicy(name="capture", description="capture", validate=capture)
    plan = [resource(BUCKET, "b", GOOD_BUCKET)]
    runner.run_policies(plan, "staging", {}, _config(policy), [policy])
    assert isinstance(seen["props"], Mapping) and not isinstance(seen["props"], dict)
    assert isinstance(seen["nested"], Mapping) and not isinstance(seen["nested"], dict)
    assert seen["urn"] == plan[0]["urn"] and seen["name"] == "b"


def test_secrets_are_unwrapped_and_numbers_arrive_as_the_wire_sends_them() -> None:
    seen: dict[str, Any] = {}
    policy = ResourceValidationPolicy(
        name="capture", description="capture", validate=lambda args, report: seen.update(args.props)
    )
    plan = [resource("gcp:x/y:Z", "z", {"token": "[secret]", "count": 5})]
    runner.run_policies(plan, "staging", {}, _config(policy), [policy])
    assert seen["token"] == "[secret]"  # the redacted value, unwrapped from its secret envelope
    assert seen["count"] == 5.0 and isinstance(seen["count"], float)  # protobuf Struct numbers are doubles


def test_async_validators_are_awaited() -> None:
    async def validate(args: Any, report: Any) -> None:
        report("async violation")

    policy = ResourceValidationPolicy(name="async", description="async", validate=validate)
    findings = runner.run_policies(
        [resource(BUCKET, "b", GOOD_BUCKET)], "staging", {}, _config(policy), [policy]
    )
    assert [f.message for f in findings] == ["async violation"]


def test_stack_policies_get_parents_dependencies_and_options() -> None:
    parent = resource("launchready:x:Component", "parent", {})
    database = resource("gcp:firestore/database:Database", "db", {}, parent=parent["urn"], protect=True)
    alert = resource("gcp:monitoring/alertPolicy:AlertPolicy", "a", {}, depends_on=[database["urn"]])
    seen: dict[str, Any] = {}

    def capture(args: Any, report: Any) -> None:
        by_name = {r.name: r for r in args.resources}
        seen.update(
            parent=by_name["db"].parent.urn,
            protect=by_name["db"].opts.protect,
            dependencies=[d.urn for d in by_name["a"].dependencies],
        )

    policy = StackValidationPolicy(name="capture", description="capture", validate=capture)
    runner.run_policies([parent, database, alert], "staging", {}, _config(policy), [policy])
    assert seen == {"parent": parent["urn"], "protect": True, "dependencies": [database["urn"]]}


def test_the_stack_config_reaches_policies_as_the_engine_hands_it() -> None:
    plan = [
        resource(
            "gcp:firestore/database:Database", "db", {"deleteProtectionState": "DELETE_PROTECTION_ENABLED"}
        )
    ]
    # The same plan judged as a preview environment: delete protection must be off there.
    findings = runner.run_policies(
        plan,
        "review-42",
        {"launchready:environment": "preview"},
        runner.policy_configs(None, runner.POLICIES),
        [p for p in runner.POLICIES if p.name == "firestore-durability"],
    )
    assert any("must stay destroyable" in f.message for f in violations(findings, "firestore-durability"))


def test_config_defaults_are_applied_and_validated_like_the_cli() -> None:
    policy = ResourceValidationPolicy(
        name="configured",
        description="configured",
        validate=lambda args, report: report(f"limit={args.get_config()['limit']}", None),
        config_schema=PolicyConfigSchema(properties={"limit": {"type": "integer", "default": 3}}),
    )
    configs = runner.policy_configs(None, [policy])
    assert configs["configured"]["properties"] == {"limit": 3}
    findings = runner.run_policies([resource(BUCKET, "b", {})], "staging", {}, configs, [policy])
    # Configure sends the properties as a protobuf Struct, so an integer arrives as a double.
    assert [f.message for f in findings] == ["limit=3.0"]


def test_an_enforcement_level_from_the_pack_config_wins(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"storage-bucket-hardening": {"enforcementLevel": "advisory"}}))
    configs = runner.policy_configs(config, runner.POLICIES)
    plan = [resource(BUCKET, "b", {**GOOD_BUCKET, "publicAccessPrevention": "inherited"})]
    findings = run(plan, "staging", only=["storage-bucket-hardening"], config=configs)
    assert [f.level for f in findings] == ["advisory"]
    assert runner.mandatory_violations(findings) == []


def test_an_unknown_raised_inside_a_policy_is_the_sdks_own_error() -> None:
    def validate(args: Any, report: Any) -> None:
        try:
            args.props["name"]
        except UnknownValueError as error:
            report(f"caught {type(error).__module__}.{type(error).__name__}")

    policy = ResourceValidationPolicy(name="catch", description="catch", validate=validate)
    plan = [resource(BUCKET, "b", {"name": "[unknown until apply]"})]
    findings = runner.run_policies(plan, "staging", {}, _config(policy), [policy])
    assert [f.message for f in findings] == ["caught pulumi_policy.proxy.UnknownValueError"]


def test_preview_fidelity_reports_a_mandatory_policy_that_a_first_preview_cannot_run() -> None:
    known = [resource(BUCKET, "b", GOOD_BUCKET)]
    first = [resource(BUCKET, "b", {**GOOD_BUCKET, "publicAccessPrevention": "[unknown until apply]"})]
    configs = runner.policy_configs(None, runner.POLICIES)
    only = ["storage-bucket-hardening"]
    downgrades = runner.silent_downgrades(
        run(known, "staging", only=only), run(first, "staging", only=only), configs
    )
    assert [(d.policy, d.resource) for d in downgrades] == [("storage-bucket-hardening", known[0]["urn"])]
    assert "string value at .publicAccessPrevention can't be known during preview" in downgrades[0].message


def test_a_public_grant_on_a_service_named_at_deploy_is_judged_through_its_function() -> None:
    function = resource(
        "gcp:cloudfunctionsv2/function:Function",
        "fn",
        {"name": "crm-worker", "serviceConfig": {"ingressSettings": "ALLOW_INTERNAL_ONLY"}},
    )
    grant = resource(
        "gcp:cloudrunv2/serviceIamMember:ServiceIamMember",
        "grant",
        {"role": "roles/run.invoker", "member": "allUsers", "name": "[unknown until apply]"},
        depends_on=[function["urn"]],
    )
    findings = run([function, grant], "staging", only=["no-public-iam", "workers-not-public"])
    assert sorted((f.policy, f.kind) for f in findings) == [
        ("no-public-iam", "violation"),
        ("workers-not-public", "violation"),
    ]


def test_a_member_computed_at_deploy_is_resolved_through_the_grants_dependency() -> None:
    """At a first preview a new account's `member` is unknown; the stack policy still judges the grant
    through the account it depends on, instead of downgrading to an advisory note."""
    account = resource(
        "gcp:serviceaccount/account:Account", "fn-identity-crm-worker", {"accountId": "fn-crm-worker"}
    )
    grant = resource(
        "gcp:secretmanager/secretIamMember:SecretIamMember",
        "accessor",
        {
            "secretId": "STRIPE_API_KEY",
            "role": "roles/secretmanager.secretAccessor",
            "member": "[unknown until apply]",
        },
        depends_on=[account["urn"]],
    )
    findings = run([account, grant], "staging", only=["secret-accessor-least-privilege"])
    assert [(f.kind, f.message) for f in findings] == [
        ("violation", "crm_worker may read secret STRIPE_API_KEY, which its catalog entry does not declare")
    ]


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "policy.json"
    assert runner.run("staging", plan=tmp_path / "missing.json", out=out) == 2
    assert "run `make plan STACK=<stack>` first" in capsys.readouterr().err
    broken = tmp_path / "plan.json"
    broken.write_text(json.dumps([{"type": "gcp:x/y:Z", "name": "z"}]))
    assert runner.run("staging", plan=broken, out=out) == 2
    assert "missing urn, parent, inputs, options" in capsys.readouterr().err
    assert not out.exists()


def test_a_clean_run_exits_0_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "policy.json"
    plan = REPO / "build" / "plan-staging.json"
    assert runner.run("staging", plan=plan, out=out) == 0
    report = json.loads(out.read_text())
    assert report["stack"] == "staging" and len(report["policies"]) == len(runner.POLICIES)
    assert {f["kind"] for f in report["findings"]} <= {"not-applicable"}


def test_enforcement_levels_match_the_proto() -> None:
    assert runner._TO_PROTO_LEVEL["mandatory"] != runner._TO_PROTO_LEVEL["advisory"]
    assert EnforcementLevel.MANDATORY.value == "mandatory"


def test_a_computed_setting_counts_as_set_and_a_computed_member_is_never_public() -> None:
    """Presence checks and public-member checks hold at a first preview: an unknown value was computed
    from another resource, so the program set it, and it is never the literal allUsers."""
    subscription = resource(
        "gcp:pubsub/subscription:Subscription",
        "push",
        {
            "pushConfig": {"oidcToken": {"serviceAccountEmail": "[unknown until apply]"}},
            "deadLetterPolicy": {"deadLetterTopic": "[unknown until apply]", "maxDeliveryAttempts": 5},
            "retryPolicy": {"minimumBackoff": "10s", "maximumBackoff": "600s"},
        },
    )
    grant = resource(
        "gcp:projects/iAMMember:IAMMember", "g", {"role": "roles/viewer", "member": "[unknown until apply]"}
    )
    findings = run([subscription, grant], "staging", only=["push-subscription-delivery", "no-public-iam"])
    assert findings == []
    basic = run([grant], "staging", only=["no-basic-roles-on-service-accounts"])
    assert [f.kind for f in basic] == ["violation"]  # a basic role to a deploy-time account still fails


def test_a_pack_config_that_does_not_exist_is_refused_and_nothing_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tools.exit_codes import ExitCode
    from tools.offline.policy.runner import run as run_pack

    out = tmp_path / "report.json"
    code = run_pack("staging", config=tmp_path / "missing.json", out=out)

    assert code == ExitCode.USAGE and not out.exists()
    assert "policy pack config" in capsys.readouterr().err
