"""Functions under the whole program's staging and prod config: identities, delivery, invokers, schedule."""

from __future__ import annotations

import re
from pathlib import Path

import pulumi
import pytest

from components.catalog import Catalog
from components.function_env import catalog_environment
from components.functions import RUNTIME
from tools.offline.plan.mocks import PlanMocks, RecordedResource, computed_state

FUNCTION = "gcp:cloudfunctionsv2/function:Function"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
RUN_INVOKER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
TOPIC_IAM = "gcp:pubsub/topicIAMMember:TopicIAMMember"
PROJECT_IAM = "gcp:projects/iAMMember:IAMMember"
PUBSUB_AGENT = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"


def project_of(plan: PlanMocks) -> str:
    return plan.named("gcp:firestore/database:Database", "project-firestore").inputs["project"]


def sa(plan: PlanMocks, account: str) -> str:
    return f"{account}@{project_of(plan)}.iam.gserviceaccount.com"


def function(plan: PlanMocks, name: str) -> RecordedResource:
    return plan.named(FUNCTION, f"functions-{name.replace('_', '-')}")


def service_uri(plan: PlanMocks, name: str) -> str:
    """The run.app URL the mocks (like Cloud Functions) report for a function's service."""
    inputs = function(plan, name).inputs
    _, state = computed_state(FUNCTION, "", inputs)
    return state["serviceConfig"]["uri"]


def invokers(plan: PlanMocks) -> dict[str, set[str]]:
    granted: dict[str, set[str]] = {}
    for grant in plan.of_type(RUN_INVOKER):
        assert grant.inputs["role"] == "roles/run.invoker"
        granted.setdefault(grant.inputs["member"], set()).add(grant.inputs["name"])
    return granted


def test_every_catalog_function_is_deployed_from_its_own_hashed_archive(
    stack_plan: PlanMocks, catalog: Catalog, repo_root: Path
) -> None:
    objects = stack_plan.of_type("gcp:storage/bucketObject:BucketObject")
    assert len(objects) == len(catalog.functions)
    for spec in catalog.functions:
        archive = stack_plan.named(
            "gcp:storage/bucketObject:BucketObject", f"functions-{spec.resource_name}-source"
        )
        # Named and stored by content: build/functions/<function>-<sha256 prefix>.zip under that name.
        assert re.fullmatch(rf"{spec.resource_name}-[0-9a-f]{{16}}\.zip", archive.inputs["name"])
        source = archive.inputs["source"]
        assert isinstance(source, pulumi.FileAsset)
        assert Path(str(source.path)) == repo_root / "build" / "functions" / archive.inputs["name"]
        build = function(stack_plan, spec.name).inputs["buildConfig"]
        assert build["runtime"] == RUNTIME
        assert build["entryPoint"] == spec.entry_point
        assert build["source"]["storageSource"]["object"] == archive.inputs["name"]
        assert build["serviceAccount"].endswith(sa(stack_plan, "functions-builder"))


def test_source_bucket_is_private_and_versioned(stack_plan: PlanMocks) -> None:
    bucket = stack_plan.named("gcp:storage/bucket:Bucket", "functions-source")
    assert bucket.inputs["publicAccessPrevention"] == "enforced"
    assert bucket.inputs["uniformBucketLevelAccess"] is True
    assert bucket.inputs["versioning"] == {"enabled": True}
    assert not [r for r in stack_plan.resources if r.type.startswith("gcp:storage/bucketIAM")]


def test_only_public_http_functions_are_open_to_all_users(stack_plan: PlanMocks, catalog: Catalog) -> None:
    granted = invokers(stack_plan)
    assert granted["allUsers"] == {spec.resource_name for spec in catalog.public_http}
    assert "allAuthenticatedUsers" not in granted
    for spec in catalog.functions:
        ingress = function(stack_plan, spec.name).inputs["serviceConfig"]["ingressSettings"]
        assert ingress == ("ALLOW_ALL" if spec in catalog.public_http else "ALLOW_INTERNAL_ONLY")


def test_push_and_scheduler_identities_invoke_only_their_targets(
    stack_plan: PlanMocks, catalog: Catalog
) -> None:
    granted = invokers(stack_plan)
    workers = {spec.resource_name for spec in catalog.by_trigger("pubsub")}
    assert granted[f"serviceAccount:{sa(stack_plan, 'pubsub-push-invoker')}"] == workers
    scheduled = {spec.resource_name for spec in catalog.by_trigger("schedule")}
    assert scheduled >= {"ops-digest", "reconcile"}
    assert granted[f"serviceAccount:{sa(stack_plan, 'scheduler-invoker')}"] == scheduled
    # Each Firestore-triggered function is invoked by its own identity (Eventarc), and only itself.
    eventarc = {f"serviceAccount:{sa(stack_plan, f'fn-{spec.resource_name}')}": {spec.resource_name}
                for spec in catalog.by_trigger("firestore")}
    assert {"user_created", "user_deleted"} <= {spec.name for spec in catalog.by_trigger("firestore")}
    for member, targets in eventarc.items():
        assert granted[member] == targets
    assert set(granted) == {
        "allUsers",
        f"serviceAccount:{sa(stack_plan, 'pubsub-push-invoker')}",
        f"serviceAccount:{sa(stack_plan, 'scheduler-invoker')}",
        *eventarc,
    }


