"""One tree of the program (the head or a base) evaluated for several stacks in a subprocess.

The subprocess puts the tree first on sys.path and registers the head's `tools` package before anything
imports it, so `import components` is the evaluated tree's and `import tools` the head's (the invariant:
a base is always judged by the head's contracts); a components module the tree lacks comes from the
head. It writes {"<stack>": [plan entries] | null}.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tools.project_files import ROOT as HEAD
from tools.project_files import stack_path

# Run as `python -c _BOOT <head> <root> <out> <stack>...` with cwd=<root>.
_BOOT = """
import importlib.util, sys
head, root = sys.argv[1], sys.argv[2]
sys.path[:0] = [root]
import components
components.__path__.append(head + "/components")
spec = importlib.util.spec_from_file_location(
    "tools", head + "/tools/__init__.py", submodule_search_locations=[head + "/tools"])
module = importlib.util.module_from_spec(spec)
sys.modules["tools"] = module
spec.loader.exec_module(module)
from tools.offline.diff.evaluate_tree import write_plans
sys.exit(write_plans(root, sys.argv[3], sys.argv[4:]))
"""


class EvaluationError(Exception):
    """The program could not be evaluated in one tree; the message carries the tree and the error."""


def tools_digest(head: Path = HEAD) -> str:
    """Hash of the head's offline tools and contracts: part of the base evaluation's cache key."""
    digest = hashlib.sha256()
    for path in sorted((head / "tools").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(head)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _relative_assets(value: Any, root: Path) -> Any:
    """File assets relative to the evaluated tree, so the same file compares equal in both trees."""
    if isinstance(value, dict):
        if set(value) == {"fileAsset"}:
            path = Path(value["fileAsset"])
            return {"fileAsset": str(path.relative_to(root)) if path.is_relative_to(root) else str(path)}
        return {k: _relative_assets(v, root) for k, v in value.items()}
    if isinstance(value, list):
        return [_relative_assets(v, root) for v in value]
    return value


def evaluate_here(root: Path, stacks: list[str]) -> dict[str, list[dict[str, Any]] | None]:
    """Evaluate `root`'s program in this process (which must have been set up by _BOOT or be the head)."""
    from tools.offline.plan.evaluate import evaluate_stack, redact

    plans: dict[str, list[dict[str, Any]] | None] = {}
    for stack in stacks:
        if not stack_path(stack, root).is_file():
            plans[stack] = None
            continue
        mocks = evaluate_stack(stack, root)
        public = mocks.public_values
        entries = [
            {**entry, "inputs": _relative_assets(redact(entry["inputs"], public=public), root.resolve())}
            for entry in mocks.plan()
        ]
        plans[stack] = sorted(entries, key=lambda e: e["urn"])
    return plans


def start(root: Path, stacks: list[str], out: Path, head: Path = HEAD) -> subprocess.Popen[str]:
    """Start evaluating `root` with the head's tools in a subprocess; `finish()` collects it."""
    args = [sys.executable, "-c", _BOOT, str(head), str(root), str(out), *stacks]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.Popen(
        args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen[str], out: Path, label: str) -> dict[str, Any]:
    """Wait for an evaluation started by `start()`; raise EvaluationError with its last lines on failure."""
    _, stderr = process.communicate()
    if process.returncode != 0 or not out.is_file():
        tail = "\n".join(stderr.strip().splitlines()[-8:])
        raise EvaluationError(f"evaluating {label} failed:\n{tail}")
    return json.loads(out.read_text(encoding="utf-8"))


def write_plans(root: str, out: str, stacks: list[str]) -> int:
    """The subprocess's work: evaluate `root` for `stacks` into `out` as JSON; 0, or 2 with the error
    printed (nothing written)."""
    import pulumi

    from components.stack_config import StackConfigError

    try:
        plans = evaluate_here(Path(root).resolve(), stacks)
    except (StackConfigError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(plans, sort_keys=True), encoding="utf-8")
    return 0
