"""The preflight on prod's real offline plan against fake Google APIs whose every body is checked against
the API's discovery document (orgpolicy v2, pubsub v1, secretmanager v1, iam v1, firebasehosting
v1beta1, as shipped in google-api-python-client)."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import shutil
from collections.abc import Collection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httplib2
import pytest

from components.stack_config import StackConfig, parse_stack_config
from tests.tools.discovery import checked
from tools.exit_codes import ExitCode
from tools.offline.plan.evaluate import run as plan
from tools.ops.preflight import check
from tools.ops.preflight.google_reads import GoogleReads
from tools.ops.preflight.plan_facts import outside_grants
from tools.project_files import read_stack

ROOT = Path(__file__).resolve().parents[3]
PROJECT = "launch-ready-prod"
# Host -> (api, version) for the discovery document a response is checked against.
APIS = {
    "orgpolicy.googleapis.com": ("orgpolicy", "v2"),
    "pubsub.googleapis.com": ("pubsub", "v1"),
    "secretmanager.googleapis.com": ("secretmanager", "v1"),
    "iam.googleapis.com": ("iam", "v1"),
    "firebasehosting.googleapis.com": ("firebasehosting", "v1beta1"),
}
# Resource name shape -> the schema a GET of it returns.
SCHEMAS = {
    "topics": "Topic",
    "subscriptions": "Subscription",
    "secrets": "Secret",
    "serviceAccounts": "ServiceAccount",
    "sites": "Site",
}


class FakeGoogle:
    """Answers read-only calls as the APIs document: effective policies by constraint, a GET per
    existing resource name (404 otherwise), 403 for the hosts in `denied`."""

    def __init__(
        self,
        policies: dict[str, dict[str, Any]] | None = None,
        existing: Collection[str] = (),
        denied: Collection[str] = (),
    ) -> None:
        self.policies = policies or {}
        self.existing = existing
        self.denied = denied
        self.calls: list[tuple[str, str]] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **_: Any) -> Any:
        parts = urlsplit(uri)
        self.calls.append((method, uri))
        assert method == "GET", "the preflight only reads"
        api, version = APIS[parts.netloc]
        name = parts.path.split("/", 2)[2]
        if parts.netloc in self.denied:
            return self._error(403, "PERMISSION_DENIED")
        if name.endswith(":getEffectivePolicy"):
            name = name.removesuffix(":getEffectivePolicy")
            spec = self.policies.get(name.rsplit("/", 1)[1])
            policy = {"name": name, **({"spec": spec} if spec else {})}
            return self._ok(checked(api, version, "GoogleCloudOrgpolicyV2Policy", policy))
        if name not in self.existing:
            return self._error(404, "NOT_FOUND")
        schema = SCHEMAS[name.split("/")[-2]]
        return self._ok(checked(api, version, schema, {"name": name}))

    @staticmethod
    def _ok(body: dict[str, Any]) -> Any:
        return httplib2.Response({"status": 200}), json.dumps(body).encode()

    @staticmethod
    def _error(status: int, reason: str) -> Any:
        body = {"error": {"code": status, "message": reason.lower(), "status": reason}}
        return httplib2.Response({"status": status}), json.dumps(body).encode()


DRS_ENFORCED = {"rules": [{"values": {"allowedValues": ["C0example1"]}}]}
ENFORCED = {"rules": [{"enforce": True}]}


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """prod's plan as `make plan` writes it (build/plan-prod.json)."""
    root = tmp_path_factory.mktemp("program")
    for name in ("functions_src", "components", "firestore.rules", "firestore.indexes.json", "__main__.py"):
        (root / name).symlink_to(ROOT / name)
    shutil.copy(ROOT / "Pulumi.prod.yaml", root / "Pulumi.prod.yaml")
    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        plan("prod", root=root, quiet=True)
    return json.loads((root / "build" / "plan-prod.json").read_text())


def config(**overrides: Any) -> StackConfig:
    values = {**read_stack("prod", ROOT).config, **overrides}
    return parse_stack_config(values, "prod")


def test_domain_restricted_sharing_refuses_the_public_and_service_agent_grants(
    entries: list[dict[str, Any]],
) -> None:
    fake = FakeGoogle({check.DRS: DRS_ENFORCED})
    verdict = check.preflight(config(), entries, GoogleReads(fake))
    assert verdict.exit_code == ExitCode.FAILED
    public, agents = verdict.problems
    assert f"{check.DRS} on projects/{PROJECT} refuses allUsers roles/run.invoker" in public
    assert "invoker IAM check disabled" in public
    assert "service-" in agents and "@gcp-sa-pubsub.iam.gserviceaccount.com" in agents
    assert "disables it for the project, runs make deploy, and enables it again" in agents


def test_with_the_invoker_check_required_no_public_endpoint_is_possible(
    entries: list[dict[str, Any]],
) -> None:
    fake = FakeGoogle({check.DRS: DRS_ENFORCED, check.REQUIRE_INVOKER_IAM: ENFORCED})
    public = check.preflight(config(), entries, GoogleReads(fake)).problems[0]
    assert "no public endpoint is possible" in public


