"""`make policy`: the policy pack on a stack's offline plan, the way the engine runs it (in .venv-policy).

It drives pulumi-policy's own analyzer with the engine's requests, so the SDK judges (docs/tools.md).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jsonschema
from google.protobuf import struct_pb2
from pulumi.runtime.config import set_all_config
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy import EnforcementLevel, Policy
from pulumi_policy.deserialize import SPECIAL_ASSET_SIG, SPECIAL_SECRET_SIG, SPECIAL_SIG_KEY
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE

from components.stack_config import StackConfigError
from tools.exit_codes import ExitCode
from tools.offline.plan.evaluate import PROJECT_NAME, REDACTED, UNKNOWN, PlanError
from tools.offline.policy.pack_config import write_pack_config
from tools.project_files import ROOT, engine_config, read_stack

PACK_DIR = ROOT / "policy"
sys.path[:0] = [str(PACK_DIR)]

from launchready_policies import PACK_NAME, POLICIES  # noqa: E402

PACK_VERSION = "0.1.0"  # policy/PulumiPolicy.yaml
PLAN_KEYS = ("urn", "type", "name", "parent", "inputs", "options")
_LEVELS = {
    proto.ADVISORY: "advisory",
    proto.MANDATORY: "mandatory",
    proto.REMEDIATE: "remediate",
    proto.DISABLED: "disabled",
}
_TO_PROTO_LEVEL = {v: k for k, v in _LEVELS.items()}
PREVIEW_MARKER = "during preview:"


class RunnerError(Exception):
    """Bad input (plan, stack file or pack config); printed without a trace, nothing written."""


@dataclass(frozen=True)
class Finding:
    """One row of the report. `kind` is violation, unknown (policy could not run: an unknown value)
    or not-applicable."""

    policy: str
    level: str
    resource: str
    message: str
    kind: str


# ---- inputs ------------------------------------------------------------------------------------------


def load_plan(path: Path) -> list[dict[str, Any]]:
    """The offline plan, checked for the {"urn", "type", "name", "parent", "inputs", "options"} shape."""
    if not path.is_file():
        raise RunnerError(f"{path} not found: run `make plan STACK=<stack>` first")
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise RunnerError(f"{path} is not JSON: {error}") from None
    if not isinstance(plan, list):
        raise RunnerError(f"{path}: expected a list of resources")
    for index, entry in enumerate(plan):
        missing = [k for k in PLAN_KEYS if not isinstance(entry, dict) or k not in entry]
        if missing:
            raise RunnerError(f"{path} resource {index}: missing {', '.join(missing)} (re-run `make plan`)")
    return plan


def policy_configs(path: Path | None, policies: Sequence[Policy]) -> dict[str, dict[str, Any]]:
    """The pack config as the CLI resolves it: per policy an enforcement level and its properties with
    schema defaults applied, each validated against the policy's JSON schema (draft 7)."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise RunnerError(f"pack config {path}: {error}") from None
    by_name = {p.name: p for p in policies}
    unknown = sorted(set(raw) - set(by_name) - {"all"})
    if unknown:
        raise RunnerError(f"pack config {path}: no policy named {', '.join(unknown)}")
    resolved: dict[str, dict[str, Any]] = {}
    for name, policy in by_name.items():
        value = raw.get(name, raw.get("all", {}))
        if isinstance(value, str):
            value = {"enforcementLevel": value}
        level = value.get("enforcementLevel", (policy.enforcement_level or EnforcementLevel.ADVISORY).value)
        if level not in _TO_PROTO_LEVEL:
            raise RunnerError(f"pack config {path}: {name}.enforcementLevel {level!r} is not a level")
        properties = {k: v for k, v in value.items() if k != "enforcementLevel"}
        schema = policy.config_schema
        if schema is not None:
            for key, spec in schema.properties.items():
                if "default" in spec and key not in properties:
                    properties[key] = spec["default"]
            document = {"type": "object", "properties": schema.properties, "required": schema.required or []}
            try:
                jsonschema.Draft7Validator(document).validate(properties)
            except jsonschema.ValidationError as error:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                raise RunnerError(f"pack config {path}: {name} {where}: {error.message}") from None
        elif properties:
            raise RunnerError(f"pack config {path}: {name} takes no configuration, got {sorted(properties)}")
        resolved[name] = {"enforcementLevel": level, "properties": properties}
    return resolved


# ---- plan values as the engine marshals them ----------------------------------------------------------


