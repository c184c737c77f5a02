"""Provider contracts: what the providers enforce beyond the SDK types, each rule with its source.

`load_contracts()` joins the extracted and the hand-written rules and the program's data-bearing types
(components/data/data_bearing.json) into one `Contracts` (docs/tools.md).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

# data_bearing_types stays importable from here: older trees' programs import it from this package, and
# `make diff` evaluates them with these tools.
from components.data_bearing import data_bearing, data_bearing_types

__all__ = ["Contracts", "Rule", "data_bearing_types", "load_contracts"]

HERE = Path(__file__).resolve().parent
STAGES = ("preview", "create", "api")


@dataclass(frozen=True)
class Rule:
    """One rule for one resource type. `spec` holds the kind-specific fields (path, fields, values...)."""

    type: str
    kind: str
    stage: str
    source: str
    spec: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Contracts:
    rules: dict[str, list[Rule]]
    immutable: dict[str, list[str]]
    terraform: dict[str, str]
    singletons: list[dict[str, Any]]
    adopt_existing: list[dict[str, Any]]
    plan_features: list[dict[str, Any]]
    edge_certificate: dict[str, Any]
    create_behaviour: dict[str, dict[str, str]]
    data_bearing: dict[str, str]
    upstream: dict[str, str]

    def for_type(self, typ: str) -> list[Rule]:
        return self.rules.get(typ, [])

    @property
    def types(self) -> set[str]:
        """Every resource type the contracts cover."""
        return set(self.terraform) | {t for kind in self.create_behaviour.values() for t in kind}


def _extracted(path: Path) -> tuple[dict[str, list[Rule]], dict[str, list[str]], dict[str, str]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    commit, repository = data["commit"], data["repository"]
    rules: dict[str, list[Rule]] = {}
    immutable: dict[str, list[str]] = {}
    terraform: dict[str, str] = {}
    for typ, resource in data["resources"].items():
        terraform[typ] = resource["terraform"]
        for raw in resource["rules"]:
            spec = {k: v for k, v in raw.items() if k not in ("kind", "line", "file")}
            source = f"{repository} {raw['file']}#L{raw['line']}@{commit[:12]}"
            if raw["kind"] == "immutable":
                immutable.setdefault(typ, []).append(spec["path"])
            rules.setdefault(typ, []).append(Rule(typ, raw["kind"], "preview", source, spec))
    return rules, immutable, terraform


@cache
def load_contracts(directory: Path = HERE) -> Contracts:
    """The committed contracts (cached: the files do not change while a plan runs)."""
    rules: dict[str, list[Rule]] = {}
    immutable: dict[str, list[str]] = {}
    terraform: dict[str, str] = {}
    for path in sorted((directory / "extracted").glob("*.json")):
        more_rules, more_immutable, more_terraform = _extracted(path)
        for typ, items in more_rules.items():
            rules.setdefault(typ, []).extend(items)
        for typ, paths in more_immutable.items():
            immutable.setdefault(typ, []).extend(paths)
        terraform.update(more_terraform)
    hand = yaml.safe_load((directory / "rules.yaml").read_text(encoding="utf-8"))
    for raw in hand.get("inputs", []):
        spec = {k: v for k, v in raw.items() if k not in ("type", "kind", "stage", "source")}
        # `type` is one type, or a list of types that share the rule (e.g. every IAM member resource).
        for typ in raw["type"] if isinstance(raw["type"], list) else [raw["type"]]:
            rules.setdefault(typ, []).append(Rule(typ, raw["kind"], raw["stage"], raw["source"], spec))
    return Contracts(
        rules=rules,
        immutable=immutable,
        terraform=terraform,
        singletons=hand.get("singletons", []),
        adopt_existing=hand.get("adopt_existing", []),
        plan_features=hand.get("plan_features", []),
        edge_certificate=hand.get("edge_certificate", {}),
        create_behaviour=hand.get("create_behaviour", {}),
        data_bearing=dict(data_bearing()),
        upstream=hand.get("upstream", {}),
    )