def test_each_function_runs_as_its_own_least_privilege_account(
    stack_plan: PlanMocks, catalog: Catalog
) -> None:
    accounts = {
        function(stack_plan, s.name).inputs["serviceConfig"]["serviceAccountEmail"] for s in catalog.functions
    }
    assert accounts == {sa(stack_plan, f"fn-{spec.resource_name}") for spec in catalog.functions}
    granted: dict[str, set[str]] = {}
    for grant in stack_plan.of_type(PROJECT_IAM):
        granted.setdefault(grant.inputs["member"].split(":", 1)[1], set()).add(grant.inputs["role"])
    for spec in catalog.functions:
        # Exactly the catalog's roles; a Firestore trigger's own grant comes with the trigger.
        expected = {grant.role for grant in catalog.project_roles(spec)}
        if spec.trigger.type == "firestore":
            expected.add("roles/eventarc.eventReceiver")
        assert granted[sa(stack_plan, f"fn-{spec.resource_name}")] == expected, spec.name
    # Nothing gets broad roles.
    held = {role for roles in granted.values() for role in roles}
    assert not {"roles/owner", "roles/editor", "roles/pubsub.publisher", "roles/run.invoker"} & held


def test_publishers_are_exactly_the_catalog_publishes(stack_plan: PlanMocks, catalog: Catalog) -> None:
    granted = {
        (grant.inputs["topic"], grant.inputs["member"])
        for grant in stack_plan.of_type(TOPIC_IAM)
        if grant.inputs["member"] != PUBSUB_AGENT
    }
    expected = {
        (topic, f"serviceAccount:{sa(stack_plan, 'fn-' + spec.resource_name)}")
        for spec in catalog.functions
        for topic in spec.publishes
    }
    assert granted == expected


def test_worker_subscriptions_push_with_oidc_backoff_and_dead_letters(
    stack_plan: PlanMocks, catalog: Catalog
) -> None:
    policy = catalog.push_subscription
    project = project_of(stack_plan)
    for spec in catalog.by_trigger("pubsub"):
        topic = spec.trigger.topic
        sub = stack_plan.named(SUBSCRIPTION, f"functions-sub-{topic}-push")
        assert sub.inputs["topic"] == f"projects/{project}/topics/{topic}"
        push = sub.inputs["pushConfig"]
        assert push["pushEndpoint"] == service_uri(stack_plan, spec.name)
        assert push["oidcToken"] == {
            "serviceAccountEmail": sa(stack_plan, "pubsub-push-invoker"),
            "audience": service_uri(stack_plan, spec.name),
        }
        assert sub.inputs["retryPolicy"] == {"minimumBackoff": "10s", "maximumBackoff": "600s"}
        assert sub.inputs["deadLetterPolicy"] == {
            "deadLetterTopic": f"projects/{project}/topics/{topic}-dlq",
            "maxDeliveryAttempts": policy.max_delivery_attempts,
        }
        assert sub.inputs["ackDeadlineSeconds"] >= spec.limits.timeout_seconds
        assert sub.inputs["expirationPolicy"] == {"ttl": ""}


def test_dead_letter_topics_are_retained_and_wired_for_the_service_agent(
    stack_plan: PlanMocks, catalog: Catalog
) -> None:
    project = project_of(stack_plan)
    dlq_publishers = {
        g.inputs["topic"] for g in stack_plan.of_type(TOPIC_IAM) if g.inputs["member"] == PUBSUB_AGENT
    }
    agent_subscriptions = {
        g.inputs["subscription"]
        for g in stack_plan.of_type("gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember")
        if g.inputs["member"] == PUBSUB_AGENT and g.inputs["role"] == "roles/pubsub.subscriber"
    }
    for topic in catalog.topics:
        stack_plan.named("gcp:pubsub/topic:Topic", f"functions-topic-{topic}-dlq")
        sub = stack_plan.named(SUBSCRIPTION, f"functions-sub-{topic}-dlq")
        assert sub.inputs["name"] == f"{topic}-dlq-sub"
        assert sub.inputs["topic"] == f"projects/{project}/topics/{topic}-dlq"
        assert sub.inputs["messageRetentionDuration"] == "604800s"
        assert sub.inputs["expirationPolicy"] == {"ttl": ""}
        assert "pushConfig" not in sub.inputs
        assert f"{topic}-dlq" in dlq_publishers
    workers = {f"{s.trigger.topic}-push-{s.resource_name}" for s in catalog.by_trigger("pubsub")}
    assert agent_subscriptions == workers