def to_wire(value: Any) -> Any:
    """A plan value as the engine sends it to an analyzer (MarshalProperties with KeepUnknowns and
    KeepSecrets): unknowns as the unknown sentinel, secrets and assets as signature objects."""
    if value == UNKNOWN:
        return UNKNOWN_STRING_VALUE
    if value == REDACTED:
        return {SPECIAL_SIG_KEY: SPECIAL_SECRET_SIG, "value": REDACTED}
    if isinstance(value, dict):
        if set(value) == {"fileAsset"}:
            return {SPECIAL_SIG_KEY: SPECIAL_ASSET_SIG, "path": value["fileAsset"]}
        if set(value) == {"stringAsset"}:
            return {SPECIAL_SIG_KEY: SPECIAL_ASSET_SIG, "text": value["stringAsset"]}
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_wire(v) for v in value]
    return value  # CREDENTIAL_SHAPED stays a plain string: nothing marked it secret


def _struct(inputs: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(to_wire(dict(inputs)))
    return struct


def _options(entry: Mapping[str, Any]) -> proto.AnalyzerResourceOptions:
    options = entry["options"]
    dbr = options.get("deleteBeforeReplace")
    return proto.AnalyzerResourceOptions(
        protect=bool(options.get("protect")),
        ignoreChanges=list(options.get("ignoreChanges") or []),
        deleteBeforeReplace=bool(dbr),
        deleteBeforeReplaceDefined=dbr is not None,
        aliases=[str(a) for a in options.get("aliases") or []],
        parent=entry.get("parent") or "",
    )


# ---- the run -------------------------------------------------------------------------------------------


def _servicer(
    policies: Sequence[Policy], configs: Mapping[str, Mapping[str, Any]]
) -> _PolicyAnalyzerServicer:
    servicer = _PolicyAnalyzerServicer(PACK_NAME, PACK_VERSION, list(policies), EnforcementLevel.MANDATORY)
    request = proto.ConfigureAnalyzerRequest()
    for name, config in configs.items():
        policy_config = proto.PolicyConfig(enforcementLevel=_TO_PROTO_LEVEL[config["enforcementLevel"]])
        policy_config.properties.update(config["properties"])
        request.policyConfig[name].CopyFrom(policy_config)
    servicer.Configure(request, None)
    return servicer


def _set_stack_config(stack: str, config: Mapping[str, str]) -> None:
    """What the engine gives the pack's process: the stack's config in PULUMI_CONFIG."""
    set_all_config({})
    os.environ["PULUMI_CONFIG"] = json.dumps(dict(config))
    os.environ.update(PULUMI_PROJECT=PROJECT_NAME, PULUMI_STACK=stack, PULUMI_DRY_RUN="true")


def _findings(response: proto.AnalyzeResponse, default_urn: str) -> Iterable[Finding]:
    for diagnostic in response.diagnostics:
        unknown = PREVIEW_MARKER in diagnostic.message and "can't run policy" in diagnostic.message
        # pulumi-policy sends "<description>\n<message>"; the description is in the pack's metadata.
        message = diagnostic.message.removeprefix(diagnostic.description).strip() or diagnostic.message
        yield Finding(
            policy=diagnostic.policyName,
            level=_LEVELS.get(diagnostic.enforcementLevel, "advisory"),
            resource=diagnostic.urn or default_urn,
            message=message,
            kind="unknown" if unknown else "violation",
        )
    for skipped in response.not_applicable:
        yield Finding(skipped.policy_name, "-", default_urn, skipped.reason, "not-applicable")


def run_policies(
    plan: Sequence[Mapping[str, Any]],
    stack: str,
    stack_config: Mapping[str, str],
    configs: Mapping[str, Mapping[str, Any]],
    policies: Sequence[Policy] = POLICIES,
) -> list[Finding]:
    """Every resource policy on every resource, then every stack policy on the whole plan."""
    _set_stack_config(stack, stack_config)
    servicer = _servicer(policies, configs)
    servicer.ConfigureStack(proto.AnalyzerStackConfigureRequest(stack=stack, project=PROJECT_NAME), None)
    findings: list[Finding] = []
    resources = []
    for entry in plan:
        request = proto.AnalyzeRequest(
            type=entry["type"],
            properties=_struct(entry["inputs"]),
            urn=entry["urn"],
            name=entry["name"],
            options=_options(entry),
        )
        findings.extend(_findings(servicer.Analyze(request, None), entry["urn"]))
        resources.append(
            proto.AnalyzerResource(
                type=entry["type"],
                properties=request.properties,
                urn=entry["urn"],
                name=entry["name"],
                options=request.options,
                parent=entry.get("parent") or "",
                dependencies=list(entry["options"].get("dependsOn") or []),
            )
        )
    response = servicer.AnalyzeStack(proto.AnalyzeStackRequest(resources=resources), None)
    findings.extend(
        _findings(
            response, f"urn:pulumi:{stack}::{PROJECT_NAME}::pulumi:pulumi:Stack::{PROJECT_NAME}-{stack}"
        )
    )
    # The engine reports one not-applicable per policy and resource; one line per policy is enough here.
    seen: set[tuple[str, str]] = set()
    unique = []
    for finding in findings:
        if finding.kind == "not-applicable":
            if (finding.policy, finding.message) in seen:
                continue
            seen.add((finding.policy, finding.message))
        unique.append(finding)
    return unique


def mandatory_violations(findings: Iterable[Finding]) -> list[Finding]:
    return [f for f in findings if f.kind == "violation" and f.level == "mandatory"]


def silent_downgrades(
    full: Sequence[Finding], preview: Sequence[Finding], configs: Mapping[str, Any]
) -> list[Finding]:
    """Mandatory policies that, on a first preview, could not run on a resource (unknown value): the
    engine then reports an advisory note and lets the deployment through."""
    mandatory = {name for name, c in configs.items() if c["enforcementLevel"] in ("mandatory", "remediate")}
    known_unknown = {(f.policy, f.resource) for f in full if f.kind == "unknown"}
    return [
        f
        for f in preview
        if f.kind == "unknown" and f.policy in mandatory and (f.policy, f.resource) not in known_unknown
    ]


# ---- output --------------------------------------------------------------------------------------------


def short(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


def render(findings: Sequence[Finding]) -> str:
    rows = [
        (f.policy, f.level if f.kind == "violation" else f.kind, short(f.resource), f.message)
        for f in findings
    ]
    headers = ("POLICY", "LEVEL", "RESOURCE", "MESSAGE")
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers[:3])]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers[:3], widths, strict=True)) + "  " + headers[3]]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r[:3], widths, strict=True)) + "  " + r[3] for r in rows]
    return "\n".join(lines)


