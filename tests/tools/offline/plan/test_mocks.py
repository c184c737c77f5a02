"""The mocks answer like the providers, so outputs wired into other inputs are never silently empty."""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
import pytest

from tools.offline.plan.mocks import PROJECT_NUMBER, PlanMocks, default_options, run_under_mocks


@pytest.fixture(scope="module")
def outputs() -> tuple[PlanMocks, dict[str, object]]:
    mocks = PlanMocks()
    mocks.install(stack="staging")
    seen: dict[str, object] = {}

    def program() -> None:
        class Holder(pulumi.ComponentResource):
            def __init__(self, name: str) -> None:
                super().__init__("launchready:test:Holder", name)
                child = pulumi.ResourceOptions(parent=self)
                self.account = gcp.serviceaccount.Account(
                    f"{name}-sa", project="acme", account_id="fn-x", opts=child
                )
                self.topic = gcp.pubsub.Topic(f"{name}-topic", project="acme", name="jobs", opts=child)
                self.secret = gcp.secretmanager.Secret(
                    f"{name}-secret",
                    project="acme",
                    secret_id="API_KEY",
                    replication=gcp.secretmanager.SecretReplicationArgs(
                        auto=gcp.secretmanager.SecretReplicationAutoArgs()
                    ),
                    opts=child,
                )
                self.bucket = gcp.storage.Bucket(
                    f"{name}-bucket", project="acme", name="acme-src", location="EU", opts=child
                )
                self.function = gcp.cloudfunctionsv2.Function(
                    f"{name}-fn", project="acme", location="europe-west1", name="worker", opts=child
                )
                self.agent = gcp.projects.ServiceIdentity(
                    f"{name}-agent", project="acme", service="pubsub.googleapis.com", opts=child
                )
                self.register_outputs({})

        holder = Holder("holder")
        holder.account.email.apply(lambda v: seen.update(email=v))
        holder.account.member.apply(lambda v: seen.update(member=v))
        holder.topic.id.apply(lambda v: seen.update(topic_id=v))
        holder.secret.name.apply(lambda v: seen.update(secret_name=v))
        holder.bucket.url.apply(lambda v: seen.update(bucket_url=v))
        holder.function.url.apply(lambda v: seen.update(function_url=v))
        holder.function.service_config.apply(lambda v: seen.update(service=v.service if v else None))
        holder.function.service_config.apply(lambda v: seen.update(uri=v.uri if v else None))
        holder.agent.email.apply(lambda v: seen.update(agent=v))

    run_under_mocks(program)
    return mocks, seen


def test_outputs_have_the_providers_formats(outputs: tuple[PlanMocks, dict[str, object]]) -> None:
    _, seen = outputs
    assert seen["email"] == "fn-x@acme.iam.gserviceaccount.com"
    assert seen["member"] == "serviceAccount:fn-x@acme.iam.gserviceaccount.com"
    assert seen["topic_id"] == "projects/acme/topics/jobs"
    assert seen["secret_name"] == f"projects/{PROJECT_NUMBER}/secrets/API_KEY"
    assert seen["bucket_url"] == "gs://acme-src"
    assert seen["function_url"] == "https://europe-west1-acme.cloudfunctions.net/worker"
    assert seen["service"] == "projects/acme/locations/europe-west1/services/worker"
    assert str(seen["uri"]).startswith("https://worker-") and str(seen["uri"]).endswith(".a.run.app")
    assert seen["agent"] == f"service-{PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"


def test_every_resource_is_recorded_with_its_urn_parent_and_options(
    outputs: tuple[PlanMocks, dict[str, object]],
) -> None:
    mocks, _ = outputs
    plan = mocks.plan()
    holder_urn = "urn:pulumi:staging::launch-ready::launchready:test:Holder::holder"
    assert plan[0] == {
        "urn": holder_urn,
        "type": "launchready:test:Holder",
        "name": "holder",
        "parent": None,
        "inputs": {},
        "options": default_options(),
    }
    children = [entry for entry in plan if entry["name"] != "holder"]
    assert len(children) == 6 and all(entry["parent"] == holder_urn for entry in children)
    assert mocks.named("gcp:pubsub/topic:Topic", "holder-topic").urn == (
        "urn:pulumi:staging::launch-ready::launchready:test:Holder$gcp:pubsub/topic:Topic::holder-topic"
    )
    topic = mocks.named("gcp:pubsub/topic:Topic", "holder-topic")
    assert topic.inputs == {"project": "acme", "name": "jobs"}
    with pytest.raises(LookupError):
        mocks.named("gcp:pubsub/topic:Topic", "missing")


def test_options_are_recorded_as_the_engine_spells_them() -> None:
    mocks = PlanMocks()
    mocks.install(stack="staging")

    def program() -> None:
        provider = gcp.Provider("quota", project="acme")
        topic = gcp.pubsub.Topic("first", project="acme", name="first")
        gcp.pubsub.Topic(
            "second",
            project="acme",
            name="second",
            opts=pulumi.ResourceOptions(
                protect=True,
                delete_before_replace=True,
                retain_on_delete=True,
                import_="projects/acme/topics/second",
                aliases=[pulumi.Alias(name="old-second")],
                ignore_changes=["labels"],
                depends_on=[topic],
                provider=provider,
            ),
        )

    run_under_mocks(program)
    second = mocks.named("gcp:pubsub/topic:Topic", "second")
    stack_prefix = "urn:pulumi:staging::launch-ready::"
    assert second.options == {
        "protect": True,
        "deleteBeforeReplace": True,
        "retainOnDelete": True,
        "importId": "projects/acme/topics/second",
        "aliases": [{"name": "old-second"}],
        "ignoreChanges": ["labels"],
        "dependsOn": [f"{stack_prefix}gcp:pubsub/topic:Topic::first"],
        "provider": f"{stack_prefix}pulumi:providers:gcp::quota",
    }
    assert mocks.named("gcp:pubsub/topic:Topic", "first").options == default_options()


def test_stack_transforms_set_options_as_the_engine_would() -> None:
    mocks = PlanMocks()
    mocks.install(stack="staging")

    def protect_topics(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
        if args.type_ != "gcp:pubsub/topic:Topic":
            return None
        return pulumi.ResourceTransformResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=True))
        )

    def program() -> None:
        pulumi.runtime.register_resource_transform(protect_topics)
        gcp.pubsub.Topic("kept", project="acme", name="kept")
        gcp.serviceaccount.Account("plain", project="acme", account_id="plain-sa")

    run_under_mocks(program)
    assert mocks.named("gcp:pubsub/topic:Topic", "kept").options["protect"] is True
    assert mocks.named("gcp:serviceaccount/account:Account", "plain").options["protect"] is False
