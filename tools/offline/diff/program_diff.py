"""`make diff`: what a branch changes in each stack, offline, with no credentials and no Pulumi CLI.

Nothing is written when the output would show a credential-shaped string (docs/tools.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from components.example_values import example_text
from tools.exit_codes import ExitCode
from tools.offline.diff import evaluate_tree
from tools.offline.diff.compare import compare
from tools.offline.diff.output_scan import scan, withhold
from tools.offline.diff.render import (
    MARKER,
    StackDiff,
    render_json,
    render_markdown,
    render_terminal,
)
from tools.offline.plan.credential_shapes import PUBLIC_SETTINGS
from tools.project_files import ROOT, stack_name, stack_names, stack_path

Plans = dict[str, list[dict[str, Any]] | None]


class DiffError(Exception):
    """Bad input or a failed evaluation; printed as one error, nothing written."""


def _git(root: Path, *args: str) -> str:
    result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise DiffError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip()


def base_commit(root: Path, base: str) -> str:
    """The commit `base` names; DiffError saying so when it names none (a typo, or a ref not fetched)."""
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}")
    except DiffError:
        raise DiffError(
            f"{base!r} is not a commit in this repository: check the name, or fetch it (git fetch origin)"
        ) from None


def stacks_of(root: Path, commit: str) -> list[str]:
    """Every stack with a Pulumi.<stack>.yaml in the working tree or at the base commit."""
    at_base = {stack_name(n) for n in _git(root, "ls-tree", "--name-only", commit).splitlines()}
    return sorted(set(stack_names(root)) | {s for s in at_base if s})


def _cache_key(root: Path, tree: str) -> str:
    digest = hashlib.sha256(f"{tree}/{evaluate_tree.tools_digest(root)}/{sys.version}".encode())
    lock = root / "requirements" / "dev.lock"
    if lock.is_file():
        digest.update(lock.read_bytes())
    return digest.hexdigest()[:20]


def evaluate_both(root: Path, base: str, stacks: list[str], log: Any) -> tuple[Plans, Plans]:
    """(base plans, head plans): both evaluated in parallel subprocesses, the base from cache if it can."""
    commit = base_commit(root, base)
    tree = _git(root, "rev-parse", f"{commit}^{{tree}}")
    cache = root / "build" / "diff-cache"
    key = _cache_key(root, tree)
    cached: Plans = {}
    for stack in stacks:
        path = cache / f"{key}-{stack}.json"
        if path.is_file():
            cached[stack] = json.loads(path.read_text(encoding="utf-8"))
    missing = [s for s in stacks if s not in cached]
    with tempfile.TemporaryDirectory(prefix="launchready-diff-") as scratch:
        work = Path(scratch)
        head_proc = evaluate_tree.start(root, stacks, work / "head.json", head=root)
        base_proc = None
        if missing:
            log(f"evaluating {base} ({commit[:12]}) for {', '.join(missing)} in a temporary worktree ...")
            _git(root, "worktree", "add", "--detach", "--quiet", str(work / "base"), commit)
            base_proc = evaluate_tree.start(work / "base", missing, work / "base.json", head=root)
        else:
            log(f"base {base} ({commit[:12]}) from cache")
        log(f"evaluating the working tree for {', '.join(stacks)} ...")
        try:
            head = evaluate_tree.finish(head_proc, work / "head.json", "the working tree")
            if base_proc is not None:
                fresh = evaluate_tree.finish(base_proc, work / "base.json", f"{base} ({commit[:12]})")
                cache.mkdir(parents=True, exist_ok=True)
                for stack, plan in fresh.items():
                    (cache / f"{key}-{stack}.json").write_text(json.dumps(plan), encoding="utf-8")
                cached.update(fresh)
        except evaluate_tree.EvaluationError as error:
            raise DiffError(str(error)) from None
        finally:
            if base_proc is not None:
                for args in (["remove", "--force", str(work / "base")], ["prune"]):
                    subprocess.run(["git", "-C", str(root), "worktree", *args], capture_output=True)
    return cached, head


def run_policy(
    root: Path, stack: str, plan: list[dict[str, Any]] | None, build: Path
) -> tuple[str, list[Any]]:
    """The policy runner on the head's plan: (table cell, findings). Says why when it cannot run."""
    runner = root / "tools" / "offline" / "policy" / "runner.py"
    python = root / ".venv-policy" / "bin" / "python"
    if plan is None:
        return "no stack", []
    if not runner.is_file():
        return "not run: no policy runner on this branch", []
    if not python.is_file():
        return "not run: `make setup-policy` first", []
    plan_path, out = build / f"diff-plan-{stack}.json", build / f"diff-policy-{stack}.json"
    plan_path.write_text(json.dumps(plan, indent=2), encoding="utf-8")
    out.unlink(missing_ok=True)
    result = subprocess.run(
        [str(python), "-m", "tools", "policy", "--stack", stack, "--plan", str(plan_path), "--out", str(out)],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if result.returncode not in (0, 1) or not out.is_file():
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"error: {withhold(last)}", []
    findings = [
        f for f in json.loads(out.read_text(encoding="utf-8"))["findings"] if f.get("kind") == "violation"
    ]
    mandatory = sum(1 for f in findings if f.get("level") == "mandatory")
    return f"{mandatory} mandatory, {len(findings) - mandatory} advisory", findings


def template_example(root: Path, commit: str, stack: str) -> str | None:
    """`key = value` of a template example value the base's Pulumi.<stack>.yaml still holds (the stack's
    first configuration), or None."""
    try:
        document = yaml.safe_load(_git(root, "show", f"{commit}:Pulumi.{stack}.yaml"))
    except (DiffError, yaml.YAMLError):
        return None
    config = document.get("config") if isinstance(document, dict) else None
    for key, value in (config or {}).items():
        example = example_text(str(key), value)
        if example is not None:
            return f"{key} = {example}"
    return None


def first_configuration_note(stack: str, example: str) -> str:
    return (
        f"first configuration of {stack}: the base's Pulumi.{stack}.yaml still holds the template's example "
        f"values ({example}), so it was never deployed with them. Replacements and deletions below are "
        "against the template's example identities and destroy nothing: they are not gated as destructive. "
        f"After merging, `make deploy STACK={stack}` creates the environment."
    )


def _note(base_plan: Any, head_plan: Any, stack: str) -> str:
    if base_plan is None and head_plan is not None:
        return f"Pulumi.{stack}.yaml is new on this branch: every resource is created"
    if head_plan is None and base_plan is not None:
        return f"Pulumi.{stack}.yaml is removed on this branch: every resource is deleted"
    return ""


def failure_report(log_path: Path, out: Path, lines: int = 30) -> None:
    """A comment saying the diff failed, with the log's last lines (credential-shaped lines withheld)."""
    tail = (
        log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        if log_path.is_file()
        else []
    )
    text = withhold("\n".join(tail)).replace("```", "`\u200b``")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"{MARKER}\n### Infrastructure diff failed\n\nThe offline program diff could not be computed "
        f"for this commit. Last lines of its output:\n\n```\n{text}\n```\n",
        encoding="utf-8",
    )


