"""Shared fixtures for the Pulumi program's unit tests (all offline, under tools.offline.mocks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from components.catalog import Catalog, load_catalog
from tools.offline.mocks import PlanMocks
from tools.offline.plan import evaluate_stack

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog(ROOT / "functions_src" / "catalog.json")


def stack_values(stack: str) -> dict[str, Any]:
    """The `launchready:*` and `gcp:*` values of Pulumi.<stack>.yaml, as YAML gives them."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))
    return {k: v for k, v in document["config"].items() if k.startswith(("launchready:", "gcp:"))}


@pytest.fixture(scope="session")
def staging() -> PlanMocks:
    """The whole program evaluated with Pulumi.staging.yaml."""
    return evaluate_stack("staging", ROOT)


@pytest.fixture(scope="session")
def prod() -> PlanMocks:
    """The whole program evaluated with Pulumi.prod.yaml."""
    return evaluate_stack("prod", ROOT)


@pytest.fixture(scope="session", params=["staging", "prod"])
def stack_plan(request: pytest.FixtureRequest) -> PlanMocks:
    return request.getfixturevalue(request.param)