def test_the_managed_constraint_admits_the_members_it_lists(entries: list[dict[str, Any]]) -> None:
    grants = outside_grants(entries, PROJECT)
    listed = sorted({g.member.split(":", 1)[-1] for g in grants})
    managed = {"rules": [{"enforce": True, "parameters": {"allowedMemberSubjects": listed}}]}
    verdict = check.preflight(config(), entries, GoogleReads(FakeGoogle({check.MANAGED_MEMBERS: managed})))
    assert verdict.problems == []
    assert any("admit the" in line for line in verdict.checked)


def test_a_same_named_resource_in_the_adopted_project_is_a_problem(entries: list[dict[str, Any]]) -> None:
    fake = FakeGoogle(
        existing={f"projects/{PROJECT}/topics/billing-events", f"projects/{PROJECT}/secrets/STRIPE_API_KEY"}
    )
    verdict = check.preflight(config(), entries, GoogleReads(fake))
    assert verdict.exit_code == ExitCode.FAILED
    assert [p.split(" already exists")[0] for p in verdict.problems] == [
        "gcp:pubsub/topic:Topic functions-topic-billing-events",
        "gcp:secretmanager/secret:Secret secrets-stripe-api-key",
    ]


def test_what_has_no_read_is_reported_never_passed(entries: list[dict[str, Any]]) -> None:
    verdict = check.preflight(config(), entries, GoogleReads(FakeGoogle()))
    assert verdict.problems == []
    assert verdict.exit_code == ExitCode.NOT_ALL_CHECKED
    assert any("gcp:cloudfunctionsv2/function:Function" in line for line in verdict.unchecked)


def test_a_refused_read_says_what_to_grant(entries: list[dict[str, Any]]) -> None:
    verdict = check.preflight(config(), entries, GoogleReads(FakeGoogle(denied={"orgpolicy.googleapis.com"})))
    assert verdict.exit_code == ExitCode.NOT_ALL_CHECKED
    assert any(
        "grant the deployer orgpolicy.policy.get (roles/orgpolicy.policyViewer)" in line
        for line in verdict.unchecked
    )


def test_what_it_asks_is_derived_from_the_plan(entries: list[dict[str, Any]]) -> None:
    # A resource type and an outside member the program does not have today are asked about too.
    added = copy.deepcopy(entries)
    added.append(
        {
            "urn": "urn:pulumi:prod::launch-ready::gcp:cloudscheduler/job:Job::nightly",
            "type": "gcp:cloudscheduler/job:Job",
            "inputs": {"name": "nightly"},
            "options": {},
        }
    )
    added.append(
        {
            "urn": "urn:pulumi:prod::launch-ready::gcp:pubsub/topicIAMMember:TopicIAMMember::play",
            "type": "gcp:pubsub/topicIAMMember:TopicIAMMember",
            "options": {},
            "inputs": {
                "member": "serviceAccount:google-play-developer-notifications@system.gserviceaccount.com",
                "role": "roles/pubsub.publisher",
            },
        }
    )
    verdict = check.preflight(config(), added, GoogleReads(FakeGoogle({check.DRS: DRS_ENFORCED})))
    assert any("google-play-developer-notifications" in line for line in verdict.problems)
    jobs = sum(entry["type"] == "gcp:cloudscheduler/job:Job" for entry in added)
    assert jobs >= 2
    assert any(line.startswith(f"{jobs} gcp:cloudscheduler/job:Job") for line in verdict.unchecked)


def test_a_project_created_now_reads_its_folder_and_skips_project_resources(
    entries: list[dict[str, Any]],
) -> None:
    fake = FakeGoogle({check.DRS: DRS_ENFORCED}, existing={f"projects/{PROJECT}/topics/billing-events"})
    created = config(
        **{
            "launchready:createProject": True,
            "launchready:billingAccount": "012345-6789AB-CDEF01",
            "launchready:folderId": "123456789012",
        }
    )
    verdict = check.preflight(created, entries, GoogleReads(fake))
    assert all("on folders/123456789012 refuses" in line for line in verdict.problems)
    assert not any("topics" in uri for _, uri in fake.calls)


def test_run_reads_the_plan_file_and_prints_one_line_per_finding(
    entries: list[dict[str, Any]], tmp_path: Path
) -> None:
    (tmp_path / "build").mkdir()
    shutil.copy(ROOT / "Pulumi.prod.yaml", tmp_path / "Pulumi.prod.yaml")
    assert check.run("prod", tmp_path, GoogleReads(FakeGoogle())) == ExitCode.USAGE  # no plan yet
    (tmp_path / "build" / "plan-prod.json").write_text(json.dumps(entries))
    lines: list[str] = []
    status = check.run("prod", tmp_path, GoogleReads(FakeGoogle({check.DRS: DRS_ENFORCED})), out=lines.append)
    assert status == ExitCode.FAILED
    assert lines[0].startswith("problem: ") and "  fix: " in lines[0]
