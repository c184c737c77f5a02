"""Secrets: one container per catalog secret, no values, accessor role only for declaring functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.catalog import Catalog, parse_catalog
from components.secrets import ACCESSOR_ROLE, Secrets, SecretsArgs
from tools.offline.plan.mocks import PlanMocks, run_under_mocks

ROOT = Path(__file__).resolve().parents[2]
SECRET = "gcp:secretmanager/secret:Secret"
ACCESSOR = "gcp:secretmanager/secretIamMember:SecretIamMember"


def shared_secret_catalog() -> Catalog:
    """The real catalog plus a second function that shares STRIPE_API_KEY."""
    raw = json.loads((ROOT / "components" / "data" / "catalog.json").read_text())
    checkout = next(e for e in raw["functions"] if e["name"] == "create_checkout")
    raw["functions"].append({**checkout, "name": "billing_portal", "entry_point": "billing_portal"})
    return parse_catalog(raw)


def email(function: str) -> str:
    return f"fn-{function.replace('_', '-')}@acme-staging.iam.gserviceaccount.com"


def build(catalog: Catalog) -> PlanMocks:
    mocks = PlanMocks()
    mocks.install()
    args = SecretsArgs(
        project_id="acme-staging",
        catalog=catalog,
        function_service_accounts={spec.name: email(spec.name) for spec in catalog.functions},
    )
    run_under_mocks(lambda: Secrets("secrets", args))
    return mocks


@pytest.fixture(scope="module")
def shared() -> tuple[Catalog, PlanMocks]:
    catalog = shared_secret_catalog()
    return catalog, build(catalog)


def test_one_secret_per_catalog_name_with_automatic_replication(shared: tuple[Catalog, PlanMocks]) -> None:
    catalog, mocks = shared
    secrets = mocks.of_type(SECRET)
    assert sorted(s.inputs["secretId"] for s in secrets) == list(catalog.secret_names)
    assert all(s.inputs["replication"] == {"auto": {}} for s in secrets)
    assert all(s.parent == "secrets" for s in secrets)


def test_no_secret_value_passes_through_the_program(shared: tuple[Catalog, PlanMocks]) -> None:
    _, mocks = shared
    assert not [r for r in mocks.resources if r.type.startswith("gcp:secretmanager/secretVersion")]


def test_each_accessor_binding_goes_only_to_declaring_functions(shared: tuple[Catalog, PlanMocks]) -> None:
    catalog, mocks = shared
    granted: dict[str, set[str]] = {}
    for binding in mocks.of_type(ACCESSOR):
        assert binding.inputs["role"] == ACCESSOR_ROLE
        granted.setdefault(binding.inputs["secretId"], set()).add(binding.inputs["member"])
    expected = {
        secret: {f"serviceAccount:{email(spec.name)}" for spec in catalog.functions_using_secret(secret)}
        for secret in catalog.secret_names
    }
    assert granted == expected
    # The shared secret reaches each of its users and nobody else.
    users = {spec.name for spec in catalog.functions_using_secret("STRIPE_API_KEY")}
    assert {"create_checkout", "user_deleted", "billing_worker", "billing_portal"} <= users
    assert granted["STRIPE_API_KEY"] == {f"serviceAccount:{email(name)}" for name in users}


def test_whole_program_grants_match_the_catalog(staging: PlanMocks, catalog: Catalog) -> None:
    granted = {(b.inputs["secretId"], b.inputs["member"]) for b in staging.of_type(ACCESSOR)}
    expected = {
        (secret, f"serviceAccount:fn-{spec.resource_name}@launch-ready-staging.iam.gserviceaccount.com")
        for secret in catalog.secret_names
        for spec in catalog.functions_using_secret(secret)
    }
    assert granted == expected
