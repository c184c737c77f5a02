"""The preflight's verdict for one stack: one line per problem with its fix, one per check it could not
make, from the offline plan and read-only API calls.

Invariant: a check that could not be made never counts as passed (exit NOT_ALL_CHECKED at best).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.stack_config import StackConfig, StackConfigError, parse_stack_config
from tools.exit_codes import ExitCode
from tools.project_files import ROOT, read_stack

from .google_reads import READERS, CannotCheck, GoogleReads
from .plan_facts import GLOBAL_TYPES, Grant, creations, load_plan, outside_grants

# Domain restricted sharing, legacy list constraint and its managed successor, and the managed constraint
# that forbids disabling Cloud Run's invoker check. Enforced by default on organizations created on or
# after 3 May 2024 (https://cloud.google.com/resource-manager/docs/secure-by-default-organizations).
DRS = "iam.allowedPolicyMemberDomains"
MANAGED_MEMBERS = "iam.managed.allowedPolicyMembers"
REQUIRE_INVOKER_IAM = "run.managed.requireInvokerIam"
DRS_DOC = "https://cloud.google.com/resource-manager/docs/organization-policy/domain-restricted-sharing"
PUBLIC_RUN_DOC = "https://cloud.google.com/run/docs/authenticating/public"


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    unchecked: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> ExitCode:
        if self.problems:
            return ExitCode.FAILED
        return ExitCode.NOT_ALL_CHECKED if self.unchecked else ExitCode.OK

    def lines(self) -> list[str]:
        return (
            [f"problem: {line}" for line in self.problems]
            + [f"cannot check: {line}" for line in self.unchecked]
            + [f"ok: {line}" for line in self.checked]
        )


def _rules(policy: dict[str, Any]) -> list[dict[str, Any]]:
    return list((policy.get("spec") or {}).get("rules") or [])


def list_constraint_restricts(policy: dict[str, Any]) -> bool:
    """A list constraint's effective policy limits values: a rule lists allowed values or denies all, and
    no unconditional rule allows all (orgpolicy v2 PolicySpec.PolicyRule)."""
    rules = _rules(policy)
    if any(rule.get("allowAll") and not rule.get("condition") for rule in rules):
        return False
    return any(rule.get("denyAll") or (rule.get("values") or {}).get("allowedValues") for rule in rules)


def enforced(policy: dict[str, Any]) -> bool:
    """A boolean or managed constraint is enforced by any rule (a conditional one counts: it may apply)."""
    return any(rule.get("enforce") is True for rule in _rules(policy))


def allowed_members(policy: dict[str, Any]) -> set[str]:
    """iam.managed.allowedPolicyMembers' parameters.allowedMemberSubjects of the enforcing rules."""
    return {
        str(subject)
        for rule in _rules(policy)
        if rule.get("enforce") is True
        for subject in (rule.get("parameters") or {}).get("allowedMemberSubjects") or []
    }


def policy_parent(config: StackConfig) -> str | None:
    """Where the project's effective policies are read: the project when adopted; for a project created
    now, the folder or organization it goes into; None for a new project outside any organization."""
    if not config.create_project:
        return f"projects/{config.project_id}"
    if config.folder_id:
        return f"folders/{config.folder_id}"
    if config.org_id:
        return f"organizations/{config.org_id}"
    return None


def _summary(grants: Iterable[Grant]) -> str:
    shown = sorted({f"{g.member} {g.role}" for g in grants})
    return "; ".join(shown[:4]) + (f"; and {len(shown) - 4} more" if len(shown) > 4 else "")


