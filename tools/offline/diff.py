"""Program diff: what a branch changes in each stack, offline, with no credentials and no Pulumi CLI.

    python -m tools.offline.diff --base main [--stack staging] [--allow-destructive]

Evaluates the program at BASE (a temporary git worktree, with the head's tools and contracts; cached in
build/diff-cache by the base tree and the head tools' hash) and in the working tree, for every
Pulumi.<stack>.yaml on either side (or --stack), compares the resources by URN and writes
build/diff.md (the PR comment, at most 60,000 characters), build/diff-full.md and build/diff.json
(Pulumi's preview JSON shape). Policy findings come from the policy runner on the head's plan when it
is set up (tools/offline/policy_runner.py in .venv-policy); otherwise the table says "not run".

Exit status: 0 done; 1 a destructive change (data-bearing delete or replace, protect dropped) that is
not acknowledged (--allow-destructive, ACK_DESTRUCTIVE=1); 2 bad input or a program that fails to
evaluate (nothing written); 3 a credential-shaped string in the output (nothing written or printed).
`--failure-report LOG` instead writes build/diff.md saying the diff failed, with LOG's last lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tools.offline import diff_eval
from tools.offline.diff_compare import compare
from tools.offline.diff_render import (
    MARKER,
    StackDiff,
    render_json,
    render_markdown,
    render_terminal,
)
from tools.offline.diff_scan import scan, withhold

ROOT = Path(__file__).resolve().parents[2]
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
    names = {p.name for p in root.glob("Pulumi.*.yaml")}
    names |= {n for n in _git(root, "ls-tree", "--name-only", commit).splitlines()}
    stacks = {
        n[len("Pulumi.") : -len(".yaml")] for n in names if n.startswith("Pulumi.") and n.endswith(".yaml")
    }
    return sorted(s for s in stacks if s)  # Pulumi.yaml is the project file


def _cache_key(root: Path, tree: str) -> str:
    digest = hashlib.sha256(f"{tree}/{diff_eval.tools_digest(root)}/{sys.version}".encode())
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
        head_proc = diff_eval.start(root, stacks, work / "head.json", head=root)
        base_proc = None
        if missing:
            log(f"evaluating {base} ({commit[:12]}) for {', '.join(missing)} in a temporary worktree ...")
            _git(root, "worktree", "add", "--detach", "--quiet", str(work / "base"), commit)
            base_proc = diff_eval.start(work / "base", missing, work / "base.json", head=root)
        else:
            log(f"base {base} ({commit[:12]}) from cache")
        log(f"evaluating the working tree for {', '.join(stacks)} ...")
        try:
            head = diff_eval.finish(head_proc, work / "head.json", "the working tree")
            if base_proc is not None:
                fresh = diff_eval.finish(base_proc, work / "base.json", f"{base} ({commit[:12]})")
                cache.mkdir(parents=True, exist_ok=True)
                for stack, plan in fresh.items():
                    (cache / f"{key}-{stack}.json").write_text(json.dumps(plan), encoding="utf-8")
                cached.update(fresh)
        except diff_eval.EvaluationError as error:
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
    runner = root / "tools" / "offline" / "policy_runner.py"
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
        [
            str(python),
            "-m",
            "tools.offline.policy_runner",
            "--stack",
            stack,
            "--plan",
            str(plan_path),
            "--out",
            str(out),
        ],
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.offline.diff", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--base", help="git ref of the base (a branch, tag or commit)")
    parser.add_argument("--stack", action="append", help="only these stacks (default: every stack file)")
    parser.add_argument("--allow-destructive", action="store_true", help="acknowledge destructive changes")
    parser.add_argument("--no-policy", action="store_true", help="skip the policy runner")
    parser.add_argument("--failure-report", type=Path, metavar="LOG", help="write a failure comment from LOG")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    options = parser.parse_args(argv)
    root: Path = options.root.resolve()
    build = root / "build"
    if options.failure_report:
        failure_report(options.failure_report, build / "diff.md")
        return 0
    if not options.base:
        parser.error("--base is required")
    acknowledged = options.allow_destructive or os.environ.get("ACK_DESTRUCTIVE", "") not in ("", "0")
    gate_source = "the allow-destructive label" if os.environ.get("GITHUB_ACTIONS") else "ACK_DESTRUCTIVE=1"
    started = time.monotonic()

    def log(message: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {message}", file=sys.stderr, flush=True)

    try:
        base_commit(root, options.base)
        stacks = sorted(set(options.stack)) if options.stack else stacks_of(root, options.base)
        if not stacks:
            raise DiffError("no Pulumi.<stack>.yaml on either side")
        base_plans, head_plans = evaluate_both(root, options.base, stacks, log)
    except DiffError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    build.mkdir(parents=True, exist_ok=True)
    diffs = []
    for stack in stacks:
        base_plan, head_plan = base_plans.get(stack), head_plans.get(stack)
        if base_plan is None and head_plan is None:
            print(f"error: no Pulumi.{stack}.yaml at {options.base} or in the working tree", file=sys.stderr)
            return 2
        policy, findings = (
            ("not run (--no-policy)", []) if options.no_policy else run_policy(root, stack, head_plan, build)
        )
        steps = compare(base_plan, head_plan)
        diffs.append(StackDiff(stack, steps, policy, findings, _note(base_plan, head_plan, stack)))
    documents = {
        "diff.md": render_markdown(options.base, diffs, acknowledged, gate_source),
        "diff-full.md": render_markdown(options.base, diffs, acknowledged, gate_source, limit=None),
        "diff.json": render_json(options.base, diffs, acknowledged),
        "terminal": render_terminal(diffs),
    }
    findings_found = scan(documents)
    if findings_found:
        for finding in findings_found:
            print(f"error: {finding}", file=sys.stderr)
        print("error: the diff would show a credential-shaped string; nothing written", file=sys.stderr)
        for name in ("diff.md", "diff-full.md", "diff.json"):
            (build / name).unlink(missing_ok=True)
        return 3
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
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
