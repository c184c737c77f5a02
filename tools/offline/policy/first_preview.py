"""The offline plan as a first `pulumi preview` sees it: every output the cloud computes is unknown.

Same shape as build/plan-<stack>.json; `policy --preview-fidelity` runs the pack on it (docs/tools.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc

from tools.offline.plan.evaluate import UNKNOWN, evaluate_stack, redact
from tools.project_files import ROOT


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
    """Evaluate the program for `stack` as a first preview (tools.offline.plan.evaluate's preview mode: the
    mocks answer a create with its inputs only); return the sorted, redacted resource list."""
    mocks = evaluate_stack(stack, root, preview=True)
    public = mocks.public_values
    plan = [
        {**entry, "inputs": redact(_known_or_marker(entry["inputs"]), public=public)}
        for entry in mocks.plan()
    ]
    return sorted(plan, key=lambda entry: (entry["type"], entry["name"]))


def write_first_preview_plan(stack: str, root: Path = ROOT) -> Path:
    """Write build/plan-<stack>-first-preview.json and return its path; StackConfigError, PlanError or
    pulumi.RunError when the program cannot be evaluated."""
    plan = build_first_preview_plan(stack, root)
    out = root / "build" / f"plan-{stack}-first-preview.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    unknown = sum(json.dumps(entry["inputs"]).count(json.dumps(UNKNOWN)) for entry in plan)
    print(f"{stack} first preview: {len(plan)} resources, {unknown} unknown input values -> {out}")
    return out
