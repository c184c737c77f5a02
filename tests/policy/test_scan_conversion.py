"""`make scan` converts every resource of both real plans (components have no Terraform counterpart)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.policy.conftest import STACKS
from tools.offline.policy import checkov_scan as policy_scan


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_of_the_real_plan_converts(plans: dict[str, Any], stack: str) -> None:
    plan = plans[stack]
    document, skipped = policy_scan.to_terraform_plan(plan)
    # Components and explicit provider instances have no Terraform resource counterpart.
    not_resources = ("launchready:", "pulumi:providers:")
    assert all(t.startswith(not_resources) for t in skipped)
    assert len(document["resource_changes"]) == sum(
        1 for e in plan if not e["type"].startswith(not_resources)
    )
    addresses = [r["address"] for r in document["planned_values"]["root_module"]["resources"]]
    assert len(addresses) == len(set(addresses))
