"""`python -m tools.sandbox.specs.trim`: cut a provider's full OpenAPI document down to the operations
the sandbox serves, keeping every component they reference (transitively) and nothing else.

Two reductions keep a subset of Stripe's document (several MB) reviewable, and neither changes what a
request or an unexpanded response may contain:
- prose: `description` and `summary` strings inside schemas are dropped (a property *named*
  `description` is kept: its value is a schema object, not a string; response objects keep theirs,
  which OpenAPI requires);
- expansions: Stripe marks a field that can be expanded from an id into an object with
  `x-expansionResources`, its `anyOf` listing the id form and the object forms
  (https://docs.stripe.com/api/expanding_objects). Only the id form is kept, plus the object forms named
  with `--expandable` (the resources the sandbox holds and can expand), which drops most of the
  document's graph.

Usage:
    python -m tools.sandbox.specs.trim FULL.json OUT.json --keep "post /v1/checkout/sessions" ... \
        [--expandable customer ...]
Raises SystemExit with a message when an operation to keep is not in the document.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

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


def _operation(text: str) -> tuple[str, str]:
    method, _, path = text.strip().partition(" ")
    if method.lower() not in HTTP_METHODS or not path.startswith("/"):
        raise argparse.ArgumentTypeError(f"expected 'METHOD /path', got {text!r}")
    return method.lower(), path.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.sandbox.specs.trim",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("full", type=Path, help="the provider's full OpenAPI document (JSON)")
    parser.add_argument("out", type=Path, help="where to write the subset (JSON)")
    parser.add_argument(
        "--keep",
        type=_operation,
        action="append",
        required=True,
        metavar="'METHOD /path'",
        help="an operation to keep (repeatable)",
    )
    parser.add_argument(
        "--expandable",
        action="append",
        default=[],
        metavar="SCHEMA",
        help="a schema whose expanded form is kept where a field can be expanded into it (repeatable)",
    )
    args = parser.parse_args(argv)
    try:
        document = json.loads(args.full.read_text())
        subset = trim(document, args.keep, frozenset(args.expandable))
    except (OSError, json.JSONDecodeError, TrimError) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(subset, indent=1, sort_keys=False) + "\n")
    kinds = {kind: len(items) for kind, items in subset.get("components", {}).items()}
    print(f"{args.out}: {len(args.keep)} operations, components {kinds}, {args.out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
