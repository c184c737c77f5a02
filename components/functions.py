"""The function fleet: identities, source upload, Pub/Sub wiring, 2nd-gen functions and the schedule.

Two components, because the secrets need the functions' service accounts before the functions exist
(a function whose identity cannot read its secrets fails to deploy):

- `FunctionIdentities`: one dedicated service account per catalog function, with its project roles.
- `Functions`: source bucket and one archive per function, topics with dead-letter topics, the functions,
  push subscriptions with OIDC, the Firestore trigger, the scheduler job and every invoker grant.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from components.archive import SourceArchive
from components.catalog import Catalog, FunctionSpec, scaled_max_instances
from components.function_env import CONSOLE, SOURCE_BUCKET_SUFFIX, catalog_environment

RUNTIME = "python312"
# Eventarc's Firestore event types: https://cloud.google.com/firestore/docs/extend-with-functions-2nd-gen
FIRESTORE_CREATED = "google.cloud.firestore.document.v1.created"
FIRESTORE_DELETED = "google.cloud.firestore.document.v1.deleted"
FIRESTORE_EVENTS = {"created": FIRESTORE_CREATED, "deleted": FIRESTORE_DELETED}
INVOKER_ROLE = "roles/run.invoker"


def account_id(prefix: str, spec_or_name: FunctionSpec | str) -> str:
    """Service account ids are 6-30 chars of [a-z0-9-]."""
    base = spec_or_name.resource_name if isinstance(spec_or_name, FunctionSpec) else spec_or_name
    return f"{prefix}-{base}"[:30].rstrip("-")


@dataclass
class FunctionIdentitiesArgs:
    project_id: pulumi.Input[str]
    catalog: Catalog
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


class FunctionIdentities(pulumi.ComponentResource):
    """A runtime service account per function, holding the project roles its catalog entry lists
    (the catalog's `common_roles` and its own `roles`)."""

    emails: dict[str, pulumi.Output[str]]

    def __init__(
        self, name: str, args: FunctionIdentitiesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("launchready:functions:FunctionIdentities", name, None, opts)
        self.accounts: dict[str, gcp.serviceaccount.Account] = {}
        self.role_grants: list[gcp.projects.IAMMember] = []
        for spec in args.catalog.functions:
            account = gcp.serviceaccount.Account(
                f"{name}-{spec.resource_name}",
                project=args.project_id,
                account_id=account_id("fn", spec),
                display_name=f"Function {spec.name}",
                description=spec.description[:256],
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
            )
            self.accounts[spec.name] = account
            for grant in args.catalog.project_roles(spec):
                self.role_grants.append(
                    gcp.projects.IAMMember(
                        f"{name}-{spec.resource_name}-{grant.role.split('/')[-1].replace('.', '-')}",
                        project=args.project_id,
                        role=grant.role,
                        member=account.member,
                        opts=pulumi.ResourceOptions(parent=self),
                    )
                )
        self.emails = {fn: account.email for fn, account in self.accounts.items()}
        self.register_outputs({"emails": self.emails})


@dataclass
class FunctionsArgs:
    project_id: pulumi.Input[str]
    region: str
    environment: str
    catalog: Catalog
    # One source archive per catalog function, by function name (components/archive.py).
    archives: Mapping[str, SourceArchive]
    identities: FunctionIdentities
    secret_ids: Mapping[str, pulumi.Input[str]]
    # Plain (non-secret) settings every function receives, e.g. OPS_EMAIL, APP_URL.
    settings: Mapping[str, str]
    # Plain settings the ops console alone receives (FIREBASE_WEB_API_KEY, for its sign-in).
    console_settings: Mapping[str, str] = field(default_factory=dict)
    max_instances_scale: float = 1.0
    firestore_database: pulumi.Input[str] = "(default)"
    firestore_region: str | None = None
    # Resources that must exist first: enabled APIs, secret accessor grants, the Firestore database.
    depends_on: Sequence[pulumi.Resource] = field(default_factory=list)


def _seconds(value: int) -> str:
    return f"{value}s"


def _service_name(function: gcp.cloudfunctionsv2.Function) -> pulumi.Output[str]:
    """Short name of the Cloud Run service behind a 2nd-gen function, from its full resource name."""
    return function.service_config.apply(lambda config: str((config and config.service) or "").split("/")[-1])


def _service_uri(function: gcp.cloudfunctionsv2.Function) -> pulumi.Output[str]:
    return function.service_config.apply(lambda config: str((config and config.uri) or ""))


class Functions(pulumi.ComponentResource):
    """Deploys every catalog function with its triggers, delivery guarantees and invoker grants."""

    urls: dict[str, pulumi.Output[str]]
    service_names: dict[str, pulumi.Output[str]]
    dead_letter_subscriptions: dict[str, pulumi.Output[str]]

    def __init__(self, name: str, args: FunctionsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("launchready:functions:Functions", name, None, opts)
        catalog, project = args.catalog, args.project_id
        child = pulumi.ResourceOptions(parent=self)
        after_deps = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        policy = catalog.push_subscription

        # ---- source -----------------------------------------------------------------------------
        self.source_bucket = gcp.storage.Bucket(
            f"{name}-source",
            project=project,
            name=pulumi.Output.concat(project, SOURCE_BUCKET_SUFFIX),
            location=args.region,
            uniform_bucket_level_access=True,
            public_access_prevention="enforced",
            versioning=gcp.storage.BucketVersioningArgs(enabled=True),
            lifecycle_rules=[
                # Old archives only matter for a rollback; keep the last few.
                gcp.storage.BucketLifecycleRuleArgs(
                    action=gcp.storage.BucketLifecycleRuleActionArgs(type="Delete"),
                    condition=gcp.storage.BucketLifecycleRuleConditionArgs(
                        num_newer_versions=5, with_state="ARCHIVED"
                    ),
                )
            ],
            force_destroy=False,
            opts=after_deps,
        )
        # The object name and the file both carry the archive's hash: a function is rebuilt exactly
        # when its own archive's content changes.
        self.source_objects: dict[str, gcp.storage.BucketObject] = {
            spec.name: gcp.storage.BucketObject(
                f"{name}-{spec.resource_name}-source",
                bucket=self.source_bucket.name,
                name=args.archives[spec.name].object_name,
                source=pulumi.FileAsset(str(args.archives[spec.name].path)),
                content_type="application/zip",
                opts=child,
            )
            for spec in catalog.functions
        }

        # ---- topics and dead-letter topics ------------------------------------------------------
        self.pubsub_agent = gcp.projects.ServiceIdentity(
            f"{name}-pubsub-agent", project=project, service="pubsub.googleapis.com", opts=after_deps
        )
        self.topics: dict[str, gcp.pubsub.Topic] = {}
        self.dead_letter_topics: dict[str, gcp.pubsub.Topic] = {}
        self.dead_letter_subs: dict[str, gcp.pubsub.Subscription] = {}
        for topic in catalog.topics:
            self.topics[topic] = gcp.pubsub.Topic(
                f"{name}-topic-{topic}", project=project, name=topic, opts=after_deps
            )
            dlq = gcp.pubsub.Topic(
                f"{name}-topic-{topic}-dlq", project=project, name=f"{topic}-dlq", opts=after_deps
            )
            self.dead_letter_topics[topic] = dlq
            # Holds dead letters for inspection and replay; it must never expire or drop them early.
            self.dead_letter_subs[topic] = gcp.pubsub.Subscription(
                f"{name}-sub-{topic}-dlq",
                project=project,
                name=f"{topic}-dlq-sub",
                topic=dlq.id,
                ack_deadline_seconds=policy.ack_deadline_seconds,
                message_retention_duration=_seconds(policy.dead_letter_retention_seconds),
                retain_acked_messages=True,
                expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
                opts=child,
            )
            # The Pub/Sub service agent forwards undeliverable messages to the dead-letter topic.
            self._publisher(
                f"{name}-topic-{topic}-dlq-agent-publisher", project, dlq, self.pubsub_agent.member
            )

        # ---- per-function grants that only depend on topics ------------------------------------
        accounts = args.identities.accounts
        publisher_grants: list[pulumi.Resource] = [
            self._publisher(
                f"{name}-topic-{topic}-{spec.resource_name}-publisher",
                project,
                self.topics[topic],
                accounts[spec.name].member,
            )
            for spec in catalog.functions
            for topic in spec.publishes
        ]

        # A dedicated build identity: the default compute account is either over-privileged or, in newer
        # projects, lacks what Cloud Build needs.
        self.builder = gcp.serviceaccount.Account(
            f"{name}-builder",
            project=project,
            account_id="functions-builder",
            display_name="Cloud Functions builds",
            opts=after_deps,
        )
        builder_grant = gcp.projects.IAMMember(
            f"{name}-builder-cloudbuild-builder",
            project=project,
            role="roles/cloudbuild.builds.builder",
            member=self.builder.member,
            opts=child,
        )

        # ---- functions --------------------------------------------------------------------------
        common_env = {
            **args.settings,
            "LAUNCHREADY_ENV": args.environment,
        }
        self.functions: dict[str, gcp.cloudfunctionsv2.Function] = {}
        for spec in catalog.functions:
            self.functions[spec.name] = self._function(
                name, spec, args, common_env, [*args.depends_on, *publisher_grants, builder_grant]
            )
        self.urls = {fn: _service_uri(function) for fn, function in self.functions.items()}
        self.service_names = {fn: _service_name(function) for fn, function in self.functions.items()}

        # ---- who may invoke what ----------------------------------------------------------------
        self.invoker_grants: list[gcp.cloudrunv2.ServiceIamMember] = []
        for spec in catalog.public_http:
            # Public endpoints authenticate callers themselves (Stripe signature, Firebase ID token).
            self._invoker(name, spec, "public", "allUsers", args)

        for spec in catalog.by_trigger("firestore"):
            # Eventarc calls the service as the trigger's identity (the function's own account).
            self._invoker(name, spec, "eventarc", args.identities.accounts[spec.name].member, args)

        workers = catalog.by_trigger("pubsub")
        self.push_invoker = gcp.serviceaccount.Account(
            f"{name}-push-invoker",
            project=project,
            account_id="pubsub-push-invoker",
            display_name="Pub/Sub push to worker functions",
            opts=after_deps,
        )
        # Pub/Sub mints the push OIDC tokens as this account.
        gcp.serviceaccount.IAMMember(
            f"{name}-push-invoker-agent-token-creator",
            service_account_id=self.push_invoker.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=self.pubsub_agent.member,
            opts=child,
        )
        self.push_subscriptions: dict[str, gcp.pubsub.Subscription] = {}
        for spec in workers:
            topic = str(spec.trigger.topic)
            invoker = self._invoker(name, spec, "push", self.push_invoker.member, args)
            uri = self.urls[spec.name]
            subscription = gcp.pubsub.Subscription(
                f"{name}-sub-{topic}-push",
                project=project,
                name=f"{topic}-push-{spec.resource_name}",
                topic=self.topics[topic].id,
                ack_deadline_seconds=max(policy.ack_deadline_seconds, spec.limits.timeout_seconds),
                message_retention_duration=_seconds(policy.message_retention_seconds),
                retry_policy=gcp.pubsub.SubscriptionRetryPolicyArgs(
                    minimum_backoff=_seconds(policy.min_backoff_seconds),
                    maximum_backoff=_seconds(policy.max_backoff_seconds),
                ),
                dead_letter_policy=gcp.pubsub.SubscriptionDeadLetterPolicyArgs(
                    dead_letter_topic=self.dead_letter_topics[topic].id,
                    max_delivery_attempts=policy.max_delivery_attempts,
                ),
                push_config=gcp.pubsub.SubscriptionPushConfigArgs(
                    push_endpoint=uri,
                    oidc_token=gcp.pubsub.SubscriptionPushConfigOidcTokenArgs(
                        service_account_email=self.push_invoker.email, audience=uri
                    ),
                ),
                expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[invoker]),
            )
            self.push_subscriptions[spec.name] = subscription
            # The service agent acknowledges the original message when it dead-letters it.
            gcp.pubsub.SubscriptionIAMMember(
                f"{name}-sub-{topic}-push-agent-subscriber",
                project=project,
                subscription=subscription.name,
                role="roles/pubsub.subscriber",
                member=self.pubsub_agent.member,
                opts=child,
            )

        self.scheduler_jobs: dict[str, gcp.cloudscheduler.Job] = {}
        scheduled = catalog.by_trigger("schedule")
        if scheduled:
            self.scheduler = gcp.serviceaccount.Account(
                f"{name}-scheduler",
                project=project,
                account_id="scheduler-invoker",
                display_name="Cloud Scheduler to scheduled functions",
                opts=after_deps,
            )
            for spec in scheduled:
                invoker = self._invoker(name, spec, "scheduler", self.scheduler.member, args)
                uri = self.urls[spec.name]
                self.scheduler_jobs[spec.name] = gcp.cloudscheduler.Job(
                    f"{name}-{spec.resource_name}-schedule",
                    project=project,
                    region=args.region,
                    name=spec.resource_name,
                    description=spec.description,
                    schedule=str(spec.trigger.schedule),
                    time_zone=spec.trigger.time_zone or "Etc/UTC",
                    attempt_deadline=_seconds(spec.limits.timeout_seconds + 30),
                    retry_config=gcp.cloudscheduler.JobRetryConfigArgs(
                        retry_count=3, min_backoff_duration="60s", max_backoff_duration="600s"
                    ),
                    http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                        uri=uri,
                        http_method="POST",
                        headers={"Content-Type": "application/json"},
                        oidc_token=gcp.cloudscheduler.JobHttpTargetOidcTokenArgs(
                            service_account_email=self.scheduler.email, audience=uri
                        ),
                    ),
                    opts=pulumi.ResourceOptions(parent=self, depends_on=[invoker]),
                )

        self.dead_letter_subscriptions = {topic: sub.name for topic, sub in self.dead_letter_subs.items()}
        self.register_outputs(
            {
                "urls": self.urls,
                "service_names": self.service_names,
                "dead_letter_subscriptions": self.dead_letter_subscriptions,
                "source_objects": {fn: obj.output_name for fn, obj in self.source_objects.items()},
            }
        )

    # ---- helpers ----------------------------------------------------------------------------------

    def _function(
        self,
        name: str,
        spec: FunctionSpec,
        args: FunctionsArgs,
        common_env: Mapping[str, str],
        depends_on: Sequence[pulumi.Resource],
    ) -> gcp.cloudfunctionsv2.Function:
        project, limits = args.project_id, spec.limits
        account = args.identities.accounts[spec.name]
        public = spec.trigger.type == "http" and spec.trigger.public
        own_env = {
            **catalog_environment(args.catalog, spec),
            **spec.env,
            **(args.console_settings if spec.name == CONSOLE else {}),
        }
        environment = pulumi.Output.all(project, dict(common_env)).apply(
            lambda values: {"GOOGLE_CLOUD_PROJECT": values[0], **values[1], **own_env}
        )
        event_trigger = None
        if spec.trigger.type == "firestore":
            event_trigger, grants = self._firestore_trigger(name, spec, args)
            depends_on = [*depends_on, *grants]
        return gcp.cloudfunctionsv2.Function(
            f"{name}-{spec.resource_name}",
            project=project,
            location=args.region,
            name=spec.resource_name,
            description=spec.description,
            build_config=gcp.cloudfunctionsv2.FunctionBuildConfigArgs(
                runtime=RUNTIME,
                entry_point=spec.entry_point,
                service_account=self.builder.name,
                source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceArgs(
                    storage_source=gcp.cloudfunctionsv2.FunctionBuildConfigSourceStorageSourceArgs(
                        bucket=self.source_bucket.name, object=self.source_objects[spec.name].output_name
                    )
                ),
            ),
            service_config=gcp.cloudfunctionsv2.FunctionServiceConfigArgs(
                available_memory=limits.memory,
                available_cpu=limits.cpu,
                timeout_seconds=limits.timeout_seconds,
                min_instance_count=limits.min_instances,
                max_instance_count=scaled_max_instances(limits.max_instances, args.max_instances_scale),
                max_instance_request_concurrency=limits.concurrency,
                # Only browser/Stripe-facing endpoints take internet traffic; Pub/Sub push, Eventarc and
                # Cloud Scheduler count as internal callers.
                ingress_settings="ALLOW_ALL" if public else "ALLOW_INTERNAL_ONLY",
                all_traffic_on_latest_revision=True,
                service_account_email=account.email,
                environment_variables=environment,
                secret_environment_variables=[
                    gcp.cloudfunctionsv2.FunctionServiceConfigSecretEnvironmentVariableArgs(
                        key=secret, project_id=project, secret=args.secret_ids[secret], version="latest"
                    )
                    for secret in spec.secrets
                ],
            ),
            event_trigger=event_trigger,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(depends_on)),
        )

    def _firestore_trigger(
        self, name: str, spec: FunctionSpec, args: FunctionsArgs
    ) -> tuple[gcp.cloudfunctionsv2.FunctionEventTriggerArgs, list[pulumi.Resource]]:
        """Eventarc trigger on a document event (catalog `event`: created or deleted); the function's own
        identity receives the events, and the grants the trigger needs before it is created."""
        account = args.identities.accounts[spec.name]
        receiver = gcp.projects.IAMMember(
            f"{name}-{spec.resource_name}-event-receiver",
            project=args.project_id,
            role="roles/eventarc.eventReceiver",
            member=account.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        # Eventarc delivers through Pub/Sub, whose service agent mints the push tokens as the trigger's
        # account. Agents enabled on or before 8 April 2021 lack that role on adopted projects ("If you
        # enabled the Cloud Pub/Sub service agent on or before April 8, 2021, grant the Service Account
        # Token Creator role", https://cloud.google.com/eventarc/docs/roles-permissions); granted on every
        # project, it is a no-op where Google already did.
        token_creator = gcp.serviceaccount.IAMMember(
            f"{name}-{spec.resource_name}-agent-token-creator",
            service_account_id=account.name,
            role="roles/iam.serviceAccountTokenCreator",
            member=self.pubsub_agent.member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        trigger = gcp.cloudfunctionsv2.FunctionEventTriggerArgs(
            event_type=FIRESTORE_EVENTS[str(spec.trigger.event)],
            trigger_region=args.firestore_region or args.region,
            # A handler that fails transiently is retried; the ledger makes the retry harmless.
            retry_policy="RETRY_POLICY_RETRY",
            service_account_email=account.email,
            event_filters=[
                gcp.cloudfunctionsv2.FunctionEventTriggerEventFilterArgs(
                    attribute="database", value=args.firestore_database
                ),
                gcp.cloudfunctionsv2.FunctionEventTriggerEventFilterArgs(
                    attribute="document", value=str(spec.trigger.document), operator="match-path-pattern"
                ),
            ],
        )
        return trigger, [receiver, token_creator]

    def _publisher(
        self,
        resource_name: str,
        project: pulumi.Input[str],
        topic: gcp.pubsub.Topic,
        member: pulumi.Input[str],
    ) -> gcp.pubsub.TopicIAMMember:
        return gcp.pubsub.TopicIAMMember(
            resource_name,
            project=project,
            topic=topic.name,
            role="roles/pubsub.publisher",
            member=member,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _invoker(
        self, name: str, spec: FunctionSpec, purpose: str, member: pulumi.Input[str], args: FunctionsArgs
    ) -> gcp.cloudrunv2.ServiceIamMember:
        grant = gcp.cloudrunv2.ServiceIamMember(
            f"{name}-{spec.resource_name}-{purpose}-invoker",
            project=args.project_id,
            location=args.region,
            name=_service_name(self.functions[spec.name]),
            role=INVOKER_ROLE,
            member=member,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.invoker_grants.append(grant)
        return grant
