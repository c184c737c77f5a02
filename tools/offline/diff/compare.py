"""Compare two plans of one stack by URN: the steps a `pulumi preview` would show, predicted offline.

Ops and diff kinds are the engine's; a replacement is predicted only from the contracts (docs/tools.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from components.data_bearing import data_bearing_types
from tools.offline.contracts import load_contracts

MISSING = object()
# Options the engine records in the state without calling the provider; shown, never an input diff.
_REVIEWED_OPTIONS = (
    "protect",
    "retainOnDelete",
    "deleteBeforeReplace",
    "ignoreChanges",
    "aliases",
    "provider",
)


@dataclass
class PropertyChange:
    """One changed input path (Pulumi's property path syntax: `a.b[0].c`) with old and new values."""

    path: str
    kind: str  # add | delete | update, with "-replace" when the path is immutable
    old: Any = None
    new: Any = None


@dataclass
class Step:
    op: str  # create | update | replace | delete | same
    urn: str
    type: str
    name: str
    changes: list[PropertyChange] = field(default_factory=list)
    option_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    destructive: list[str] = field(default_factory=list)  # why, one line each
    refused: list[str] = field(default_factory=list)  # what the provider refuses as planned, and the fix
    rename_of: str | None = None  # on a create: the deleted URN it probably is
    renamed_to: str | None = None  # on a delete: the created URN it probably became
    delete_before_replace: bool = False
    old: dict[str, Any] | None = None
    new: dict[str, Any] | None = None

    @property
    def replace_reasons(self) -> list[str]:
        return sorted({_top_key(c.path) for c in self.changes if c.kind.endswith("-replace")})

    @property
    def diff_reasons(self) -> list[str]:
        return sorted({_top_key(c.path) for c in self.changes})


def _top_key(path: str) -> str:
    return re.split(r"[.\[]", path, maxsplit=1)[0]


def _join(path: str, key: str) -> str:
    # Pulumi quotes keys that are not identifiers: a["x.y"].
    part = key if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else f'["{key}"]'
    if not path:
        return part if not part.startswith("[") else part
    return f"{path}{part}" if part.startswith("[") else f"{path}.{part}"


def changed_paths(old: Any, new: Any, path: str = "") -> list[PropertyChange]:
    """Leaf-level differences between two JSON values. Lists compare element-wise (as the engine's
    detailed diff does); a list of different length reports the extra or missing elements."""
    if old is MISSING:
        return [PropertyChange(path, "add", None, new)]
    if new is MISSING:
        return [PropertyChange(path, "delete", old, None)]
    if isinstance(old, dict) and isinstance(new, dict):
        changes: list[PropertyChange] = []
        for key in sorted(set(old) | set(new)):
            changes += changed_paths(old.get(key, MISSING), new.get(key, MISSING), _join(path, key))
        return changes
    if isinstance(old, list) and isinstance(new, list):
        changes = []
        for index in range(max(len(old), len(new))):
            changes += changed_paths(
                old[index] if index < len(old) else MISSING,
                new[index] if index < len(new) else MISSING,
                f"{path}[{index}]",
            )
        return changes
    if old == new and type(old) is type(new):
        return []
    return [PropertyChange(path, "update", old, new)]


def _schema_path(path: str) -> str:
    """`config.rewrites[0].glob` -> `config.rewrites.glob`, the contracts' spelling (no indexes)."""
    return re.sub(r"\[\d+\]", "", path).replace('["', ".").replace('"]', "")


def is_immutable(typ: str, path: str) -> bool:
    """True when changing `path` forces a replacement, per the contracts' immutable inputs of `typ`."""
    schema = _schema_path(path)
    for immutable in load_contracts().immutable.get(typ, []):
        if schema == immutable or schema.startswith(immutable + ".") or immutable.startswith(schema + "."):
            return True
    return False


def _identity(entry: dict[str, Any]) -> dict[str, Any] | None:
    """The inputs that identify a resource to its provider (its immutable inputs present), or None when
    only `project` (or nothing) would identify it: too weak to call two resources the same."""
    immutable = load_contracts().immutable.get(entry["type"], [])
    keys = {p.split(".")[0] for p in immutable} & set(entry["inputs"])
    if not keys - {"project"}:
        return None
    return {k: entry["inputs"][k] for k in sorted(keys)}


def _same_identity(old: dict[str, Any], new: dict[str, Any]) -> bool:
    if old["type"] != new["type"]:
        return False
    identity = _identity(old)
    if identity is None:
        return old["inputs"] == new["inputs"]
    return identity == _identity(new)


def compare(base: list[dict[str, Any]] | None, head: list[dict[str, Any]] | None) -> list[Step]:
    """Every resource's step from `base` to `head` (None: the stack file is absent on that side),
    sorted by URN, renames paired."""
    old_by_urn = {e["urn"]: e for e in base or []}
    new_by_urn = {e["urn"]: e for e in head or []}
    data_bearing = data_bearing_types()
    steps: list[Step] = []
    for urn in sorted(set(old_by_urn) | set(new_by_urn)):
        old, new = old_by_urn.get(urn), new_by_urn.get(urn)
        entry = new or old
        assert entry is not None
        step = Step("same", urn, entry["type"], entry["name"], old=old, new=new)
        if old is None:
            step.op = "create"
        elif new is None:
            step.op = "delete"
            if entry["type"] in data_bearing:
                step.destructive.append(f"deletes a data-bearing {entry['type']}")
            if old["options"].get("protect"):
                step.destructive.append("deletes a protected resource (the engine refuses until unprotected)")
        else:
            step.changes = changed_paths(old["inputs"], new["inputs"])
            for change in step.changes:
                if is_immutable(entry["type"], change.path):
                    change.kind += "-replace"
            for option in _REVIEWED_OPTIONS:
                before, after = old["options"].get(option), new["options"].get(option)
                if before != after:
                    step.option_changes[option] = (before, after)
            step.delete_before_replace = bool(new["options"].get("deleteBeforeReplace"))
            if step.replace_reasons:
                step.op = "replace"
                if entry["type"] in data_bearing:
                    reasons = ", ".join(step.replace_reasons)
                    step.destructive.append(f"replaces a data-bearing {entry['type']} ({reasons})")
            elif step.changes:
                step.op = "update"
            if old["options"].get("protect") and not new["options"].get("protect"):
                step.destructive.append("drops protect")
        steps.append(step)
    _pair_renames(steps)
    _flag_dns_type_changes(steps)
    return steps


DNS_RECORD = "cloudflare:index/dnsRecord:DnsRecord"
# A CNAME cannot share its name with any record; Cloudflare refuses the create with 81053 ("An A, AAAA, or
# CNAME record with that host already exists") or 81054 ("A CNAME record with that host already exists").
# https://developers.cloudflare.com/dns/manage-dns-records/troubleshooting/records-with-same-name/
_DNS_REFUSAL = "Cloudflare refuses the create beside the old record on that name (81053/81054)"
_DNS_TYPE_FIX = (
    "fix: delete the old record first: set deleteBeforeReplace=True on one resource per DNS name (alias the "
    "old one), or deploy the removal before the new record (a brief gap in resolution either way)"
)


def _conflicting_types(old: str, new: str) -> bool:
    return old != new and "CNAME" in (old, new)


def _flag_dns_type_changes(steps: list[Step]) -> None:
    """A DNS record whose type changes on the same name: pulumi-cloudflare v6 replaces create-first (the
    DeleteBeforeReplace override of pulumi/pulumi-cloudflare#693 is gone since v6.0.0), and a record that
    moves to a new resource is created before the old one is deleted (pulumi/pulumi
    pkg/resource/deploy/deployment_executor.go, performPostSteps: deletes come after registration)."""
    deleted = [s.old for s in steps if s.op == "delete" and s.type == DNS_RECORD and s.old is not None]
    for step in steps:
        if step.type != DNS_RECORD or step.new is None:
            continue
        new = step.new["inputs"]
        if step.op == "replace" and step.old is not None and not step.delete_before_replace:
            old_type = str(step.old["inputs"].get("type"))
            if _conflicting_types(old_type, str(new.get("type"))):
                step.refused.append(
                    f"type {old_type} -> {new.get('type')} on {new.get('name')} is replaced create-first: "
                    f"{_DNS_REFUSAL}; {_DNS_TYPE_FIX}"
                )
        if step.op == "create":
            for old in deleted:
                same_name = (old["inputs"].get("zoneId"), old["inputs"].get("name")) == (
                    new.get("zoneId"),
                    new.get("name"),
                )
                old_type = str(old["inputs"].get("type"))
                if same_name and _conflicting_types(old_type, str(new.get("type"))):
                    step.refused.append(
                        f"{new.get('name')} moves from {old_type} ({old['urn']}) to {new.get('type')}: the "
                        f"engine creates before it deletes, so {_DNS_REFUSAL}; {_DNS_TYPE_FIX}"
                    )


def _pair_renames(steps: list[Step]) -> None:
    deletes = [s for s in steps if s.op == "delete" and s.old is not None]
    for create in (s for s in steps if s.op == "create" and s.new is not None):
        for delete in deletes:
            assert delete.old is not None and create.new is not None
            if delete.renamed_to is None and _same_identity(delete.old, create.new):
                create.rename_of, delete.renamed_to = delete.urn, create.urn
                create.changes = changed_paths(delete.old["inputs"], create.new["inputs"])
                break


def alias_hint(step: Step) -> str:
    """The resource option that makes the engine treat a probable rename as the same resource."""
    return f"opts=pulumi.ResourceOptions(aliases=[{json.dumps(step.rename_of)}])"


def counts(steps: list[Step]) -> dict[str, int]:
    """Steps per op, as Pulumi's changeSummary (custom and component resources alike)."""
    summary: dict[str, int] = {}
    for step in steps:
        summary[step.op] = summary.get(step.op, 0) + 1
    return summary
