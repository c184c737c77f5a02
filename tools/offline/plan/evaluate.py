"""`make plan`: the program under Pulumi mocks with a stack's config -> build/plan-<stack>.json.

No credentials, no CLI; a secret or credential-shaped value never reaches the plan in clear (docs/tools.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
import runpy
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pulumi
from pulumi.output import Unknown
from pulumi.runtime import rpc
from pulumi.runtime.config import set_all_config

from components.function_env import WEB_API_KEY_SETTING
from components.phases import print_phases
from components.stack_config import StackConfigError, parse_stack_config
from tools.exit_codes import ExitCode
from tools.offline.contracts.check import Environment, Violation
from tools.offline.plan.credential_shapes import PUBLIC_SETTINGS, value_pattern
from tools.offline.plan.mocks import PlanMocks, run_under_mocks
from tools.project_files import ROOT, engine_config, read_stack

PROJECT_NAME = "launch-ready"
REDACTED = "[secret]"
CREDENTIAL_SHAPED = "[credential-shaped plaintext]"
UNKNOWN = "[unknown until apply]"
# Plain-text inputs under these names are credentials whatever the provider marks them as.
_SECRET_KEY = re.compile(
    r"(password|passphrase|api_?token|api_?key|private_?key|secret_?data|credentials)$", re.I
)
# Plain-text values shaped like the credentials of the providers this program talks to (one list,
# shared with the diff's output scan).
_CREDENTIAL_VALUE = value_pattern()


class PlanError(Exception):
    """A problem the user fixes in their files; printed without a stack trace."""


def looks_like_credential(key: str, value: str) -> bool:
    """True for a plain-text value named like a credential or shaped like a provider's credential."""
    return bool(value) and bool(_SECRET_KEY.search(key) or _CREDENTIAL_VALUE.search(value))


def redact(value: Any, key: str = "", public: frozenset[str] = frozenset()) -> Any:
    """JSON-ready copy of a resource's inputs with secrets, assets and unknowns made explicit.

    A Pulumi secret becomes REDACTED; a plain-text credential becomes CREDENTIAL_SHAPED, a different
    marker, because it is a defect (it would sit unencrypted in the state) that a policy must catch.
    A value in `public` (the stack's public settings, `PlanMocks.public_values`) is kept as it is, whatever
    its shape: the policy pack then checks where it is used.
    """
    if rpc.is_rpc_secret(value):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, k, public) for k, v in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [redact(v, key, public) for v in value]
    if isinstance(value, pulumi.FileAsset):
        path = Path(str(value.path))
        return {"fileAsset": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)}
    if isinstance(value, pulumi.StringAsset):
        return {"stringAsset": f"{len(value.text)} characters"}
    if value == rpc.UNKNOWN:
        return UNKNOWN
    if isinstance(value, str) and value not in public and looks_like_credential(key, value):
        return CREDENTIAL_SHAPED
    return value


def _get(inputs: dict[str, Any], *path: str) -> Any:
    value: Any = inputs
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value


def _summary(entry: dict[str, Any]) -> str:
    """The few settings of a resource that matter in review."""
    inputs, typ = entry["inputs"], entry["type"]
    secret_env = _get(inputs, "serviceConfig", "secretEnvironmentVariables") or []
    summaries: dict[str, Callable[[], list[Any]]] = {
        "gcp:cloudfunctionsv2/function:Function": lambda: [
            f"entry={_get(inputs, 'buildConfig', 'entryPoint')}",
            f"ingress={_get(inputs, 'serviceConfig', 'ingressSettings')}",
            f"max={_get(inputs, 'serviceConfig', 'maxInstanceCount')}",
            f"sa={_get(inputs, 'serviceConfig', 'serviceAccountEmail')}",
            f"secrets={[variable['key'] for variable in secret_env]}",
        ],
        "gcp:pubsub/subscription:Subscription": lambda: [
            f"topic={str(inputs.get('topic')).split('/')[-1]}",
            f"push={'oidc' if _get(inputs, 'pushConfig', 'oidcToken') else 'pull'}",
            f"dlq={str(_get(inputs, 'deadLetterPolicy', 'deadLetterTopic') or '-').split('/')[-1]}",
            f"attempts={_get(inputs, 'deadLetterPolicy', 'maxDeliveryAttempts') or '-'}",
            f"retention={inputs.get('messageRetentionDuration')}",
        ],
        "gcp:storage/bucket:Bucket": lambda: [
            f"publicAccessPrevention={inputs.get('publicAccessPrevention')}",
            f"uniformAccess={inputs.get('uniformBucketLevelAccess')}",
            f"versioning={_get(inputs, 'versioning', 'enabled')}",
        ],
        "gcp:firestore/database:Database": lambda: [
            f"location={inputs.get('locationId')}",
            f"pitr={inputs.get('pointInTimeRecoveryEnablement')}",
            f"deleteProtection={inputs.get('deleteProtectionState')}",
            f"deletionPolicy={inputs.get('deletionPolicy')}",
        ],
        "gcp:cloudscheduler/job:Job": lambda: [
            f"schedule={inputs.get('schedule')} {inputs.get('timeZone')}",
            f"oidc={_get(inputs, 'httpTarget', 'oidcToken', 'serviceAccountEmail')}",
        ],
        "gcp:secretmanager/secret:Secret": lambda: [f"secretId={inputs.get('secretId')}"],
        "gcp:projects/service:Service": lambda: [str(inputs.get("service"))],
    }
    if typ in summaries:
        parts = summaries[typ]()
    elif "role" in inputs and "member" in inputs:
        target = next(
            (str(inputs[k]) for k in ("name", "topic", "subscription", "secretId") if k in inputs), ""
        )
        parts = [str(inputs["role"]), str(inputs["member"]), f"on {target.split('/')[-1]}" if target else ""]
    else:
        parts = [f"{k}={v}" for k, v in sorted(inputs.items()) if isinstance(v, str | int | float | bool)][:3]
    return " ".join(str(p) for p in parts if p)


