"""The catalog loader: typed view of components/data/catalog.json and readable errors for bad entries."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.catalog import Catalog, CatalogError, parse_catalog

ROOT = Path(__file__).resolve().parents[2]


def raw_catalog() -> dict[str, Any]:
    return json.loads((ROOT / "components" / "data" / "catalog.json").read_text())


def test_loads_every_function_with_typed_fields(catalog: Catalog) -> None:
    names = {spec.name for spec in catalog.functions}
    assert {"stripe_webhook", "billing_worker", "user_created", "ops_digest"} <= names
    webhook = catalog.function("stripe_webhook")
    assert webhook.trigger.type == "http" and webhook.trigger.public
    assert webhook.trigger.path == "/v1/stripe/webhook"
    assert webhook.limits.timeout_seconds == 30
    assert webhook.resource_name == "stripe-webhook"


def test_a_prefix_route_has_a_base_path_and_a_health_probe(catalog: Catalog) -> None:
    console = catalog.function("ops_console").trigger
    assert (console.is_prefix, console.path, console.base_path, console.probe_path) == (
        True,
        "/ops/**",
        "/ops/",
        "/ops/healthz",
    )
    webhook = catalog.function("stripe_webhook").trigger
    assert not webhook.is_prefix and webhook.base_path == webhook.probe_path == "/v1/stripe/webhook"


def test_secret_names_are_the_union_over_functions(catalog: Catalog) -> None:
    expected = sorted({secret for entry in raw_catalog()["functions"] for secret in entry["secrets"]})
    assert list(catalog.secret_names) == expected
    assert [spec.name for spec in catalog.functions_using_secret("ZENDESK_API_TOKEN")] == ["support_worker"]


def test_public_http_are_exactly_the_public_http_entries(catalog: Catalog) -> None:
    expected = [
        e["name"]
        for e in raw_catalog()["functions"]
        if e["trigger"]["type"] == "http" and e["trigger"].get("public")
    ]
    assert [spec.name for spec in catalog.public_http] == expected


def entry(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(e for e in raw["functions"] if e["name"] == name)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda c: entry(c, "stripe_webhook").pop("entry_point"),
            "function 'stripe_webhook': 'entry_point' is missing",
        ),
        (
            lambda c: entry(c, "crm_worker")["trigger"].update(topic="nope"),
            "trigger topic 'nope' is not in the",
        ),
        (
            lambda c: entry(c, "stripe_webhook").update(publishes=["ghost"]),
            "publishes to unknown topics ['ghost']",
        ),
        (
            lambda c: entry(c, "crm_worker")["limits"].update(max_instances="20"),
            "'max_instances' must be int",
        ),
        (
            lambda c: entry(c, "crm_worker").update(name="stripe_webhook"),
            "duplicate function names ['stripe_webhook']",
        ),
        (lambda c: entry(c, "stripe_webhook")["trigger"].pop("path"), "public http trigger needs a 'path'"),
        (
            lambda c: entry(c, "user_deleted")["trigger"].update(event="updated"),
            "firestore event 'updated' is not one of created, deleted",
        ),
        (
            lambda c: entry(c, "ops_console")["trigger"].update(path="/ops/*/x"),
            "may only end in '/**'",
        ),
        (
            lambda c: entry(c, "ops_console")["trigger"].update(path="/ops*"),
            "may only end in '/**'",
        ),
        (
            lambda c: entry(c, "support_request")["trigger"].update(path="v1/support"),
            "public http trigger needs a 'path' starting with '/'",
        ),
        (
            lambda c: entry(c, "support_request")["trigger"].update(path='/v1/"support"'),
            "is not a URL path",
        ),
        (lambda c: entry(c, "support_request")["trigger"].update(path="/v1/sup port"), "is not a URL path"),
        (lambda c: entry(c, "crm_worker").update(name="CRM_worker"), "a name is lowercase letters"),
        (lambda c: entry(c, "crm_worker").update(name="crm_worker_"), "a name is lowercase letters"),
        (
            lambda c: c.update(topics=[], functions=[{**entry(c, "stripe_webhook"), "publishes": []}]),
            "'topics' is empty",
        ),
        (
            lambda c: c.update(functions=[entry(c, "ops_console")]),
            "no public http function with an exact path",
        ),
        (lambda c: c.update(functions=[]), "no public http function with an exact path"),
        (lambda c: entry(c, "crm_worker").pop("roles"), "function 'crm_worker': 'roles' is missing"),
        (
            lambda c: entry(c, "crm_worker").update(roles=[{"role": "roles/editor"}]),
            "function 'crm_worker' roles[0]: 'reason' is missing",
        ),
        (
            lambda c: entry(c, "crm_worker").update(roles=[{"role": "editor", "reason": "why"}]),
            "needs a predefined role (roles/...)",
        ),
        (
            lambda c: entry(c, "crm_worker").update(roles=[{"role": "roles/datastore.user", "reason": "x"}]),
            "function 'crm_worker': a role is listed twice",
        ),
        (lambda c: c["common_roles"][0].update(reason=" "), "catalog common_roles[0]: needs a predefined"),
    ],
)
def test_malformed_catalog_names_the_entry_and_field(mutate: Any, message: str) -> None:
    raw = copy.deepcopy(raw_catalog())
    mutate(raw)
    with pytest.raises(CatalogError) as raised:
        parse_catalog(raw)
    assert message in str(raised.value)


def test_a_functions_project_roles_are_the_common_ones_then_its_own(catalog: Catalog) -> None:
    raw = raw_catalog()
    for spec in catalog.functions:
        listed = [g["role"] for g in (*raw["common_roles"], *entry(raw, spec.name)["roles"])]
        assert [grant.role for grant in catalog.project_roles(spec)] == listed
        assert all(grant.reason.strip() for grant in catalog.project_roles(spec))


def test_a_function_the_program_names_must_be_in_the_catalog(catalog: Catalog) -> None:
    # __main__ resolves the webhook (monitoring, the stripeWebhookUrl output) through the catalog.
    with pytest.raises(KeyError, match="stripe_hook"):
        catalog.function("stripe_hook")


def test_loader_imports_without_pulumi() -> None:
    # The local runner imports the catalog in processes that have no Pulumi SDK; the policy pack imports it
    # with the setting types and the data-bearing types in .venv-policy, which has no provider SDK.
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def guard(name, *a, **k):\n"
        "    if name.split('.')[0].startswith('pulumi'):\n"
        "        raise ImportError('pulumi must not be imported')\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = guard\n"
        "import components.config_types, components.data_bearing\n"
        "from components.catalog import load_catalog\n"
        "print(len(load_catalog().functions))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == len(raw_catalog()["functions"])