def _public_values(root: Path, base: str, stacks: list[str]) -> frozenset[str]:
    """The configured values of the public settings in the stack files on both sides."""
    commit = base_commit(root, base)
    values: set[str] = set()
    for stack in stacks:
        texts = []
        try:
            texts.append(_git(root, "show", f"{commit}:Pulumi.{stack}.yaml"))
        except DiffError:
            pass  # the stack is new on this branch
        if stack_path(stack, root).is_file():
            texts.append(stack_path(stack, root).read_text(encoding="utf-8"))
        for text in texts:
            document = yaml.safe_load(text)
            config = document.get("config") if isinstance(document, dict) else None
            if isinstance(config, dict):
                values.update(str(config[key]) for key in PUBLIC_SETTINGS if config.get(key))
    return frozenset(values)


def run(
    base: str | None,
    *,
    stacks: list[str] | None = None,
    allow_destructive: bool = False,
    policy: bool = True,
    failure_report_log: Path | None = None,
    root: Path = ROOT,
) -> ExitCode:
    """Write build/diff.md, diff-full.md and diff.json for `stacks` (default: every stack file on either
    side) and print the terminal view. With `failure_report_log`, write the failure comment instead.
    OK; FAILED for an unacknowledged destructive change; USAGE for bad input or a failed evaluation;
    WITHHELD when the output would show a credential-shaped string (nothing written)."""
    root = root.resolve()
    build = root / "build"
    if failure_report_log is not None:
        failure_report(failure_report_log, build / "diff.md")
        return ExitCode.OK
    if not base:
        print("error: --base is required", file=sys.stderr)
        return ExitCode.USAGE
    acknowledged = allow_destructive or os.environ.get("ACK_DESTRUCTIVE", "") not in ("", "0")
    gate_source = "the allow-destructive label" if os.environ.get("GITHUB_ACTIONS") else "ACK_DESTRUCTIVE=1"
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        base_commit(root, base)
        stacks = sorted(set(stacks)) if stacks else stacks_of(root, base)
        if not stacks:
            raise DiffError("no Pulumi.<stack>.yaml on either side")
        base_plans, head_plans = evaluate_both(root, base, stacks, log)
    except DiffError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    build.mkdir(parents=True, exist_ok=True)
    diffs = []
    for stack in stacks:
        base_plan, head_plan = base_plans.get(stack), head_plans.get(stack)
        if base_plan is None and head_plan is None:
            print(f"error: no Pulumi.{stack}.yaml at {base} or in the working tree", file=sys.stderr)
            return ExitCode.USAGE
        cell, findings = (
            run_policy(root, stack, head_plan, build) if policy else ("not run (--no-policy)", [])
        )
        steps = compare(base_plan, head_plan)
        example = template_example(root, base_commit(root, base), stack) if head_plan is not None else None
        note = first_configuration_note(stack, example) if example else _note(base_plan, head_plan, stack)
        diffs.append(StackDiff(stack, steps, cell, findings, note, first_configuration=example is not None))
    documents = {
        "diff.md": render_markdown(base, diffs, acknowledged, gate_source),
        "diff-full.md": render_markdown(base, diffs, acknowledged, gate_source, limit=None),
        "diff.json": render_json(base, diffs, acknowledged),
        "terminal": render_terminal(diffs),
    }
    findings_found = scan(documents, _public_values(root, base, stacks))
    if findings_found:
        for finding in findings_found:
            print(f"error: {finding}", file=sys.stderr)
        print("error: the diff would show a credential-shaped string; nothing written", file=sys.stderr)
        for name in ("diff.md", "diff-full.md", "diff.json"):
            (build / name).unlink(missing_ok=True)
        return ExitCode.WITHHELD
    for name in ("diff.md", "diff-full.md", "diff.json"):
        (build / name).write_text(documents[name], encoding="utf-8")
    print(documents["terminal"])
    print(f"-> {build / 'diff.md'} ({len(documents['diff.md'])} characters), {build / 'diff.json'}")
    destructive = [step for d in diffs for step in d.destructive]
    log("done")
    if destructive and not acknowledged:
        print(
            f"error: {len(destructive)} destructive change(s) not acknowledged: "
            "rerun with ACK_DESTRUCTIVE=1 (in CI: the allow-destructive label)",
            file=sys.stderr,
        )
        return ExitCode.FAILED
    return ExitCode.OK

