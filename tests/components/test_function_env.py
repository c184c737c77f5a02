"""What each function receives from the catalog as environment variables: only facts it uses, named as
the deployed code reads them, so another function's change never changes its deployment."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from launchready.platform import config

from components import function_env
from components.catalog import DEFAULT_CATALOG_PATH, Catalog, parse_catalog
from components.function_env import catalog_environment

RAW = json.loads(DEFAULT_CATALOG_PATH.read_text(encoding="utf-8"))


def environments(raw: dict[str, Any]) -> dict[str, dict[str, str]]:
    catalog = parse_catalog(raw)
    return {spec.name: catalog_environment(catalog, spec) for spec in catalog.functions}


def test_the_program_writes_the_names_the_code_reads() -> None:
    names = ("TIMEOUT_SECONDS", "PUBLISHES", "MAX_DELIVERY_ATTEMPTS", "MAX_BACKOFF_SECONDS", "FUNCTIONS")
    assert {name: getattr(function_env, name) for name in names} == {
        name: getattr(config, name) for name in names}


def test_each_function_gets_what_its_trigger_and_entry_use(catalog: Catalog) -> None:
    policy = catalog.push_subscription
    for spec in catalog.functions:
        env = catalog_environment(catalog, spec)
        expected = {function_env.TIMEOUT_SECONDS: str(spec.limits.timeout_seconds)}
        if spec.publishes:
            expected[function_env.PUBLISHES] = ",".join(spec.publishes)
        if spec.trigger.type == "pubsub":
            expected[function_env.MAX_DELIVERY_ATTEMPTS] = str(policy.max_delivery_attempts)
            expected[function_env.MAX_BACKOFF_SECONDS] = str(policy.max_backoff_seconds)
        if spec.trigger.type == "firestore":
            expected[function_env.MAX_BACKOFF_SECONDS] = "600"  # Eventarc's, not the push subscription's
        if spec.name == "ops_console":
            expected[function_env.FUNCTIONS] = ",".join(s.name for s in catalog.functions)
        assert env == expected, spec.name


def _function(raw: dict[str, Any], name: str) -> dict[str, Any]:
    return next(entry for entry in raw["functions"] if entry["name"] == name)


CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "timeout": lambda raw: _function(raw, "crm_worker")["limits"].update(timeout_seconds=90),
    "publishes": lambda raw: _function(raw, "crm_worker")["publishes"].append("notifications"),
    "secrets": lambda raw: _function(raw, "crm_worker")["secrets"].append("RESEND_API_KEY"),
    "description": lambda raw: _function(raw, "crm_worker").update(description="changed"),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_to_one_function_changes_only_its_own_environment(change: str) -> None:
    before = environments(RAW)
    raw = copy.deepcopy(RAW)
    CHANGES[change](raw)
    after = environments(raw)
    assert {name for name in before if after[name] != before[name]} <= {"crm_worker"}


def test_the_push_policy_reaches_the_workers_only() -> None:
    raw = copy.deepcopy(RAW)
    raw["push_subscription"].update(max_delivery_attempts=7, max_backoff_seconds=300)
    before, after = environments(RAW), environments(raw)
    workers = {entry["name"] for entry in RAW["functions"] if entry["trigger"]["type"] == "pubsub"}
    assert {name for name in before if after[name] != before[name]} == workers


def test_only_the_console_hears_of_a_new_function() -> None:
    raw = copy.deepcopy(RAW)
    raw["functions"].append({**copy.deepcopy(_function(RAW, "ops_digest")), "name": "weekly_report",
                             "entry_point": "weekly_report"})
    before, after = environments(RAW), environments(raw)
    assert {name for name in before if after[name] != before[name]} == {"ops_console"}
