"""A good and a bad fixture per policy, written by hand (small plans in the offline plan's shape),
run through the same engine path as `make policy`."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.conftest import resource, run, runner, violations

RUN_MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
TOPIC_MEMBER = "gcp:pubsub/topicIAMMember:TopicIAMMember"
FUNCTION = "gcp:cloudfunctionsv2/function:Function"
BUCKET = "gcp:storage/bucket:Bucket"
ZONE_SETTING = "cloudflare:index/zoneSetting:ZoneSetting"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
DATABASE = "gcp:firestore/database:Database"
LOG_BUCKET = "gcp:logging/projectBucketConfig:ProjectBucketConfig"
UPTIME = "gcp:monitoring/uptimeCheckConfig:UptimeCheckConfig"
DNS = "cloudflare:index/dnsRecord:DnsRecord"
SA = "serviceAccount:{}@launch-ready-staging.iam.gserviceaccount.com"


def fn(name: str, ingress: str = "ALLOW_INTERNAL_ONLY", env: dict[str, str] | None = None) -> dict[str, Any]:
    return resource(
        FUNCTION,
        f"functions-{name}",
        {"name": name, "serviceConfig": {"ingressSettings": ingress, "environmentVariables": env or {}}},
    )


def zone(setting: str, value: Any) -> dict[str, Any]:
    return resource(ZONE_SETTING, f"edge-{setting}", {"settingId": setting, "value": value}, stack="prod")


HSTS = {"strict_transport_security": {"enabled": True, "max_age": 31536000, "include_subdomains": True}}
PUSH = {
    "topic": "projects/p/topics/support",
    "pushConfig": {
        "pushEndpoint": "https://w",
        "oidcToken": {"serviceAccountEmail": "push@p.iam.gserviceaccount.com"},
    },
    "deadLetterPolicy": {"deadLetterTopic": "projects/p/topics/support-dlq", "maxDeliveryAttempts": 5},
    "retryPolicy": {"minimumBackoff": "10s", "maximumBackoff": "600s"},
}
DURABLE = {
    "pointInTimeRecoveryEnablement": "POINT_IN_TIME_RECOVERY_ENABLED",
    "deleteProtectionState": "DELETE_PROTECTION_ENABLED",
    "deletionPolicy": "ABANDON",
}


def uptime(path: str, host: str = "api.staging.example.com") -> dict[str, Any]:
    return resource(
        UPTIME,
        f"uptime{path.replace('/', '-')}",
        {"httpCheck": {"path": path, "useSsl": True}, "monitoredResource": {"labels": {"host": host}}},
    )


def txt(name: str, content: str, stack: str = "staging", proxied: bool = False) -> dict[str, Any]:
    return resource(
        DNS, f"dns-{name}", {"type": "TXT", "name": name, "content": content, "proxied": proxied}, stack
    )


# Probe paths: the exact API paths, and the ops console's health path for its prefix route /ops/**.
PUBLIC_PATHS = ("/v1/stripe/webhook", "/v1/checkout", "/v1/support", "/ops/healthz")

# policy, stack, good plan, bad plan, words in the bad plan's violation
FOLDER_LOG_BUCKET = "gcp:logging/folderBucketConfig:FolderBucketConfig"
CASES: list[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]], str]] = [
    (
        "no-public-iam",
        "staging",
        [
            resource(
                RUN_MEMBER,
                "pub",
                {"name": "stripe-webhook", "role": "roles/run.invoker", "member": "allUsers"},
            )
        ],
        [
            resource(
                RUN_MEMBER, "pub", {"name": "crm-worker", "role": "roles/run.invoker", "member": "allUsers"}
            )
        ],
        "allUsers",
    ),
    (
        "no-basic-roles-on-service-accounts",
        "staging",
        [
            resource(
                PROJECT_MEMBER, "g", {"role": "roles/datastore.user", "member": SA.format("fn-crm-worker")}
            )
        ],
        [resource(PROJECT_MEMBER, "g", {"role": "roles/owner", "member": SA.format("deployer")})],
        "roles/owner",
    ),
    (
        "function-roles-least-privilege",
        "staging",
        [
            resource(
                PROJECT_MEMBER,
                "g",
                {"role": "roles/firebaseauth.admin", "member": SA.format("fn-billing-worker")},
            ),
            resource(
                TOPIC_MEMBER,
                "t",
                {
                    "topic": "crm-sync",
                    "role": "roles/pubsub.publisher",
                    "member": SA.format("fn-billing-worker"),
                },
            ),
        ],
        [
            resource(
                TOPIC_MEMBER,
                "t",
                {"topic": "support", "role": "roles/pubsub.publisher", "member": SA.format("fn-crm-worker")},
            )
        ],
        "topic support",
    ),
    (
        "secret-accessor-least-privilege",
        "staging",
        [
            resource(
                SECRET_MEMBER,
                "s",
                {
                    "secretId": "HUBSPOT_TOKEN",
                    "role": "roles/secretmanager.secretAccessor",
                    "member": SA.format("fn-crm-worker"),
                },
            )
        ],
        [
            resource(
                PROJECT_MEMBER,
                "s",
                {"role": "roles/secretmanager.secretAccessor", "member": SA.format("fn-crm-worker")},
            )
        ],
        "every secret of the project",
    ),
    (
        "no-credentials-in-plain-environment",
        "staging",
        [fn("crm-worker", env={"APP_URL": "https://app.example.com", "STRIPE_PRICE_ID": "price_123"})],
        [fn("crm-worker", env={"HUBSPOT": "pat-na1-00000000-0000-0000-0000-000000000000"})],
        "credential prefix",
    ),
    (
        "storage-bucket-hardening",
        "staging",
        [
            resource(
                BUCKET,
                "b",
                {
                    "uniformBucketLevelAccess": True,
                    "publicAccessPrevention": "enforced",
                    "versioning": {"enabled": True},
                },
            )
        ],
        [
            resource(
                BUCKET,
                "b",
                {
                    "uniformBucketLevelAccess": False,
                    "publicAccessPrevention": "enforced",
                    "versioning": {"enabled": True},
                },
            )
        ],
        "uniformBucketLevelAccess",
    ),
    (
        "workers-not-public",
        "staging",
        [fn("crm-worker"), fn("stripe-webhook", ingress="ALLOW_ALL")],
        [fn("email-worker", ingress="ALLOW_ALL")],
        "ALLOW_ALL",
    ),
    (
        "cloudflare-tls",
        "prod",
        [zone("ssl", "strict"), zone("min_tls_version", "1.3"), zone("security_header", HSTS)],
        [
            zone("ssl", "strict"),
            zone("min_tls_version", "1.2"),
            zone("security_header", {"strict_transport_security": {"enabled": False}}),
        ],
        "HSTS",
    ),
    (
        "push-subscription-delivery",
        "staging",
        [
            resource(SUBSCRIPTION, "s", PUSH),
            resource(SUBSCRIPTION, "pull", {"topic": "projects/p/topics/support-dlq"}),
        ],
        [resource(SUBSCRIPTION, "s", {**PUSH, "retryPolicy": {}})],
        "retryPolicy",
    ),
    (
        "firestore-durability",
        "prod",
        [resource(DATABASE, "db", DURABLE, stack="prod", protect=True)],
        [resource(DATABASE, "db", {**DURABLE, "deletionPolicy": "DELETE"}, stack="prod", protect=True)],
        "deletionPolicy",
    ),
    (
        "data-protected-in-production",
        "prod",
        [
            resource(DATABASE, "db", DURABLE, stack="prod", protect=True),
            resource(BUCKET, "b", {}, stack="prod", protect=True),
        ],
        [
            resource(DATABASE, "db", DURABLE, stack="prod", protect=True),
            resource(BUCKET, "b", {}, stack="prod"),
        ],
        "protect=True",
    ),
    (
        "log-retention-minimum",
        "staging",
        [resource(LOG_BUCKET, "l", {"bucketId": "_Default", "retentionDays": 7})],
        [resource(LOG_BUCKET, "l", {"bucketId": "_Default", "retentionDays": 3})],
        "3",
    ),
    (
        # Not only _Default: a bucket the program adds keeps logs as long.
        "log-retention-minimum",
        "prod",
        [
            resource(LOG_BUCKET, "l", {"bucketId": "_Default", "retentionDays": 30}),
            resource(LOG_BUCKET, "audit", {"bucketId": "audit", "retentionDays": 90}),
            resource(LOG_BUCKET, "api-default", {"bucketId": "api-default"}),
        ],
        [
            resource(LOG_BUCKET, "l", {"bucketId": "_Default", "retentionDays": 30}),
            resource(LOG_BUCKET, "audit", {"bucketId": "audit", "retentionDays": 3}),
        ],
        "audit log bucket keeps logs 3 days",
    ),
    (
        "log-retention-minimum",
        "prod",
        [resource(LOG_BUCKET, "l", {"bucketId": "_Default", "retentionDays": 30})],
        [
            resource(LOG_BUCKET, "l", {"bucketId": "_Default", "retentionDays": 30}),
            resource(FOLDER_LOG_BUCKET, "f", {"bucketId": "shared", "retentionDays": 1}),
        ],
        "shared log bucket keeps logs 1 days",
    ),
    (
        "uptime-check-per-public-path",
        "staging",
        [uptime(path) for path in PUBLIC_PATHS],
        [uptime(path) for path in PUBLIC_PATHS[:2]],
        "/v1/support",
    ),
    (
        "environment-separation",
        "staging",
        [uptime("/v1/stripe/webhook")],
        [uptime("/v1/stripe/webhook", host="api.example.com")],
        "https://api.example.com/v1/stripe/webhook",
    ),
    (
        "production-dmarc-reject",
        "prod",
        [txt("_dmarc.example.com", '"v=DMARC1; p=reject"', "prod")],
        [txt("_dmarc.example.com", '"v=DMARC1; p=none"', "prod")],
        "p=none",
    ),
    (
        "zone-wide-settings-in-production-only",
        "staging",
        [txt("staging.example.com", '"v=spf1 -all"')],
        [txt("example.com", '"v=spf1 -all"')],
        "apex record TXT example.com",
    ),
    (
        "one-spf-per-name",
        "staging",
        [
            txt("staging.example.com", '"v=spf1 -all"'),
            txt("send.staging.example.com", '"v=spf1 include:amazonses.com ~all"'),
        ],
        [
            txt("staging.example.com", '"v=spf1 -all"'),
            {**txt("staging.example.com", '"v=spf1 mx -all"'), "urn": "u2"},
        ],
        "2 SPF records",
    ),
    (
        "dkim-not-proxied",
        "staging",
        [txt("resend._domainkey.staging.example.com", '"p=MIGf"')],
        [txt("resend._domainkey.staging.example.com", '"p=MIGf"', proxied=True)],
        "proxied",
    ),
    (
        "dmarc-for-every-sending-domain",
        "staging",
        [
            txt("resend._domainkey.staging.example.com", "p=x"),
            txt("_dmarc.staging.example.com", "v=DMARC1; p=quarantine"),
        ],
        [txt("resend._domainkey.staging.example.com", "p=x")],
        "_dmarc.staging.example.com",
    ),
]


@pytest.mark.parametrize(("policy", "stack", "good", "bad", "words"), CASES, ids=[c[0] for c in CASES])
def test_good_fixture_passes_and_bad_fixture_fails(
    policy: str, stack: str, good: list[dict[str, Any]], bad: list[dict[str, Any]], words: str
) -> None:
    assert violations(run(good, stack, only=[policy]), policy) == []
    fired = violations(run(bad, stack, only=[policy]), policy)
    assert fired and any(words in f.message for f in fired), [f.message for f in fired]


def test_every_policy_has_fixtures() -> None:
    covered = {c[0] for c in CASES} | {"alert-per-guardrail", "policy-exceptions-current"}
    # alert-per-guardrail: test_alerts below; policy-exceptions-current: test_allowlist.py
    assert covered == {p.name for p in runner.POLICIES}


def test_not_applicable_is_reported_not_silent() -> None:
    dmarc = [txt("_dmarc.staging.example.com", '"v=DMARC1; p=none"')]
    findings = run(dmarc, "staging", only=["production-dmarc-reject"])
    assert [(f.kind, f.message) for f in findings] == [
        ("not-applicable", "DMARC p=reject is required in production; this stack is staging")
    ]


def test_alerts_good_from_the_real_plan_bad_without_channels(plans: dict[str, Any]) -> None:
    monitoring = [e for e in plans["prod"] if e["type"].startswith(("gcp:monitoring/", "gcp:logging/"))]
    monitoring += [e for e in plans["prod"] if e["type"] == SUBSCRIPTION]
    assert violations(run(monitoring, "prod", only=["alert-per-guardrail"]), "alert-per-guardrail") == []
    silent = [
        {**e, "inputs": {**e["inputs"], "notificationChannels": []}}
        if e["type"].endswith("AlertPolicy")
        else e
        for e in monitoring
    ]
    fired = violations(run(silent, "prod", only=["alert-per-guardrail"]), "alert-per-guardrail")
    assert fired and all("notifies nobody" in f.message for f in fired)


def test_the_web_api_key_is_exempt_only_as_the_consoles_configured_key() -> None:
    from components.function_env import WEB_API_KEY_SETTING, WEB_API_KEY_VARIABLE
    from tests.policy.conftest import pack_config, stack_config

    name = "no-credentials-in-plain-environment"
    key, other_key = "AIza" + "Q" * 35, "AIza" + "R" * 35
    config = {**stack_config("staging"), WEB_API_KEY_SETTING: key}
    policies = [p for p in runner.POLICIES if p.name == name]
    configs = {name: pack_config("staging")[name]}

    def found(variables: dict[str, str], function: str = "ops-console") -> list[runner.Finding]:
        plan = [fn(function, ingress="ALLOW_ALL", env=variables)]
        findings = runner.run_policies(plan, "staging", config, configs, policies)
        return violations(findings, name)

    assert found({WEB_API_KEY_VARIABLE: key}) == []
    # The same shape anywhere else is a credential: another value, variable or function.
    assert found({WEB_API_KEY_VARIABLE: other_key})
    assert found({"MAPS_KEY": key})
    assert found({WEB_API_KEY_VARIABLE: key}, function="crm-worker")
