"""Each mandatory policy fires when its guarded setting is weakened in a copy of a real stack's plan,
naming the policy and the resource, and the runner then exits non-zero."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.policy.conftest import entry, mutated, run, runner, violations

Plan = list[dict[str, Any]]


def _set(name: str, *path: str | int, value: Any) -> Callable[[Plan], str]:
    """Set inputs[path] of the named resource (int steps index lists)."""

    def mutate(plan: Plan) -> str:
        node: Any = entry(plan, name)["inputs"]
        for step in path[:-1]:
            node = node[step] if isinstance(step, int) else node.setdefault(step, {})
        node[path[-1]] = value
        return name

    return mutate


def _drop(name: str) -> Callable[[Plan], str]:
    def mutate(plan: Plan) -> str:
        plan.remove(entry(plan, name))
        return "launch-ready-" + plan[0]["urn"].split("::")[0].rsplit(":", 1)[-1]  # the stack

    return mutate


def _stack_wide(mutation: Callable[[Plan], str]) -> Callable[[Plan], str]:
    """The violation is about something missing from the stack, so it names the stack."""

    def mutate(plan: Plan) -> str:
        mutation(plan)
        return "launch-ready-" + plan[0]["urn"].split("::")[0].rsplit(":", 1)[-1]

    return mutate


def _another_role(grant: str, role: str) -> Callable[[Plan], str]:
    """A second project grant to the same function account as `grant`, of `role`."""

    def mutate(plan: Plan) -> str:
        twin = json.loads(json.dumps(entry(plan, grant)))
        name = f"{grant}-{role.rsplit('/', 1)[-1].replace('.', '-')}"
        twin["name"], twin["urn"] = name, twin["urn"].replace(f"::{grant}", f"::{name}")
        twin["inputs"]["role"] = role
        plan.append(twin)
        return name

    return mutate


def _protect_off(plan: Plan) -> str:
    entry(plan, "project-firestore")["options"]["protect"] = False
    return "project-firestore"


def _second_spf(plan: Plan) -> str:
    twin = json.loads(json.dumps(entry(plan, "edge-spf")))
    twin["name"] = "edge-spf-twin"
    twin["urn"] = twin["urn"].replace("::edge-spf", "::edge-spf-twin")
    twin["inputs"]["content"] = '"v=spf1 include:_spf.google.com -all"'
    plan.append(twin)
    return "edge-spf-twin"


def _zone_setting_in_staging(plan: Plan) -> str:
    setting = {
        **entry(plan, "edge-api"),
        "type": "cloudflare:index/zoneSetting:ZoneSetting",
        "name": "edge-ssl",
        "urn": "urn:pulumi:staging::launch-ready::cloudflare:index/zoneSetting:ZoneSetting::edge-ssl",
        "inputs": {"settingId": "ssl", "value": "strict", "zoneId": "0123456789abcdef0123456789abcdef"},
    }
    plan.append(setting)
    return "edge-ssl"


# (policy, stack, mutation, words the message must contain). The mutation returns the resource name
# the violation must name.
MUTATIONS: list[tuple[str, str, Callable[[Plan], str], str]] = [
    (
        "no-public-iam",
        "prod",
        _set("functions-billing-worker-push-invoker", "member", value="allUsers"),
        "allUsers",
    ),
    (
        "no-basic-roles-on-service-accounts",
        "prod",
        _set("fn-identity-billing-worker-datastore-user", "role", value="roles/editor"),
        "roles/editor",
    ),
    (
        "function-roles-least-privilege",
        "prod",
        _set("fn-identity-crm-worker-datastore-user", "role", value="roles/secretmanager.admin"),
        "roles/secretmanager.admin",
    ),
    # The policy's own allow-list, not the catalog's: a basic role, and an Auth admin on a public endpoint.
    (
        "function-roles-least-privilege",
        "prod",
        _another_role("fn-identity-support-worker-datastore-user", "roles/editor"),
        "roles/editor",
    ),
    (
        "function-roles-least-privilege",
        "staging",
        _another_role("fn-identity-create-checkout-datastore-user", "roles/firebaseauth.admin"),
        "roles/firebaseauth.admin",
    ),
    (
        "secret-accessor-least-privilege",
        "prod",
        _set("secrets-hubspot-token-crm-worker-accessor", "secretId", value="STRIPE_API_KEY"),
        "STRIPE_API_KEY",
    ),
    (
        "no-credentials-in-plain-environment",
        "staging",
        _set(
            "functions-create-checkout",
            "serviceConfig",
            "environmentVariables",
            "STRIPE_API_KEY",
            value="[credential-shaped plaintext]",
        ),
        "STRIPE_API_KEY",
    ),
    (
        "storage-bucket-hardening",
        "prod",
        _set("functions-source", "publicAccessPrevention", value="inherited"),
        "publicAccessPrevention",
    ),
    (
        "workers-not-public",
        "prod",
        _set("functions-billing-worker", "serviceConfig", "ingressSettings", value="ALLOW_ALL"),
        "ALLOW_ALL",
    ),
    ("cloudflare-tls", "prod", _set("edge-ssl", "value", value="flexible"), "strict"),
    ("cloudflare-tls", "prod", _set("edge-min-tls-version", "value", value="1.0"), "1.2"),
    (
        "push-subscription-delivery",
        "staging",
        _set("functions-sub-billing-events-push", "deadLetterPolicy", value={}),
        "deadLetterTopic",
    ),
    (
        "push-subscription-delivery",
        "staging",
        _set("functions-sub-crm-sync-push", "pushConfig", "oidcToken", value={}),
        "oidcToken",
    ),
    (
        "firestore-durability",
        "prod",
        _set("project-firestore", "pointInTimeRecoveryEnablement", value="POINT_IN_TIME_RECOVERY_DISABLED"),
        "pointInTimeRecoveryEnablement",
    ),
    ("data-protected-in-production", "prod", _protect_off, "protect=True"),
    ("log-retention-minimum", "prod", _set("monitoring-log-retention", "retentionDays", value=14), "14"),
    (
        "uptime-check-per-public-path",
        "staging",
        _drop("monitoring-uptime-stripe-webhook"),
        "/v1/stripe/webhook",
    ),
    ("alert-per-guardrail", "prod", _drop("monitoring-alert-function-latency-p95"), "p95"),
    ("alert-per-guardrail", "prod", _drop("monitoring-alert-endpoint-error-rate"), "error rate"),
    (
        "alert-per-guardrail",
        "staging",
        _stack_wide(_set("monitoring-alert-webhook-failures", "conditions", 0, value={})),
        "webhook failures",
    ),
    (
        "environment-separation",
        "staging",
        _set("api-site", "siteId", value="launch-ready-prod-api"),
        "hostingSites launch-ready-prod-api",
    ),
    (
        "production-dmarc-reject",
        "prod",
        _set("edge-dmarc", "content", value='"v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com"'),
        "p=quarantine",
    ),
    ("zone-wide-settings-in-production-only", "staging", _zone_setting_in_staging, "zone setting ssl"),
    ("one-spf-per-name", "prod", _second_spf, "2 SPF records"),
    ("dkim-not-proxied", "prod", _set("edge-mail-txt-resend-domainkey", "proxied", value=True), "proxied"),
    ("dmarc-for-every-sending-domain", "staging", _drop("edge-dmarc"), "_dmarc.staging.example.com"),
]


@pytest.mark.parametrize(
    ("policy", "stack", "mutate", "words"),
    MUTATIONS,
    ids=[f"{m[0]}-{i}" for i, m in enumerate(MUTATIONS)],
)
def test_weakening_the_guarded_setting_fires_the_policy(
    plans: dict[str, Plan], policy: str, stack: str, mutate: Callable[[Plan], str], words: str
) -> None:
    plan = mutated(plans[stack])
    assert violations(run(plan, stack, only=[policy]), policy) == [], "the real plan must pass first"
    resource = mutate(plan)
    fired = violations(run(plan, stack, only=[policy]), policy)
    assert fired, f"{policy} did not fire"
    assert any(f.resource.endswith(f"::{resource}") for f in fired), fired
    assert any(words in f.message for f in fired), [f.message for f in fired]
    assert all(f.level == "mandatory" for f in fired)


def test_every_mandatory_policy_has_a_mutation() -> None:
    mandatory = {p.name for p in runner.POLICIES} - {"policy-exceptions-current"}  # see test_allowlist
    assert mandatory <= {m[0] for m in MUTATIONS}


def test_a_mutated_plan_fails_make_policy(plans: dict[str, Plan], tmp_path: Path) -> None:
    plan = mutated(plans["prod"])
    _set("functions-source", "publicAccessPrevention", value="inherited")(plan)
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    out = tmp_path / "policy.json"
    assert runner.run("prod", plan=path, out=out) == 1
    report = json.loads(out.read_text())
    assert any(
        f["policy"] == "storage-bucket-hardening" and f["resource"].endswith("::functions-source")
        for f in report["findings"]
    )
