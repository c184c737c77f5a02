"""What the pull-request workflows promise: make test runs on every pull request, read-only, and a
mandatory policy violation fails the diff check after its comment is uploaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOWS = Path(__file__).resolve().parents[2] / ".github" / "workflows"


def _workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def _triggers(workflow: dict[Any, Any]) -> dict[str, Any]:
    # YAML 1.1 reads the key `on` as True.
    return workflow.get("on") or workflow.get(True) or {}


def test_make_test_runs_on_every_pull_request_read_only() -> None:
    runs_make_test = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        workflow = _workflow(path.name)
        if "pull_request" not in _triggers(workflow):
            continue
        steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
        if any(str(step.get("run", "")).strip() == "make test" for step in steps):
            runs_make_test.append(path.name)
            assert workflow["permissions"] == {"contents": "read"}, path.name
            assert all(
                step.get("with", {}).get("persist-credentials") is False
                for step in steps
                if str(step.get("uses", "")).startswith("actions/checkout@")
            )
    assert runs_make_test, "no pull_request workflow runs `make test`"


def test_a_policy_violation_fails_the_diff_check_after_the_upload() -> None:
    steps = _workflow("pr-diff.yml")["jobs"]["diff"]["steps"]
    names = [step.get("name") or step.get("uses", "") for step in steps]
    policy = next(i for i, step in enumerate(steps) if step.get("id") == "policy")
    upload = next(i for i, name in enumerate(names) if name.startswith("actions/upload-artifact@"))
    gates = [str(step.get("if", "")) for step in steps]
    failing = next(i for i, gate in enumerate(gates) if "steps.policy.outputs.failed" in gate)
    assert policy < upload < failing
    assert "|| echo" not in steps[policy]["run"]  # a failed policy run is recorded, not only a warning
    assert "exit 1" in steps[failing]["run"]
