"""Check one registered resource against the provider contracts; return its violations.

Reads the stack config raw (as the engine passes it), never the program's config model (docs/tools.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import rpc

from components.config_types import CLOUDFLARE_PLANS as PLANS
from tools.offline.contracts import Contracts, Rule, load_contracts

_DURATION = re.compile(r"^(-?\d+(?:\.\d{1,9})?)s$")


@dataclass(frozen=True)
class Violation:
    """One broken rule. `input` is the concrete input path (list positions in brackets)."""

    type: str
    name: str
    input: str
    rule: str
    stage: str
    source: str
    # False for rules about options (singleton, adoption), True for rules about an input's value.
    checks_value: bool = True
    unknown_at_preview: bool = False

    def line(self) -> str:
        where = {
            "preview": "pulumi preview fails",
            "create": "pulumi up fails at create",
            "api": "the API rejects it",
        }.get(self.stage, self.stage)
        text = f"{self.type} {self.name}: {self.input or '-'}: {self.rule} [{where}] (source: {self.source})"
        if self.unknown_at_preview:
            text += (
                " -- this value is computed by the cloud, so it is unknown at a real preview and"
                " the provider's Check skips it; the API will still reject it"
            )
        return text


@dataclass(frozen=True)
class Environment:
    """The stack config values the environment-dependent rules read."""

    create_project: bool = True
    cloudflare_plan: str = "free"
    edge_certificate: str = "universal"
    domain: str = ""

    @classmethod
    def from_config(cls, config: Mapping[str, str]) -> Environment:
        def value(key: str, default: str) -> str:
            return str(config.get(f"launchready:{key}", default)).strip().lower()

        return cls(
            create_project=value("createProject", "true") != "false",
            cloudflare_plan=value("cloudflarePlan", "free"),
            edge_certificate=value("edgeCertificate", "universal"),
            domain=value("domain", "").rstrip("."),
        )


# ---- reading inputs by Pulumi path -----------------------------------------------------------------


def plain(value: Any) -> Any:
    """A Pulumi secret's value: the providers validate the plaintext."""
    if rpc.is_rpc_secret(value):
        return plain(value.get("value"))
    return value


def _child(obj: Mapping[str, Any], key: str) -> Any:
    # The bridge pluralizes some list names (Terraform `rewrite` -> Pulumi `rewrites`).
    for candidate in (key, f"{key}s", f"{key}es"):
        if candidate in obj:
            return plain(obj[candidate])
    return None


def walk(value: Any, path: str, where: str = "") -> Iterator[tuple[str, Any]]:
    """(concrete path, value) for every value at `path`, iterating lists on the way (missing: None)."""
    value = plain(value)
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from walk(item, path, f"{where}[{index}]")
        return
    if not path:
        yield where, value
        return
    head, _, rest = path.partition(".")
    if not isinstance(value, Mapping):
        yield f"{where}.{path}" if where else path, None
        return
    child = _child(value, head)
    yield from walk(child, rest, f"{where}.{head}" if where else head)


def is_set(value: Any) -> bool:
    # An empty block (`auto {}`) is set; an empty list of blocks is not.
    return value is not None and value != []


def _scope(paths: list[str]) -> str:
    """Longest common parent path of the given field paths."""
    parents = [p.split(".")[:-1] for p in paths]
    common: list[str] = []
    for parts in zip(*parents, strict=False):
        if len(set(parts)) != 1:
            break
        common.append(parts[0])
    return ".".join(common)


def _relative(path: str, scope: str) -> str:
    return path[len(scope) + 1 :] if scope else path


def _set_fields(obj: Any, fields: list[str]) -> list[str]:
    return [f for f in fields if any(is_set(v) for _, v in walk(obj, f))]


def _join(where: str, field: str) -> str:
    return f"{where}.{field}" if where else field


# ---- input rules -----------------------------------------------------------------------------------