def test_firestore_trigger_fires_on_user_creation(stack_plan: PlanMocks) -> None:
    trigger = function(stack_plan, "user_created").inputs["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.firestore.document.v1.created"
    assert trigger["eventFilters"] == [
        {"attribute": "database", "value": "(default)"},
        {"attribute": "document", "value": "users/{uid}", "operator": "match-path-pattern"},
    ]
    assert trigger["serviceAccountEmail"] == sa(stack_plan, "fn-user-created")


def test_the_pubsub_agent_mints_tokens_as_each_trigger_account(
    stack_plan: PlanMocks, catalog: Catalog
) -> None:
    # Adopted projects whose Pub/Sub agent predates 8 April 2021 lack this role; the triggers then fail to
    # authenticate without an error anywhere (https://cloud.google.com/eventarc/docs/roles-permissions).
    grants = {
        r.name: r.inputs
        for r in stack_plan.of_type("gcp:serviceaccount/iAMMember:IAMMember")
        if r.name.endswith("-agent-token-creator") and "push-invoker" not in r.name
    }
    triggered = catalog.by_trigger("firestore")
    assert triggered and len(grants) == len(triggered)
    for spec in triggered:
        grant = grants[f"functions-{spec.resource_name}-agent-token-creator"]
        assert grant["role"] == "roles/iam.serviceAccountTokenCreator"
        assert grant["member"].endswith("@gcp-sa-pubsub.iam.gserviceaccount.com")
        assert sa(stack_plan, f"fn-{spec.resource_name}") in grant["serviceAccountId"]


def test_firestore_trigger_fires_on_user_deletion(stack_plan: PlanMocks) -> None:
    trigger = function(stack_plan, "user_deleted").inputs["eventTrigger"]
    assert trigger["eventType"] == "google.cloud.firestore.document.v1.deleted"
    assert trigger["retryPolicy"] == "RETRY_POLICY_RETRY"
    assert trigger["eventFilters"] == [
        {"attribute": "database", "value": "(default)"},
        {"attribute": "document", "value": "users/{uid}", "operator": "match-path-pattern"},
    ]
    assert trigger["serviceAccountEmail"] == sa(stack_plan, "fn-user-deleted")


def test_daily_digest_is_scheduled_with_oidc(stack_plan: PlanMocks, catalog: Catalog) -> None:
    trigger = catalog.function("ops_digest").trigger
    job = stack_plan.named("gcp:cloudscheduler/job:Job", "functions-ops-digest-schedule")
    assert (job.inputs["schedule"], job.inputs["timeZone"]) == (trigger.schedule, trigger.time_zone)
    target = job.inputs["httpTarget"]
    assert target["uri"] == service_uri(stack_plan, "ops_digest")
    assert target["oidcToken"] == {
        "serviceAccountEmail": sa(stack_plan, "scheduler-invoker"),
        "audience": service_uri(stack_plan, "ops_digest"),
    }


def test_environment_and_secret_variables(stack_plan: PlanMocks, catalog: Catalog) -> None:
    project = project_of(stack_plan)
    for spec in catalog.functions:
        config = function(stack_plan, spec.name).inputs["serviceConfig"]
        env = config["environmentVariables"]
        assert env["GOOGLE_CLOUD_PROJECT"] == project
        for key in (
            "LAUNCHREADY_ENV",
            "OPS_EMAIL",
            "EMAIL_FROM",
            "APP_URL",
            "ZENDESK_BASE_URL",
            "STRIPE_PRICE_ID",
        ):
            assert env[key], key
        assert not {"STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "HUBSPOT_TOKEN", "RESEND_API_KEY"} & set(env)
        # What the function needs from the catalog, and nothing of it beyond (components/function_env.py).
        from_catalog = {key: value for key, value in env.items()
                        if key.startswith("LAUNCHREADY_") and key != "LAUNCHREADY_ENV"}
        assert from_catalog == catalog_environment(catalog, spec)
        assert config.get("secretEnvironmentVariables", []) == [
            {"key": secret, "projectId": project, "secret": secret, "version": "latest"}
            for secret in spec.secrets
        ]
        assert config["timeoutSeconds"] == spec.limits.timeout_seconds
        assert config["availableMemory"] == spec.limits.memory


@pytest.mark.parametrize(("stack", "scale"), [("staging", 0.5), ("prod", 1.0)])
def test_max_instances_follow_the_stack_scale(
    stack: str, scale: float, catalog: Catalog, request: pytest.FixtureRequest
) -> None:
    plan: PlanMocks = request.getfixturevalue(stack)
    for spec in catalog.functions:
        config = function(plan, spec.name).inputs["serviceConfig"]
        assert config["maxInstanceCount"] == max(1, round(spec.limits.max_instances * scale))
        # The kind of environment (launchready:environment), never the stack's name.
        assert (
            config["environmentVariables"]["LAUNCHREADY_ENV"]
            == {"staging": "staging", "prod": "production"}[stack]
        )