def check_org_policies(
    config: StackConfig, grants: list[Grant], reads: GoogleReads, verdict: Verdict
) -> None:
    parent = policy_parent(config)
    if parent is None:
        verdict.checked.append("a new project outside any organization: no organization policy applies")
        return
    if not grants:
        verdict.checked.append(
            "no IAM member outside the project: domain restricted sharing cannot refuse one"
        )
        return
    try:
        legacy = list_constraint_restricts(reads.effective_policy(parent, DRS))
        managed_policy = reads.effective_policy(parent, MANAGED_MEMBERS)
        invoker_required = enforced(reads.effective_policy(parent, REQUIRE_INVOKER_IAM))
    except CannotCheck as exc:
        verdict.unchecked.append(str(exc))
        return
    allowed = allowed_members(managed_policy)
    refused = [
        g
        for g in grants
        if legacy or (enforced(managed_policy) and g.member.split(":", 1)[-1] not in allowed)
    ]
    constraint = DRS if legacy else MANAGED_MEMBERS
    public = [g for g in refused if g.kind == "public"]
    agents = [g for g in refused if g.kind != "public"]
    if public:
        fix = (
            f"{REQUIRE_INVOKER_IAM} is enforced too, so no public endpoint is possible: an organization "
            f"admin must except this project from {constraint} ({DRS_DOC})"
            if invoker_required
            else f"an organization admin excepts this project from {constraint} ({DRS_DOC}), or the public "
            f"services run with Cloud Run's invoker IAM check disabled ({PUBLIC_RUN_DOC}; docs/deploy.md)"
        )
        verdict.problems.append(f"{constraint} on {parent} refuses {_summary(public)}\n  fix: {fix}")
    if agents:
        fix = (
            f"the legacy constraint has no exceptions for Google's service agents: an organization admin "
            f"disables it for the project, runs make deploy, and enables it again ({DRS_DOC})"
            if legacy
            else f"add these members to {MANAGED_MEMBERS}'s allowedMemberSubjects ({DRS_DOC})"
        )
        verdict.problems.append(f"{constraint} on {parent} refuses {_summary(agents)}\n  fix: {fix}")
    if not refused:
        verdict.checked.append(
            f"{DRS}/{MANAGED_MEMBERS} on {parent} admit the {len(grants)} outside grant(s)"
        )


def check_existing(
    config: StackConfig, entries: list[dict[str, Any]], reads: GoogleReads, verdict: Verdict
) -> None:
    unread: dict[str, list[str]] = {}
    for creation in creations(entries):
        if config.create_project and creation.type not in GLOBAL_TYPES:
            continue  # a project created in this deploy holds nothing yet
        reader = READERS.get(creation.type)
        name = creation.urn.rsplit("::", 1)[-1]
        if reader is None:
            unread.setdefault(creation.type, []).append(creation.why)
            continue
        try:
            if reads.exists(reader, creation.inputs, config.project_id, f"{creation.type} {name}"):
                verdict.problems.append(
                    f"{creation.type} {name} already exists; its create would fail ({creation.why})\n"
                    "  fix: import it (adopt mode, docs/deploy.md) or delete or rename the existing one"
                )
            else:
                verdict.checked.append(f"{creation.type} {name} does not exist yet")
        except CannotCheck as exc:
            verdict.unchecked.append(str(exc))
    for typ, whys in sorted(unread.items()):
        verdict.unchecked.append(
            f"{len(whys)} {typ} resource(s): no read-only existence check for this type yet; a same-named "
            f"one fails the create ({whys[0]})"
        )


def preflight(config: StackConfig, entries: list[dict[str, Any]], reads: GoogleReads) -> Verdict:
    verdict = Verdict()
    check_org_policies(config, outside_grants(entries, config.project_id), reads, verdict)
    check_existing(config, entries, reads, verdict)
    return verdict


def run(
    stack: str,
    root: Path = ROOT,
    reads: GoogleReads | None = None,
    out: Callable[[str], None] = print,
) -> ExitCode:
    """Print the preflight of `stack` from build/plan-<stack>.json: OK, FAILED (a problem), NOT_ALL_CHECKED
    (no problem, but some checks could not be made), USAGE (no plan or a bad stack file)."""
    plan = root / "build" / f"plan-{stack}.json"
    try:
        config = parse_stack_config(read_stack(stack, root).config, stack)
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    if not plan.is_file():
        print(f"error: {plan} is missing: run `make plan STACK={stack}` first", file=sys.stderr)
        return ExitCode.USAGE
    verdict = preflight(config, load_plan(plan), reads or GoogleReads())
    for line in verdict.lines():
        out(line)
    return verdict.exit_code
