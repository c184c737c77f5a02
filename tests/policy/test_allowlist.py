"""policy/exceptions.json: a current exception hides one violation; an expired one hides nothing and
fails policy-exceptions-current."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from launchready_policies.common import EXCEPTIONS_PATH, Allowlist, AllowlistError, load_exceptions

from tests.policy.conftest import entry, mutated, run, violations

TODAY = datetime.date(2026, 6, 1)


@pytest.fixture()
def allowlist(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "exceptions.json"
    Allowlist.use(path)
    Allowlist.fixed_today = TODAY
    yield path
    Allowlist.use(EXCEPTIONS_PATH)
    Allowlist.fixed_today = None


def _write(path: Path, *entries: dict[str, Any]) -> None:
    path.write_text(json.dumps({"exceptions": list(entries)}))


def _public_bucket(plans: dict[str, Any]) -> list[dict[str, Any]]:
    plan = mutated(plans["staging"])
    entry(plan, "functions-source")["inputs"]["publicAccessPrevention"] = "inherited"
    return plan


EXCEPTION = {
    "policy": "storage-bucket-hardening",
    "resource": "functions-source",
    "reason": "migration to enforced prevention under way",
}


def test_the_committed_allowlist_is_valid_and_current() -> None:
    for exception in load_exceptions(EXCEPTIONS_PATH):
        assert not exception.expired(datetime.datetime.now(datetime.UTC).date()), exception


def test_a_current_exception_hides_the_violation(plans: dict[str, Any], allowlist: Path) -> None:
    _write(allowlist, {**EXCEPTION, "expires": "2026-06-30"})
    findings = run(
        _public_bucket(plans), "staging", only=["storage-bucket-hardening", "policy-exceptions-current"]
    )
    assert violations(findings, "storage-bucket-hardening") == []
    assert violations(findings, "policy-exceptions-current") == []


def test_an_exception_covers_only_its_policy_and_resource(plans: dict[str, Any], allowlist: Path) -> None:
    _write(allowlist, {**EXCEPTION, "resource": "another-bucket", "expires": "2026-06-30"})
    assert violations(
        run(_public_bucket(plans), "staging", only=["storage-bucket-hardening"]), "storage-bucket-hardening"
    )


def test_an_expired_exception_fails(plans: dict[str, Any], allowlist: Path) -> None:
    _write(allowlist, {**EXCEPTION, "expires": "2026-05-31"})
    findings = run(
        _public_bucket(plans), "staging", only=["storage-bucket-hardening", "policy-exceptions-current"]
    )
    (hidden_no_more,) = violations(findings, "storage-bucket-hardening")
    assert "its exception expired on 2026-05-31" in hidden_no_more.message
    (expired,) = violations(findings, "policy-exceptions-current")
    assert "expired on 2026-05-31" in expired.message and "functions-source" in expired.message
    assert expired.level == "mandatory"


def test_an_expired_exception_fails_even_when_the_resource_was_fixed(
    plans: dict[str, Any], allowlist: Path
) -> None:
    _write(allowlist, {**EXCEPTION, "expires": "2026-01-01"})
    findings = run(plans["staging"], "staging", only=["policy-exceptions-current"])
    assert violations(findings, "policy-exceptions-current")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ({"policy": "p", "resource": "r", "expires": "2026-01-01"}, "missing reason"),
        ({**EXCEPTION, "expires": "next year"}, "is not a YYYY-MM-DD date"),
    ],
)
def test_a_malformed_exception_is_refused(allowlist: Path, broken: dict[str, Any], message: str) -> None:
    _write(allowlist, broken)
    with pytest.raises(AllowlistError, match=message):
        load_exceptions(allowlist)
