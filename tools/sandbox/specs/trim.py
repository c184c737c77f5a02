"""`python -m tools trim-spec`: a provider's OpenAPI document cut to the operations the sandbox serves.

The subset changes nothing a request or an unexpanded response may contain (docs/tools.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tools.exit_codes import ExitCode

PROSE = frozenset({"description", "summary"})
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})


class TrimError(ValueError):
    pass


SCHEMA_REF = "#/components/schemas/"


def _reduce(node: Any, in_schema: bool = False, expandable: frozenset[str] = frozenset()) -> Any:
    if isinstance(node, list):
        return [_reduce(item, in_schema, expandable) for item in node]
    if not isinstance(node, dict):
        return node
    if "x-expansionResources" in node and "anyOf" in node:
        kept = [option for option in node["anyOf"]
                if "$ref" not in option or option["$ref"].removeprefix(SCHEMA_REF) in expandable]
        node = {key: value for key, value in node.items() if key != "x-expansionResources"}
        node["anyOf"] = kept
    return {
        key: _reduce(value, in_schema or key == "schema", expandable)
        for key, value in node.items()
        if not (in_schema and key in PROSE and isinstance(value, str))
    }


def _refs(node: Any) -> list[str]:
    found: list[str] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str):
                found.append(ref)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _resolve(document: dict[str, Any], ref: str) -> tuple[list[str], Any]:
    if not ref.startswith("#/"):
        raise TrimError(f"only local references are supported, got {ref!r}")
    parts = [part.replace("~1", "/").replace("~0", "~") for part in ref[2:].split("/")]
    node: Any = document
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            raise TrimError(f"dangling reference {ref!r}")
        node = node[part]
    return parts, node


def trim(
    document: dict[str, Any], keep: list[tuple[str, str]], expandable: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """The document with only the `keep` operations ((method, path) pairs) and what they reference;
    an expandable field keeps its object form only for the schemas named in `expandable`."""
    paths: dict[str, dict[str, Any]] = {}
    for method, path in keep:
        item = document.get("paths", {}).get(path)
        if not item or method not in item:
            raise TrimError(f"{method.upper()} {path} is not in the document")
        kept = paths.setdefault(path, {k: v for k, v in item.items() if k not in HTTP_METHODS})
        kept[method] = item[method]
    out: dict[str, Any] = {
        key: value for key, value in document.items() if key not in ("paths", "components", "webhooks")
    }
    out["paths"] = _reduce(paths, expandable=expandable)
    components: dict[str, dict[str, Any]] = {}
    # Security schemes are referenced by name, not by $ref: keep those the document declares.
    schemes = document.get("components", {}).get("securitySchemes")
    if schemes:
        components["securitySchemes"] = schemes
    pending = _refs(out["paths"])
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        parts, target = _resolve(document, ref)
        if len(parts) != 3 or parts[0] != "components":
            raise TrimError(f"references must point at components/<kind>/<name>, got {ref!r}")
        reduced = _reduce(target, in_schema=parts[1] == "schemas", expandable=expandable)
        components.setdefault(parts[1], {})[parts[2]] = reduced
        pending.extend(_refs(reduced))
    if components:
        out["components"] = {kind: dict(sorted(items.items())) for kind, items in sorted(components.items())}
    return out


def operation(text: str) -> tuple[str, str]:
    """('post', '/v1/things') from "POST /v1/things"; ValueError for anything else."""
    method, _, path = text.strip().partition(" ")
    if method.lower() not in HTTP_METHODS or not path.startswith("/"):
        raise ValueError(f"expected 'METHOD /path', got {text!r}")
    return method.lower(), path.strip()


def run(full: Path, out: Path, keep: list[str], expandable: list[str] | None = None) -> ExitCode:
    """Write the subset of `full` holding the `keep` operations to `out`, with the expanded forms of the
    `expandable` schemas: OK, or USAGE (nothing written)."""
    try:
        operations = [operation(text) for text in keep]
        subset = trim(json.loads(full.read_text()), operations, frozenset(expandable or ()))
    except (OSError, ValueError, TrimError) as exc:  # JSONDecodeError is a ValueError
        print(f"✗ {exc}", file=sys.stderr)
        return ExitCode.USAGE
    out.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n")
    kinds = {kind: len(items) for kind, items in subset.get("components", {}).items()}
    print(f"{out}: {len(operations)} operations, components {kinds}, {out.stat().st_size} bytes")
    return ExitCode.OK
