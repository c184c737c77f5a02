"""Both stacks pass the pack; the pack's metadata, config files and entry point are what the CLI needs."""

from __future__ import annotations

import json
import runpy
from typing import Any

import pulumi_policy
import pytest
from launchready_policies import PACK_NAME, POLICIES
from launchready_policies.environment import IDENTIFIER_KINDS

from tests.policy.conftest import REPO, STACKS, pack_config, run, runner


@pytest.mark.parametrize("stack", STACKS)
def test_stack_has_no_mandatory_violation(plans: dict[str, Any], stack: str) -> None:
    findings = run(plans[stack], stack)
    failed = runner.mandatory_violations(findings)
    assert failed == [], "\n" + runner.render(failed)
    # Nothing silently skipped on the full plan either: every policy ran on known values.
    assert [f for f in findings if f.kind == "unknown"] == []


def test_every_policy_is_mandatory_and_fully_described() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names))
    for policy in POLICIES:
        assert policy.enforcement_level == pulumi_policy.EnforcementLevel.MANDATORY, policy.name
        assert policy.severity is not None, policy.name
        assert policy.description and policy.remediation_steps, policy.name
        assert policy.tags, policy.name
        if policy.framework is not None:
            assert policy.framework.name and policy.framework.reference, policy.name


def test_framework_ids_are_real_checkov_checks() -> None:
    """Every Checkov id named by a policy exists in the pinned Checkov's check index."""
    index = (REPO / "tools/offline/policy/checkov_requirements.lock").read_text()
    assert "checkov==3.3.30" in index
    ids = {t for p in POLICIES for t in [*(p.tags or []), p.framework.reference if p.framework else ""]}
    expected = {i for i in ids if i and i.startswith("CKV_")}
    assert expected <= {
        "CKV_GCP_28",  # Cloud Storage bucket not anonymously or publicly accessible
        "CKV_GCP_29",  # uniform bucket-level access
        "CKV_GCP_49",  # roles that impersonate or manage service accounts at project level
        "CKV_GCP_78",  # bucket versioning
        "CKV_GCP_97",  # Pub/Sub topics not public
        "CKV_GCP_102",  # Cloud Run services not public
        "CKV_GCP_107",  # Cloud Functions not public
        "CKV_GCP_114",  # public access prevention enforced
        "CKV_GCP_117",  # basic roles at project level
        "CKV_GCP_124",  # Cloud Function ingress
    }


@pytest.mark.parametrize("stack", STACKS)
def test_pack_config_validates_against_every_schema(stack: str) -> None:
    configs = pack_config(stack)
    assert set(configs) == {p.name for p in POLICIES}
    assert configs["log-retention-minimum"]["properties"]["minimumDays"] >= 7


def test_a_config_breaking_a_schema_is_refused(tmp_path: Any) -> None:
    bad = tmp_path / "config.json"
    bad.write_text(json.dumps({"log-retention-minimum": {"minimumDays": 3}}))
    with pytest.raises(
        runner.RunnerError, match="log-retention-minimum minimumDays: 3 is less than the minimum of 7"
    ):
        runner.policy_configs(bad, POLICIES)
    bad.write_text(json.dumps({"no-such-policy": {}}))
    with pytest.raises(runner.RunnerError, match="no policy named no-such-policy"):
        runner.policy_configs(bad, POLICIES)


@pytest.mark.parametrize(("stack", "other"), [("staging", "prod"), ("prod", "staging")])
def test_separation_config_names_the_other_stacks_identifiers(
    plans: dict[str, Any], stack: str, other: str
) -> None:
    """The generated pack config's otherStacks must match what the other stack's plan really uses."""
    from launchready_policies.environment import stack_identifiers
    from pulumi_policy import EnforcementLevel, StackValidationPolicy

    seen: dict[str, Any] = {}
    capture = StackValidationPolicy(
        name="capture",
        description="capture the identifiers",
        validate=lambda args, report: seen.update(stack_identifiers(args)),
        enforcement_level=EnforcementLevel.ADVISORY,
    )
    config = {"capture": {"enforcementLevel": "advisory", "properties": {}}}
    runner.run_policies(plans[other], other, {}, config, [capture])
    configured = pack_config(stack)["environment-separation"]["properties"]["otherStacks"][other]
    assert {kind: sorted(seen[kind]) for kind in IDENTIFIER_KINDS} == {
        kind: sorted(configured[kind]) for kind in IDENTIFIER_KINDS
    }
    assert all(seen[kind] for kind in IDENTIFIER_KINDS)


def test_main_only_builds_the_pack(monkeypatch: pytest.MonkeyPatch) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: built.update(kwargs))
    runpy.run_path(str(REPO / "policy" / "__main__.py"))
    assert built["name"] == PACK_NAME
    assert [p.name for p in built["policies"]] == [p.name for p in POLICIES]
    manifest = (REPO / "policy" / "PulumiPolicy.yaml").read_text()
    assert "name: python" in manifest