def _check_input_rule(rule: Rule, inputs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(input path, what is wrong) for each place `inputs` breaks `rule`."""
    spec = rule.spec
    if rule.kind in ("exactly_one_of", "at_least_one_of"):
        scope: str = spec["scope"] if "scope" in spec else _scope(spec["fields"])
        fields = [f if "scope" in spec else _relative(f, scope) for f in spec["fields"]]
        for where, obj in walk(inputs, scope) if scope else [("", inputs)]:
            if obj is None:
                continue
            found = _set_fields(obj, fields)
            meaning = f" ({spec['meaning']})" if spec.get("meaning") else ""
            if rule.kind == "exactly_one_of" and len(found) != 1:
                got = ", ".join(found) if found else "none"
                wanted = ", ".join(fields)
                yield where or fields[0], f"exactly one of {wanted} must be set{meaning}; got {got}"
            if rule.kind == "at_least_one_of" and not found:
                yield where or fields[0], f"at least one of {', '.join(fields)} must be set{meaning}"
    elif rule.kind in ("conflicts_with", "required_with"):
        scope = _scope([spec["path"], *spec["others"]])
        own = _relative(spec["path"], scope)
        others = [_relative(o, scope) for o in spec["others"]]
        for where, obj in walk(inputs, scope) if scope else [("", inputs)]:
            if obj is None or not _set_fields(obj, [own]):
                continue
            present = _set_fields(obj, others)
            if rule.kind == "conflicts_with" and present:
                yield _join(where, own), f"conflicts with {', '.join(present)} (set only one)"
            missing = [o for o in others if o not in present]
            if rule.kind == "required_with" and missing:
                yield _join(where, own), f"requires {', '.join(missing)} to be set too"
    elif rule.kind == "when":
        condition, then = spec["if"], spec["then"]
        for _, value in walk(inputs, condition["path"]):
            if value != condition["equals"]:
                return
        when = f"when {condition['path']} is {condition['equals']}: {spec['meaning']}"
        for where, value in walk(inputs, then["path"]):
            if "values" in then and value is not None and value not in then["values"]:
                yield where, f"must be one of {then['values']} {when}; got {value!r}"
            if then.get("present") and not is_set(value):
                yield where, f"must be set {when}"
    else:
        for where, value in walk(inputs, spec["path"]):
            if value is None or value == rpc.UNKNOWN:
                continue
            problem = _value_problem(rule, value)
            if problem:
                yield where, problem


def _value_problem(rule: Rule, value: Any) -> str | None:
    spec = rule.spec
    if rule.kind == "enum":
        allowed = spec["values"]
        if isinstance(value, str) and not spec.get("caseSensitive", True):
            ok = value.lower() in {str(a).lower() for a in allowed}
        else:
            ok = value in allowed
        shown = [a for a in allowed if a != ""]
        return None if ok else f"must be one of {', '.join(map(str, shown))}; got {value!r}"
    if rule.kind == "range" and isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.get("min"), spec.get("max")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
            return f"must be in {bounds}; got {value:g}"
    if rule.kind == "length" and isinstance(value, str) and not spec["min"] <= len(value) <= spec["max"]:
        return f"length must be {spec['min']}..{spec['max']}; got {len(value)}"
    if rule.kind == "format" and isinstance(value, str) and not re.search(spec["pattern"], value):
        label = spec.get("format", "format")
        return f"{label} must match {spec['pattern']}; got {value!r}"
    if rule.kind == "duration" and isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            return f"must be a duration in seconds like '600s'; got {value!r}"
        seconds = float(match.group(1))
        if not spec["min"] <= seconds <= spec["max"]:
            return f"must be between {spec['min']}s and {spec['max']}s; got {value}"
    return None


# ---- change- and environment-related rules ---------------------------------------------------------


def _identity_matches(entry: Mapping[str, Any], inputs: Mapping[str, Any]) -> bool:
    identity = entry.get("identity")
    if not identity:
        return True
    values = [v for _, v in walk(inputs, identity["path"])]
    if "pattern" not in identity:
        return any(is_set(v) for v in values)
    return any(isinstance(v, str) and re.search(identity["pattern"], v) for v in values)


def _environment_violations(
    contracts: Contracts, typ: str, inputs: Mapping[str, Any], options: Mapping[str, Any], env: Environment
) -> Iterator[tuple[str, str, str, str, bool]]:
    """(input, rule, stage, source, checks a value) for singleton, adoption, plan-tier, certificate rules."""
    for entry in contracts.singletons:
        if entry["type"] != typ or options.get("deleteBeforeReplace"):
            continue
        if _identity_matches(entry, inputs):
            immutable = ", ".join(sorted(set(contracts.immutable.get(typ, []))))
            inferred = (
                "the bridge would infer delete-before-replace from the explicit name; state it"
                if entry.get("bridge_infers_delete_before_replace")
                else "Pulumi would create the replacement first and fail with already-exists"
            )
            yield (
                entry.get("identity", {}).get("path", ""),
                f"singleton ({entry['meaning']}): a change to an immutable input ({immutable}) replaces it;"
                f" declare the option deleteBeforeReplace ({inferred})",
                "create",
                entry["source"],
                False,
            )
    if not env.create_project:
        for entry in contracts.adopt_existing:
            if entry["type"] == typ and _identity_matches(entry, inputs) and not options.get("importId"):
                yield (
                    "",
                    "already exists in the adopted project (launchready:createProject is false): declare it"
                    f" with an import id (option importId); creating it {entry['behaviour']}",
                    "create",
                    entry["source"],
                    False,
                )
    plan = env.cloudflare_plan if env.cloudflare_plan in PLANS else "free"
    for feature in contracts.plan_features:
        if feature["type"] != typ:
            continue
        when = feature.get("when")
        if when and not any(v == when["equals"] for _, v in walk(inputs, when["path"])):
            continue
        if PLANS.index(plan) >= PLANS.index(feature["plan"]):
            continue
        for where, value in walk(inputs, feature["path"]):
            if is_set(value) and value not in feature.get("free_values", []):
                yield (
                    where,
                    f"{feature['meaning']} needs a Cloudflare {feature['plan'].title()} plan or higher;"
                    f" launchready:cloudflarePlan is {plan}",
                    feature["stage"],
                    feature["source"],
                    True,
                )
    cert = contracts.edge_certificate
    if cert.get("type") == typ and env.edge_certificate == "universal" and inputs.get("proxied") is True:
        depth = _depth_below_apex(str(plain(inputs.get("name")) or ""), env.domain)
        if depth > 1:
            yield (
                "name",
                f"a proxied host {depth} levels below the zone apex is not covered by Universal SSL"
                " (apex and one level only); set launchready:edgeCertificate to advanced or custom"
                " (a certificate covering it) or do not proxy it",
                cert["stage"],
                cert["source"],
                True,
            )


def _depth_below_apex(name: str, domain: str) -> int:
    name = name.rstrip(".").lower()
    if name in ("@", domain) or not name:
        return 0
    if domain and name.endswith("." + domain):
        name = name[: -len(domain) - 1]
    return name.count(".") + 1


def check_resource(
    typ: str,
    name: str,
    inputs: Mapping[str, Any],
    options: Mapping[str, Any],
    env: Environment,
    contracts: Contracts | None = None,
) -> list[Violation]:
    """Every contract `inputs`/`options` of this resource break, in a stable order."""
    contracts = contracts or load_contracts()
    found: list[Violation] = []
    for rule in contracts.for_type(typ):
        for where, problem in _check_input_rule(rule, inputs):
            label = rule.kind.replace("_", "-")
            found.append(Violation(typ, name, where, f"{label}: {problem}", rule.stage, rule.source))
    for where, problem, stage, source, checks_value in _environment_violations(
        contracts, typ, inputs, options, env
    ):
        found.append(Violation(typ, name, where, problem, stage, source, checks_value))
    return found
