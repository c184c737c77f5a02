"""`make diff` end to end: fixture changes in a temporary clone give exactly the expected steps and exits.

One clone per session; its first commit is the base (evaluated once, then cached in its build/), each
test edits the working tree, runs the diff for staging and restores the tree.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tools.exit_codes import ExitCode
from tools.offline.diff import program_diff as diff

ROOT = Path(__file__).resolve().parents[4]
PLANTED_ZENDESK = "Zk9" + "q7Wm2x" * 6 + "b"  # 40 alphanumerics, no prefix: only the scan knows it
PLANTED_STRIPE = "sk_live_" + "51PlantedFakeKey" * 2


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture(scope="session")
def clone(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The working tree as it is (tracked and untracked files, no ignored ones) committed in a fresh repo,
    configured with a founder's own values (tests/founder/): a base still holding the template's example
    values would be a first configuration, which the diff does not gate."""
    target = tmp_path_factory.mktemp("clone")
    files = _git(ROOT, "ls-files", "-co", "--exclude-standard", "-z").split("\0")
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    for stack_file in (ROOT / "tests" / "founder").glob("Pulumi.*.yaml"):
        shutil.copy2(stack_file, target / stack_file.name)
    _git(target, "init", "-q", "-b", "main")
    _git(target, "add", "-A")
    _git(target, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    return target


Run = Callable[..., tuple[int, dict[str, Any], str, str]]


@pytest.fixture
def run_diff(clone: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Run]:
    def run(allow_destructive: bool = False) -> tuple[int, dict[str, Any], str, str]:
        for name in ("diff.md", "diff.json"):
            (clone / "build" / name).unlink(missing_ok=True)
        code = diff.run(
            "main", stacks=["staging"], policy=False, allow_destructive=allow_destructive, root=clone
        )
        out = capsys.readouterr()
        report = clone / "build" / "diff.json"
        data = json.loads(report.read_text(encoding="utf-8")) if report.is_file() else {}
        return code, data, out.out, out.err

    yield run
    _git(clone, "checkout", "-q", "--", ".")
    _git(clone, "clean", "-qfd", "-e", "build")


def ops(data: dict[str, Any]) -> dict[str, list[str]]:
    """{op: [resource names]} of the staging steps that are not `same`."""
    result: dict[str, list[str]] = {}
    for step in data["stacks"]["staging"]["steps"]:
        if step["op"] != "same":
            result.setdefault(step["op"], []).append(step["urn"].rsplit("::", 1)[-1])
    return {op: sorted(names) for op, names in result.items()}


def step(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in data["stacks"]["staging"]["steps"] if s["urn"].endswith(f"::{name}"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def edit_catalog(clone: Path, change: Callable[[dict[str, Any]], None]) -> None:
    path = clone / "components" / "data" / "catalog.json"
    catalog = json.loads(path.read_text(encoding="utf-8"))
    change(catalog)
    path.write_text(json.dumps(catalog, indent=2), encoding="utf-8")


def function(catalog: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in catalog["functions"] if f["name"] == name)


def test_no_change_lists_nothing_and_reuses_the_cached_base(run_diff: Run, clone: Path) -> None:
    code, data, _, err = run_diff()
    assert code == 0
    assert ops(data) == {}
    assert set(data["stacks"]["staging"]["changeSummary"]) == {"same"}
    markdown = (clone / "build" / "diff.md").read_text(encoding="utf-8")
    assert "No changes in any stack." in markdown and "<details>" not in markdown
    code, _, _, err = run_diff()
    assert code == 0 and "from cache" in err


def test_function_memory_is_an_update_of_that_function_only(run_diff: Run, clone: Path) -> None:
    edit_catalog(clone, lambda c: function(c, "stripe_webhook")["limits"].update(memory="512Mi"))
    code, data, _, _ = run_diff()
    assert code == 0
    # The catalog is deploy-time data outside the archived source: no archive changes.
    assert ops(data) == {"update": ["functions-stripe-webhook"]}
    webhook = step(data, "functions-stripe-webhook")
    assert webhook["detailedDiff"] == {"serviceConfig.availableMemory": {"kind": "update", "inputDiff": True}}
    markdown = (clone / "build" / "diff.md").read_text(encoding="utf-8")
    assert 'serviceConfig.availableMemory: "256Mi" -> "512Mi"' in markdown


def test_a_handler_change_redeploys_that_function_only(run_diff: Run, clone: Path) -> None:
    handler = clone / "functions_src" / "launchready" / "handlers" / "ops_digest.py"
    handler.write_text(handler.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    code, data, _, _ = run_diff()
    assert code == 0
    # Its archive is a new object (the name carries the hash); the function is rebuilt from it.
    assert ops(data) == {"replace": ["functions-ops-digest-source"], "update": ["functions-ops-digest"]}
    assert step(data, "functions-ops-digest-source")["replaceReasons"] == ["name", "source"]


def test_a_shared_module_change_redeploys_exactly_the_functions_importing_it(
        run_diff: Run, clone: Path) -> None:
    adapter = clone / "functions_src" / "launchready" / "providers" / "hubspot.py"
    adapter.write_text(adapter.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    code, data, _, _ = run_diff()
    assert code == 0
    assert ops(data) == {
        "replace": ["functions-crm-worker-source", "functions-user-deleted-source"],
        "update": ["functions-crm-worker", "functions-user-deleted"],
    }


def test_a_timeout_change_reaches_that_function_only(run_diff: Run, clone: Path) -> None:
    edit_catalog(clone, lambda c: function(c, "support_request")["limits"].update(timeout_seconds=45))
    code, data, _, _ = run_diff()
    assert code == 0
    assert ops(data) == {"update": ["functions-support-request"]}
    assert set(step(data, "functions-support-request")["detailedDiff"]) == {
        "serviceConfig.timeoutSeconds", "serviceConfig.environmentVariables.LAUNCHREADY_TIMEOUT_SECONDS"}


def test_firestore_location_is_a_destructive_replacement_that_fails_unacknowledged(
    run_diff: Run, clone: Path
) -> None:
    edit(clone / "Pulumi.staging.yaml", "firestoreLocation: europe-west1", "firestoreLocation: eur3")
    code, data, _, err = run_diff()
    assert code == 1 and "not acknowledged" in err
    # Both Firestore-triggered functions follow the database's region.
    assert ops(data) == {
        "replace": ["project-firestore"],
        "update": ["functions-user-created", "functions-user-deleted"],
    }
    firestore = step(data, "project-firestore")
    assert firestore["replaceReasons"] == ["locationId"]
    assert firestore["detailedDiff"] == {"locationId": {"kind": "update-replace", "inputDiff": True}}
    assert firestore["launchready"]["destructive"]
    for trigger in ("functions-user-created", "functions-user-deleted"):
        assert list(step(data, trigger)["detailedDiff"]) == ["eventTrigger.triggerRegion"]
    summary = (clone / "build" / "diff.md").read_text(encoding="utf-8").split("<details>")[0]
    assert "**not acknowledged**" in summary and "project-firestore" in summary


def test_renamed_component_pairs_every_resource_with_the_alias_that_keeps_it(
    run_diff: Run, clone: Path
) -> None:
    edit(clone / "__main__.py", 'Secrets(\n        "secrets",', 'Secrets(\n        "app-secrets",')
    code, data, _, _ = run_diff(allow_destructive=True)
    assert code == 0  # destructive (six secrets deleted without the alias) but acknowledged
    found = ops(data)
    assert set(found) == {"create", "delete"}
    assert found["create"] == sorted("app-" + name for name in found["delete"])
    for created in found["create"]:
        entry = step(data, created)
        old_urn = entry["urn"].replace("app-secrets", "secrets")
        assert entry["launchready"]["probableRenameOf"] == old_urn
        assert entry["launchready"]["aliases"] == [old_urn]
    markdown = (clone / "build" / "diff.md").read_text(encoding="utf-8")
    summary = markdown.split("<details>")[0]
    assert "acknowledged (ACK_DESTRUCTIVE=1)" in summary
    assert summary.count("deletes a data-bearing gcp:secretmanager/secret:Secret") == 6
    assert "pulumi.ResourceOptions(aliases=[" in markdown


def test_deleted_secret_is_destructive(run_diff: Run, clone: Path) -> None:
    edit_catalog(clone, lambda c: function(c, "email_worker").update(secrets=[]))
    code, data, _, _ = run_diff()
    assert code == 1
    assert ops(data) == {
        "delete": ["secrets-resend-api-key", "secrets-resend-api-key-email-worker-accessor"],
        "update": ["functions-email-worker"],
    }
    assert step(data, "secrets-resend-api-key")["launchready"]["destructive"]
    assert "launchready" not in step(data, "secrets-resend-api-key-email-worker-accessor")
    email = step(data, "functions-email-worker")["detailedDiff"]
    assert email["serviceConfig.secretEnvironmentVariables[0]"]["kind"] == "delete"


def test_config_only_change(run_diff: Run, clone: Path) -> None:
    edit(clone / "Pulumi.staging.yaml", "logRetentionDays: 30", "logRetentionDays: 60")
    code, data, _, _ = run_diff()
    assert code == 0
    assert ops(data) == {"update": ["monitoring-log-retention"]}
    assert step(data, "monitoring-log-retention")["detailedDiff"] == {
        "retentionDays": {"kind": "update", "inputDiff": True}
    }
    assert "retentionDays: 30 -> 60" in (clone / "build" / "diff.md").read_text(encoding="utf-8")


def test_planted_credential_is_redacted_by_construction(run_diff: Run, clone: Path) -> None:
    edit_catalog(clone, lambda c: function(c, "email_worker")["env"].update(STRIPE_RESTRICTED=PLANTED_STRIPE))
    code, data, out, err = run_diff()
    assert code == 0
    written = "".join(
        (clone / "build" / n).read_text(encoding="utf-8") for n in ("diff.md", "diff-full.md", "diff.json")
    )
    assert PLANTED_STRIPE not in written + out + err
    email = step(data, "functions-email-worker")
    assert email["detailedDiff"]["serviceConfig.environmentVariables.STRIPE_RESTRICTED"]["kind"] == "add"
    assert email["newState"]["inputs"]["serviceConfig"]["environmentVariables"]["STRIPE_RESTRICTED"] == (
        "[credential-shaped plaintext]"
    )


def test_credential_that_escapes_redaction_fails_the_command_with_nothing_written(
    run_diff: Run, clone: Path
) -> None:
    # No provider prefix and a key name the plan does not treat as a credential: only the scan sees it.
    edit_catalog(clone, lambda c: function(c, "support_worker")["env"].update(ZENDESK_TOKEN=PLANTED_ZENDESK))
    code, _, out, err = run_diff()
    assert code == ExitCode.WITHHELD
    assert "Zendesk API token" in err and "nothing written" in err
    assert PLANTED_ZENDESK not in out + err
    assert not (clone / "build" / "diff.md").exists() and not (clone / "build" / "diff.json").exists()
    assert re.search(r"diff\.json:\d+: a Zendesk API token shape", err)


def test_unknown_base_is_an_error_with_nothing_written(
    run_diff: Run, clone: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = diff.run("no-such-ref", root=clone)
    assert code == 2
    assert "error: 'no-such-ref' is not a commit in this repository" in capsys.readouterr().err
    assert not (clone / "build" / "diff.md").exists()
    assert "no-such-ref" not in _git(clone, "worktree", "list")
