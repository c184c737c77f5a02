"""The exceptions allowlist itself is policed: an expired exception fails until removed or renewed."""

from __future__ import annotations

from pulumi_policy import (
    EnforcementLevel,
    Severity,
    StackValidationArgs,
)

from .common import Allowlist, Report, stack_policy


def _exceptions_current(args: StackValidationArgs, report: Report) -> None:
    entries = Allowlist.entries()
    if not entries:
        args.not_applicable("the allowlist holds no exception")
    today = Allowlist.today()
    for entry in entries:
        if entry.expired(today):
            report(
                f"exception for {entry.policy} on {entry.resource} expired on {entry.expires.isoformat()} "
                f"({entry.reason}): fix the resource or renew the exception with a new reason"
            )


EXCEPTIONS_CURRENT = stack_policy(
    "policy-exceptions-current",
    "Every entry of policy/exceptions.json names a policy, a resource, a reason and an unexpired date.",
    _exceptions_current,
    enforcement_level=EnforcementLevel.MANDATORY,
    severity=Severity.MEDIUM,
    tags=["governance"],
    remediation_steps="Fix the resource and delete the entry, or renew it in policy/exceptions.json.",
)

POLICIES = (EXCEPTIONS_CURRENT,)
