"""The GCP project with Firebase: APIs, Firestore (rules and indexes) and Identity Platform.

An adopted project's existing singletons (Firebase, the `(default)` database, the rules release, the
Identity Platform config) are imported by id, never created.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_gcp as gcp

# Every API the stack uses. Enabling is idempotent; disabling on destroy is off so that a stack
# removal never breaks things the project owner enabled by hand.
REQUIRED_APIS = (
    "serviceusage",
    "cloudresourcemanager",
    "iam",
    "iamcredentials",
    "cloudfunctions",
    "run",
    "cloudbuild",
    "artifactregistry",
    "eventarc",
    "pubsub",
    "storage",
    "firestore",
    "firebase",
    "firebaserules",
    "firebasehosting",
    "identitytoolkit",
    "secretmanager",
    "cloudscheduler",
    "monitoring",
    "logging",
)
FIRESTORE_RELEASE = "cloud.firestore"
DEFAULT_DATABASE = "(default)"
# Database settings a project adopted with an existing (default) database may hold differently: ignored
# while the database is imported, applied by the next phase. Location and type cannot change in place.
ADOPTED_DATABASE_SETTINGS = (
    "concurrencyMode",
    "appEngineIntegrationMode",
    "pointInTimeRecoveryEnablement",
    "deleteProtectionState",
    "deletionPolicy",
)


def import_ids(project_id: str) -> dict[str, str]:
    """Ids of what an adopted Firebase project already holds, as the provider's importers read them.

    Import id formats: each resource's importer (ParseImportId) in google-beta services/:
    firebase/resource_firebase_project.go, firestore/resource_firestore_database.go,
    firebaserules/resource_firebaserules_release.go, identityplatform/resource_identity_platform_config.go.
    Kept on later runs, an import id equal to the resource's id in state is a no-op
    (pulumi/pulumi developer-docs/architecture/import.md).
    Creating these instead fails (409 / already exists): addFirebase, the (default) database, the DCL
    Release (CreateDirective blocks acquiring an existing one: google-beta tpgdclresource/dcl.go) and the
    Identity Platform config (Create calls identityPlatform:initializeAuth, which also upgrades a Firebase
    Auth project irreversibly: google-beta services/identityplatform/resource_identity_platform_config.go).
    """
    return {
        "firebase": f"projects/{project_id}",
        "database": f"projects/{project_id}/databases/{DEFAULT_DATABASE}",
        "rules_release": f"projects/{project_id}/releases/{FIRESTORE_RELEASE}",
        "auth": f"projects/{project_id}/config",
    }


@dataclass(frozen=True)
class IndexField:
    field_path: str
    order: str | None = None
    array_config: str | None = None


@dataclass(frozen=True)
class CompositeIndex:
    collection_group: str
    query_scope: str
    fields: tuple[IndexField, ...]

    @property
    def slug(self) -> str:
        """Stable, readable resource-name suffix derived from what the index covers."""
        parts = [self.collection_group, *(f.field_path for f in self.fields)]
        return re.sub(r"[^a-z0-9]+", "-", "-".join(parts).lower()).strip("-")


def parse_indexes(text: str) -> tuple[CompositeIndex, ...]:
    """Composite indexes from a Firebase CLI `firestore.indexes.json` document."""
    document: dict[str, Any] = json.loads(text)
    indexes = []
    for raw in document.get("indexes", []):
        fields = tuple(
            IndexField(field_path=f["fieldPath"], order=f.get("order"), array_config=f.get("arrayConfig"))
            for f in raw["fields"]
        )
        if len(fields) < 2:
            # Single-field indexes are automatic; the API rejects them as composite indexes.
            raise ValueError(
                f"firestore.indexes.json: index on {raw['collectionGroup']} needs two or more fields"
            )
        indexes.append(CompositeIndex(raw["collectionGroup"], raw.get("queryScope", "COLLECTION"), fields))
    return tuple(indexes)


@dataclass(frozen=True)
class NewProjectSpec:
    billing_account: str
    folder_id: str | None = None
    org_id: str | None = None


@dataclass
class ProjectArgs:
    project_id: str
    region: str
    firestore_rules: str
    authorized_domains: list[str]
    indexes: tuple[CompositeIndex, ...] = ()
    # None adopts an existing project (billing must already be enabled: Blaze plan).
    new_project: NewProjectSpec | None = None
    firestore_location: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # Manage sign-in with Identity Platform. Creating its config upgrades a Firebase Auth project to
    # Identity Platform, which cannot be undone: an explicit opt-in (launchready:identityPlatform).
    identity_platform: bool = False
    # True on the deploy that adopts an existing project (first phase): imported resources ignore the
    # settings they may hold differently, so the import matches; the next phase applies ours.
    adopting: bool = False
    # launchready:environment. Preview (review) environments keep the database destroyable: no delete
    # protection, deleted with the stack. (Production's `protect` comes from components/protection.py.)
    environment: str = "staging"


class FirebaseProject(pulumi.ComponentResource):
    """Creates or adopts the project, enables APIs and sets up Firebase, Firestore and Auth."""

    project_id: pulumi.Output[str]
    project_number: pulumi.Output[str]
    database_name: pulumi.Output[str]

    def __init__(self, name: str, args: ProjectArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("launchready:project:FirebaseProject", name, None, opts)
        # Calls made with user credentials bill a quota project (gcp:userProjectOverride + gcp:billingProject
        # on the stack's default provider). A project created in this run cannot be its own quota project
        # before its APIs are on, so creating it and enabling APIs go through a provider without the
        # override, as Firebase's Terraform guide does:
        # https://firebase.google.com/docs/projects/terraform/get-started
        self.bootstrap_provider = gcp.Provider(
            f"{name}-bootstrap",
            project=args.project_id,
            user_project_override=False,
            opts=pulumi.ResourceOptions(parent=self),
        )
        child = pulumi.ResourceOptions(parent=self, provider=self.bootstrap_provider)
        adopted = args.new_project is None
        ids = import_ids(args.project_id)

        if args.new_project is not None:
            project = gcp.organizations.Project(
                f"{name}-project",
                project_id=args.project_id,
                name=args.project_id,
                billing_account=args.new_project.billing_account,
                folder_id=args.new_project.folder_id,
                org_id=args.new_project.org_id,
                # No default VPC with open firewall rules: nothing here needs a network.
                auto_create_network=False,
                # Firebase recognises a project by this label.
                labels={"firebase": "enabled", **args.labels},
                # Deleting the stack must never delete the project and its data.
                deletion_policy="PREVENT",
                opts=child,
            )
            self.project_id = project.project_id
            self.project_number = project.number
            project_deps: list[pulumi.Resource] = [project]
        else:
            self.project_id = pulumi.Output.from_input(args.project_id)
            self.project_number = gcp.organizations.get_project_output(project_id=args.project_id).number
            project_deps = []

        self.services = [
            gcp.projects.Service(
                f"{name}-api-{api}",
                project=self.project_id,
                service=f"{api}.googleapis.com",
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=project_deps, provider=self.bootstrap_provider
                ),
            )
            for api in REQUIRED_APIS
        ]
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(self.services))

        self.firebase = gcp.firebase.Project(
            f"{name}-firebase",
            project=self.project_id,
            opts=after_apis.merge(pulumi.ResourceOptions(import_=ids["firebase"] if adopted else None)),
        )
        destroyable = args.environment == "preview"
        after_firebase = pulumi.ResourceOptions(parent=self, depends_on=[*self.services, self.firebase])

        self.database = gcp.firestore.Database(
            f"{name}-firestore",
            project=self.project_id,
            name=DEFAULT_DATABASE,
            location_id=args.firestore_location or args.region,
            type="FIRESTORE_NATIVE",
            concurrency_mode="PESSIMISTIC",
            app_engine_integration_mode="DISABLED",
            point_in_time_recovery_enablement="POINT_IN_TIME_RECOVERY_ENABLED",
            delete_protection_state="DELETE_PROTECTION_DISABLED"
            if destroyable
            else "DELETE_PROTECTION_ENABLED",
            # Outside preview environments the data outlives the stack: `pulumi destroy` forgets the
            # database, it does not delete it.
            deletion_policy="DELETE" if destroyable else "ABANDON",
            # A second (default) cannot exist: a replacement (location or type change) must delete first.
            opts=after_firebase.merge(
                pulumi.ResourceOptions(
                    delete_before_replace=True,
                    import_=ids["database"] if adopted else None,
                    ignore_changes=list(ADOPTED_DATABASE_SETTINGS) if args.adopting else None,
                )
            ),
        )
        self.database_name = self.database.name
        after_database = pulumi.ResourceOptions(parent=self, depends_on=[self.database])

        self.ruleset = gcp.firebaserules.Ruleset(
            f"{name}-firestore-rules",
            project=self.project_id,
            source=gcp.firebaserules.RulesetSourceArgs(
                files=[
                    gcp.firebaserules.RulesetSourceFileArgs(
                        name="firestore.rules", content=args.firestore_rules
                    )
                ]
            ),
            opts=after_database,
        )
        self.rules_release = gcp.firebaserules.Release(
            f"{name}-firestore-rules-release",
            project=self.project_id,
            name=FIRESTORE_RELEASE,
            ruleset_name=pulumi.Output.concat("projects/", self.project_id, "/rulesets/", self.ruleset.name),
            # ruleset_name is ForceNew and the provider has no in-place update (google-beta@93c65b2
            # services/firebaserules/resource_firebaserules_release.go L63-66; Update at L216 only re-reads),
            # so every rules change replaces this release. Its name is fixed, so it must be deleted first;
            # the bridge decides the same (pulumi-terraform-bridge@59de6c6 pkg/tfbridge/provider.go
            # L1275-1276, schema.go L193 nameRequiresDeleteBeforeReplace: an auto-named `name` set
            # explicitly), stated here so it does not hang on that inference.
            # The window without a release is described in docs/architecture.md.
            opts=after_database.merge(
                pulumi.ResourceOptions(
                    delete_before_replace=True,
                    import_=ids["rules_release"] if adopted else None,
                    # Adopting: the release points at the project's current ruleset until the next phase.
                    ignore_changes=["rulesetName"] if args.adopting else None,
                )
            ),
        )

        self.indexes = [
            gcp.firestore.Index(
                f"{name}-index-{index.slug}",
                project=self.project_id,
                database=self.database.name,
                collection=index.collection_group,
                query_scope=index.query_scope,
                fields=[
                    gcp.firestore.IndexFieldArgs(
                        field_path=f.field_path, order=f.order, array_config=f.array_config
                    )
                    for f in index.fields
                ],
                opts=after_database,
            )
            for index in args.indexes
        ]

        # The Firebase-hosted auth handler domains must stay authorized for redirect sign-in flows.
        authorized = [
            *args.authorized_domains,
            f"{args.project_id}.firebaseapp.com",
            f"{args.project_id}.web.app",
        ]
        self.auth: gcp.identityplatform.Config | None = None
        if args.identity_platform:
            self.auth = gcp.identityplatform.Config(
                f"{name}-auth",
                project=self.project_id,
                authorized_domains=list(dict.fromkeys(authorized)),
                sign_in=gcp.identityplatform.ConfigSignInArgs(
                    email=gcp.identityplatform.ConfigSignInEmailArgs(enabled=True, password_required=True),
                    allow_duplicate_emails=False,
                ),
                # One config per project: adopted, it is imported (Identity Platform already turned on).
                opts=after_firebase.merge(
                    pulumi.ResourceOptions(
                        delete_before_replace=True, import_=ids["auth"] if adopted else None
                    )
                ),
            )

        # Eventarc's service agent must exist (and have had minutes to receive its role) before the
        # Firestore trigger is created; creating it here, in the first phase, gives it that time.
        self.eventarc_agent = gcp.projects.ServiceIdentity(
            f"{name}-eventarc-agent",
            project=self.project_id,
            service="eventarc.googleapis.com",
            opts=after_apis,
        )

        self.register_outputs(
            {
                "project_id": self.project_id,
                "project_number": self.project_number,
                "database": self.database.name,
                "rules_release": self.rules_release.name,
            }
        )
