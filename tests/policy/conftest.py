"""Policy tests run in .venv-policy (`make test-policy`), on the offline plans `make plan` writes."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "policy")]

from tools.offline.policy import runner  # noqa: E402
from tools.project_files import engine_config, read_stack  # noqa: E402

STACKS = ("staging", "prod")
PROJECT = "launch-ready"


def plan_path(stack: str) -> Path:
    return REPO / "build" / f"plan-{stack}.json"


@pytest.fixture(scope="session")
def plans() -> dict[str, list[dict[str, Any]]]:
    """Both stacks' offline plans; written with the program's own .venv when missing."""
    for stack in STACKS:
        if not plan_path(stack).is_file():
            subprocess.run(
                [str(REPO / ".venv/bin/python"), "-m", "tools", "plan", "--stack", stack, "--quiet"],
                cwd=REPO,
                check=True,
            )
    return {stack: runner.load_plan(plan_path(stack)) for stack in STACKS}


def stack_config(stack: str) -> dict[str, str]:
    config, _ = engine_config(read_stack(stack, REPO))
    return config


def pack_config(stack: str) -> dict[str, dict[str, Any]]:
    return runner.policy_configs(REPO / "policy" / f"config.{stack}.json", runner.POLICIES)


def run(
    plan: Sequence[dict[str, Any]],
    stack: str,
    only: Iterable[str] | None = None,
    config: dict[str, dict[str, Any]] | None = None,
) -> list[runner.Finding]:
    """The pack (or the named policies) on `plan` the way `make policy` runs it."""
    names = set(only) if only is not None else None
    policies = [p for p in runner.POLICIES if names is None or p.name in names]
    configs = config if config is not None else pack_config(stack)
    return runner.run_policies(
        plan, stack, stack_config(stack), {p.name: configs[p.name] for p in policies}, policies
    )


def violations(findings: Iterable[runner.Finding], policy: str) -> list[runner.Finding]:
    return [f for f in findings if f.policy == policy and f.kind == "violation"]


def entry(plan: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    (found,) = [e for e in plan if e["name"] == name]
    return found


def mutated(plan: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return copy.deepcopy(list(plan))


def resource(
    typ: str,
    name: str,
    inputs: dict[str, Any],
    stack: str = "staging",
    parent: str | None = None,
    protect: bool = False,
    depends_on: Sequence[str] = (),
) -> dict[str, Any]:
    """One plan entry in the shape tools.offline.plan.evaluate writes."""
    return {
        "urn": f"urn:pulumi:{stack}::{PROJECT}::{typ}::{name}",
        "type": typ,
        "name": name,
        "parent": parent,
        "inputs": inputs,
        "options": {
            "protect": protect,
            "deleteBeforeReplace": False,
            "retainOnDelete": False,
            "importId": None,
            "aliases": [],
            "ignoreChanges": [],
            "dependsOn": list(depends_on),
            "provider": None,
        },
    }