def render_table(plan: list[dict[str, Any]]) -> str:
    rows = [
        (entry["type"], entry["name"], (entry["parent"] or "-").split("::")[-1], _summary(entry))
        for entry in plan
    ]
    headers = ("TYPE", "NAME", "PARENT", "SETTINGS")
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers[:3])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:3], widths, strict=True)) + "  " + headers[3]]
    for row in rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3])
    return "\n".join(lines)


def evaluate_stack(stack: str, root: Path = ROOT, preview: bool = False) -> PlanMocks:
    """Run the program for `stack` under mocks; the returned mocks hold every registered resource
    and its provider-contract violations. `preview=True` leaves cloud-computed outputs unknown, as
    a first `pulumi preview` sees them."""
    config, secret_keys = engine_config(read_stack(stack, root))
    return evaluate_config(stack, config, secret_keys, root, preview)


def evaluate_config(
    stack: str, config: dict[str, str], secret_keys: list[str], root: Path = ROOT, preview: bool = False
) -> PlanMocks:
    """`evaluate_stack` for config values not (yet) in a stack file: engine-form strings, as
    `tools.project_files.engine_config` returns them. Raises StackConfigError before the engine starts."""
    # Validate before the engine starts so the user sees exactly one readable message.
    parse_stack_config(config, stack)
    mocks = PlanMocks(environment=Environment.from_config(config), preview=preview)
    mocks.public_values = frozenset(value for key in PUBLIC_SETTINGS if (value := config.get(key)))
    mocks.install(project=PROJECT_NAME, stack=stack)
    set_all_config(config, secret_keys)

    def program() -> None:
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")

    run_under_mocks(program, mocks)
    return mocks


def _is_unknown(value: Any) -> bool:
    if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
        return True
    if isinstance(value, dict):
        return any(_is_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(_is_unknown(v) for v in value)
    return False


def _holds_unknown(value: Any, path: str) -> bool:
    """True when the input at `path` (e.g. `config.rewrites[0].run`), or anything in it, is unknown."""
    for step in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN):
            return True
        if step.startswith("[") and isinstance(value, list):
            index = int(step[1:-1])
            value = value[index] if index < len(value) else None
        elif isinstance(value, dict):
            value = value.get(step)
        else:
            return False
    return _is_unknown(value)


def mark_unknown_at_preview(stack: str, root: Path, violations: list[Violation]) -> list[Violation]:
    """Flag the violations whose value a real first preview would not know yet.

    The mocks compute every output so the whole program runs; a second evaluation in preview mode
    shows which inputs are built from outputs only the cloud computes. The bridge's Check skips those,
    the API does not.
    """
    if not any(v.checks_value for v in violations):
        return violations
    preview = {(r.type, r.name): r.inputs for r in evaluate_stack(stack, root, preview=True).resources}
    marked = []
    for violation in violations:
        inputs = preview.get((violation.type, violation.name))
        unknown = violation.checks_value and (inputs is None or _holds_unknown(inputs, violation.input))
        marked.append(dataclasses.replace(violation, unknown_at_preview=unknown))
    return marked


def plan_stack(stack: str, root: Path = ROOT) -> tuple[list[dict[str, Any]], list[Violation]]:
    """Evaluate the program for `stack` under mocks: (sorted, redacted resources, contract violations)."""
    mocks = evaluate_stack(stack, root)
    public = mocks.public_values
    plan = [{**entry, "inputs": redact(entry["inputs"], public=public)} for entry in mocks.plan()]
    violations = mark_unknown_at_preview(stack, root, mocks.violations)
    return sorted(plan, key=lambda entry: (entry["type"], entry["name"])), violations


def build_plan(stack: str, root: Path = ROOT) -> list[dict[str, Any]]:
    """Evaluate the program for `stack` under mocks; return the sorted, redacted resource list."""
    return plan_stack(stack, root)[0]


def plan_path(stack: str, root: Path = ROOT) -> Path:
    """Where `make plan` writes a stack's plan: build/plan-<stack>.json."""
    return root / "build" / f"plan-{stack}.json"


def run(stack: str, *, out: Path | None = None, quiet: bool = False, root: Path = ROOT) -> ExitCode:
    """Write the plan (and print its table unless quiet): OK, or USAGE for a bad stack config or a
    provider-contract violation (the plan is still written then, for review)."""
    try:
        stack_file = read_stack(stack, root)
        config = parse_stack_config(engine_config(stack_file)[0], stack)
        plan, violations = plan_stack(stack, root)
    except (PlanError, StackConfigError, pulumi.RunError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    for warning in stack_file.warnings():
        print(warning, file=sys.stderr)
    if config.firebase_web_api_key is None:
        print(
            f"warning: {WEB_API_KEY_SETTING} is not set: the ops console cannot sign anyone in; set it to "
            "your Firebase web app's apiKey (Project settings > Your apps, AIza...)",
            file=sys.stderr,
        )
    out = out or plan_path(stack, root)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(plan, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if not quiet:
        print(render_table(plan))
    custom = sum(1 for entry in plan if not entry["type"].startswith("launchready:"))
    print(f"\n{stack}: {custom} resources in {len(plan) - custom} components -> {out}")
    if violations:
        # One line per broken provider contract; the plan JSON is still written for review.
        for violation in violations:
            print(violation.line(), file=sys.stderr)
        print(f"{stack}: {len(violations)} provider contract violation(s)", file=sys.stderr)
        return ExitCode.USAGE
    print_phases(config)
    return ExitCode.OK
