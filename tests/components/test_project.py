"""Project, Firebase, Firestore (PITR, delete protection, rules, indexes) and Identity Platform."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.project import (
    REQUIRED_APIS,
    CompositeIndex,
    FirebaseProject,
    IndexField,
    NewProjectSpec,
    ProjectArgs,
    parse_indexes,
)
from tools.offline.plan.mocks import PlanMocks, run_under_mocks

RULES = "rules_version = '2';\nservice cloud.firestore { match /databases/{database}/documents { } }\n"
INDEX = CompositeIndex(
    "support_requests", "COLLECTION", (IndexField("uid", "ASCENDING"), IndexField("created_at", "DESCENDING"))
)


def build(new_project: NewProjectSpec | None, environment: str = "staging") -> PlanMocks:
    mocks = PlanMocks()
    mocks.install()
    args = ProjectArgs(
        project_id="acme-staging",
        region="europe-west1",
        firestore_rules=RULES,
        authorized_domains=["app.acme.dev", "localhost"],
        indexes=(INDEX,),
        new_project=new_project,
        identity_platform=new_project is not None,
        environment=environment,
    )
    run_under_mocks(lambda: FirebaseProject("project", args))
    return mocks


@pytest.fixture(scope="module")
def created() -> PlanMocks:
    return build(NewProjectSpec(billing_account="01A2B3-C4D5E6-F7A8B9", folder_id="123456789012"))


@pytest.fixture(scope="module")
def adopted() -> PlanMocks:
    return build(None)


def test_new_project_is_billed_under_the_folder_and_protected(created: PlanMocks) -> None:
    project = created.named("gcp:organizations/project:Project", "project-project")
    assert project.inputs["projectId"] == "acme-staging"
    assert project.inputs["billingAccount"] == "01A2B3-C4D5E6-F7A8B9"
    assert project.inputs["folderId"] == "123456789012" and "orgId" not in project.inputs
    assert project.inputs["labels"]["firebase"] == "enabled"
    assert project.inputs["deletionPolicy"] == "PREVENT"
    assert project.inputs["autoCreateNetwork"] is False


def test_adopted_project_is_not_created(adopted: PlanMocks) -> None:
    assert adopted.of_type("gcp:organizations/project:Project") == []
    assert {s.inputs["project"] for s in adopted.of_type("gcp:projects/service:Service")} == {"acme-staging"}


def test_required_apis_are_enabled_and_never_disabled_on_destroy(created: PlanMocks) -> None:
    services = created.of_type("gcp:projects/service:Service")
    assert {s.inputs["service"] for s in services} == {f"{api}.googleapis.com" for api in REQUIRED_APIS}
    for needed in ("cloudfunctions", "run", "eventarc", "firestore", "identitytoolkit", "firebasehosting"):
        assert f"{needed}.googleapis.com" in {s.inputs["service"] for s in services}
    assert all(s.inputs["disableOnDestroy"] is False for s in services)


def test_firestore_is_native_with_pitr_delete_protection_and_abandon(created: PlanMocks) -> None:
    database = created.named("gcp:firestore/database:Database", "project-firestore")
    assert database.inputs["name"] == "(default)"
    assert database.inputs["type"] == "FIRESTORE_NATIVE"
    assert database.inputs["locationId"] == "europe-west1"
    assert database.inputs["pointInTimeRecoveryEnablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"
    assert database.inputs["deleteProtectionState"] == "DELETE_PROTECTION_ENABLED"
    assert database.inputs["deletionPolicy"] == "ABANDON"


@pytest.mark.parametrize(
    ("environment", "protection", "deletion"),
    [
        ("production", "DELETE_PROTECTION_ENABLED", "ABANDON"),
        ("staging", "DELETE_PROTECTION_ENABLED", "ABANDON"),
        ("preview", "DELETE_PROTECTION_DISABLED", "DELETE"),
    ],
)
def test_firestore_durability_follows_the_environment(
    environment: str, protection: str, deletion: str
) -> None:
    database = build(None, environment).named("gcp:firestore/database:Database", "project-firestore")
    assert database.inputs["deleteProtectionState"] == protection
    assert database.inputs["deletionPolicy"] == deletion
    assert database.inputs["pointInTimeRecoveryEnablement"] == "POINT_IN_TIME_RECOVERY_ENABLED"


def test_rules_are_deployed_and_released_to_cloud_firestore(created: PlanMocks) -> None:
    ruleset = created.named("gcp:firebaserules/ruleset:Ruleset", "project-firestore-rules")
    files = ruleset.inputs["source"]["files"]
    assert files == [{"name": "firestore.rules", "content": RULES}]
    release = created.named("gcp:firebaserules/release:Release", "project-firestore-rules-release")
    assert release.inputs["name"] == "cloud.firestore"
    # The release points at the generated ruleset id under the project.
    assert release.inputs["rulesetName"].startswith("projects/acme-staging/rulesets/")
    assert len(release.inputs["rulesetName"].split("/")[-1]) > 8


def test_composite_indexes_come_from_the_index_file(created: PlanMocks) -> None:
    (index,) = created.of_type("gcp:firestore/index:Index")
    assert index.name == "project-index-support-requests-uid-created-at"
    assert index.inputs["collection"] == "support_requests"
    assert index.inputs["database"] == "(default)"
    assert index.inputs["fields"] == [
        {"fieldPath": "uid", "order": "ASCENDING"},
        {"fieldPath": "created_at", "order": "DESCENDING"},
    ]


def test_identity_platform_allows_email_sign_in_from_authorized_domains(created: PlanMocks) -> None:
    auth = created.named("gcp:identityplatform/config:Config", "project-auth")
    assert auth.inputs["authorizedDomains"] == [
        "app.acme.dev",
        "localhost",
        "acme-staging.firebaseapp.com",
        "acme-staging.web.app",
    ]
    assert auth.inputs["signIn"]["email"] == {"enabled": True, "passwordRequired": True}
    assert auth.inputs["signIn"]["allowDuplicateEmails"] is False


def test_every_child_is_parented_to_the_component(created: PlanMocks) -> None:
    children = [r for r in created.resources if r.custom]
    assert children and all(r.parent == "project" for r in children)
    assert all(r.name.startswith("project-") for r in children)


def test_index_file_parses_and_single_field_indexes_are_rejected(repo_root: Path) -> None:
    indexes = parse_indexes((repo_root / "firestore.indexes.json").read_text())
    assert INDEX in indexes
    with pytest.raises(ValueError, match="needs two or more fields"):
        parse_indexes('{"indexes": [{"collectionGroup": "users", "fields": [{"fieldPath": "a"}]}]}')
