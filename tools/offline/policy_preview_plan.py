"""The offline plan as a first `pulumi preview` sees it: every output the cloud computes is unknown.

    python -m tools.offline.policy_preview_plan --stack staging

Writes build/plan-<stack>-first-preview.json (same shape as build/plan-<stack>.json). The program runs
under the plan's mocks in preview mode: each new resource reports back only its inputs, as the engine
does for a resource it has yet to create, so ids, emails, URLs and generated names stay unknown, and so
does every input built from them. `make policy ARGS=--preview-fidelity` runs the pack on it to find the
mandatory policies that would then silently downgrade to advisory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.stack_config import StackConfigError
from tools.offline.plan import ROOT, PlanError, evaluate_stack, redact


def _known_or_marker(value: Any) -> Any:
    """Preview inputs may hold the SDK's Unknown object where the wire has the unknown sentinel."""
    if isinstance(value, Unknown):
        return rpc.UNKNOWN
    if isinstance(value, dict):
        return {k: _known_or_marker(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_known_or_marker(v) for v in value]
    return value


def build_first_preview_plan(stack: str, root: Path = ROOT) -> list[dict[str, Any]]:
    """Evaluate the program for `stack` as a first preview (tools.offline.plan's preview mode: the
    mocks answer a create with its inputs only); return the sorted, redacted resource list."""
    mocks = evaluate_stack(stack, root, preview=True)
    plan = [{**entry, "inputs": redact(_known_or_marker(entry["inputs"]))} for entry in mocks.plan()]
    return sorted(plan, key=lambda entry: (entry["type"], entry["name"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.offline.policy_preview_plan", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path, help="default build/plan-<stack>-first-preview.json")
    options = parser.parse_args(argv)
    try:
        plan = build_first_preview_plan(options.stack)
    except (PlanError, StackConfigError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out: Path = options.out or ROOT / "build" / f"plan-{options.stack}-first-preview.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    unknown = sum(json.dumps(entry["inputs"]).count('"[unknown until apply]"') for entry in plan)
    print(f"{options.stack} first preview: {len(plan)} resources, {unknown} unknown input values -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