def run(
    stack: str,
    *,
    plan: Path | None = None,
    config: Path | None = None,
    out: Path | None = None,
    preview_fidelity: bool = False,
    preview_plan: Path | None = None,
) -> ExitCode:
    """Run the pack on the plan and write the report: OK, FAILED on a mandatory violation, USAGE on bad
    input (nothing written). Paths default to build/plan-<stack>.json, build/policy-config-<stack>.json
    (generated from the stack files here), build/policy-<stack>.json and
    build/plan-<stack>-first-preview.json."""
    build = ROOT / "build"
    try:
        stack_config, _ = engine_config(read_stack(stack, ROOT))
        if config is not None and not config.is_file():
            raise RunnerError(f"policy pack config {config} not found")
        config_path = config or write_pack_config(stack, ROOT)
        loaded = load_plan(plan or build / f"plan-{stack}.json")
        configs = policy_configs(config_path, POLICIES)
        loaded_preview = None
        if preview_fidelity:
            loaded_preview = load_plan(preview_plan or build / f"plan-{stack}-first-preview.json")
    except (RunnerError, PlanError, StackConfigError) as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    try:
        findings = run_policies(loaded, stack, stack_config, configs)
    except Exception as error:  # a policy that crashes fails the preview in the engine too
        print(f"error: a policy raised {type(error).__name__}: {error}", file=sys.stderr)
        return ExitCode.USAGE
    report: dict[str, Any] = {
        "stack": stack,
        "pack": f"{PACK_NAME}@{PACK_VERSION}",
        "policies": [p.name for p in POLICIES],
        "findings": [asdict(f) for f in findings],
    }
    shown = [f for f in findings if f.kind != "not-applicable"]
    print(render(shown) if shown else "no violations")
    applicable = sorted({f.policy for f in findings if f.kind == "not-applicable"})
    if applicable:
        print(f"not applicable to {stack}: {', '.join(applicable)}")
    if loaded_preview is not None:
        downgrades = silent_downgrades(
            findings, run_policies(loaded_preview, stack, stack_config, configs), configs
        )
        report["previewDowngrades"] = [asdict(f) for f in downgrades]
        print(f"\n--preview-fidelity: {len(downgrades)} mandatory check(s) a first preview could not run:")
        if downgrades:
            print(render(downgrades))
    out = out or build / f"policy-{stack}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    failed = mandatory_violations(findings)
    print(f"\n{stack}: {len(POLICIES)} policies, {len(failed)} mandatory violation(s) -> {out}")
    return ExitCode.FAILED if failed else ExitCode.OK
