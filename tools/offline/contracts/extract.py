"""`python -m tools contracts-extract`: provider contracts from a Terraform provider's Go source.

Every rule records its file, line and commit; nothing is written when a file yields no schema (docs/tools.md).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.exit_codes import ExitCode

HERE = Path(__file__).resolve().parent
PROVIDERS_FILE = HERE / "providers.yaml"
EXTRACTED_DIR = HERE / "extracted"


class ExtractError(Exception):
    """The checkout does not hold what providers.yaml names; printed without a stack trace."""


def camel(name: str) -> str:
    """Terraform snake_case -> Pulumi camelCase (`service_config` -> `serviceConfig`)."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def pulumi_path(terraform_path: str) -> str:
    """`config.0.rewrites.0.glob` -> `config.rewrites.glob`."""
    return ".".join(camel(part) for part in terraform_path.split(".") if not part.isdigit())


# ---- Go source scanning --------------------------------------------------------------------------


def mask_strings(source: str) -> str:
    """Same text with every string literal's and comment's content blanked (positions kept).

    Braces and keywords inside descriptions (which hold HCL examples) must not count as code.
    """
    out = list(source)
    i, n = 0, len(source)
    while i < n:
        ch = source[i]
        if ch == "/" and source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
        elif ch == "`":
            end = source.find("`", i + 1)
            end = n - 1 if end < 0 else end
            out[i + 1 : end] = [c if c == "\n" else " " for c in source[i + 1 : end]]
            i = end + 1
        elif ch == '"':
            j = i + 1
            while j < n and source[j] != '"':
                j += 2 if source[j] == "\\" else 1
            out[i + 1 : j] = "_" * (j - i - 1)
            i = j + 1
        else:
            i += 1
    return "".join(out)


def matching_brace(masked: str, open_at: int) -> int:
    depth = 0
    for i in range(open_at, len(masked)):
        if masked[i] == "{":
            depth += 1
        elif masked[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise ExtractError("unbalanced braces in Go source")


_FIELD = re.compile(r'"([a-z0-9_]+)"\s*:\s*(?:schema\.\w+\s*)?\{')
_ELEM_FUNC = re.compile(r"Elem:\s*(\w+)\(\)")


@dataclass
class Field:
    path: str  # Terraform path without list indexes, e.g. config.rewrites.glob
    start: int
    end: int
    own: list[tuple[int, int]] = field(default_factory=list)  # spans not inside a nested field


def fields_in(source: str, masked: str, start: int, end: int, prefix: str) -> Iterator[Field]:
    """Every schema field between start and end, nested fields with dotted paths."""
    pos = start
    while True:
        match = _FIELD.search(masked, pos, end)
        if not match:
            return
        # The name sits in a string literal: read it from the source, the mask blanked it.
        name = _FIELD.match(source, match.start())
        assert name is not None
        path = f"{prefix}.{name.group(1)}" if prefix else name.group(1)
        open_at = match.end() - 1
        close_at = matching_brace(masked, open_at)
        children = list(fields_in(source, masked, open_at + 1, close_at, path))
        own: list[tuple[int, int]] = []
        cursor = open_at
        for child in (c for c in children if c.path.count(".") == path.count(".") + 1):
            own.append((cursor, child.start))
            cursor = child.end
        own.append((cursor, close_at))
        yield Field(path=path, start=match.start(), end=close_at + 1, own=own)
        yield from children
        pos = close_at + 1


def function_body(masked: str, name: str) -> tuple[int, int] | None:
    match = re.search(rf"func {re.escape(name)}\([^)]*\)[^{{]*\{{", masked)
    if not match:
        return None
    open_at = match.end() - 1
    return open_at + 1, matching_brace(masked, open_at)


def schema_region(masked: str, name: str | None = None) -> tuple[int, int]:
    """The body of the resource's schema function (or of the schema variable / function `name`)."""
    if name:
        named = re.escape(name)
        patterns = [rf"var {named} = map\[string\]\*schema\.Schema\{{", rf"func {named}\([^)]*\)[^{{]*\{{"]
    else:
        patterns = [
            r"func Resource\w*\(\) \*schema\.Resource \{",
            r"func ResourceSchema\([^)]*\) schema\.Schema \{",
        ]
    for pattern in patterns:
        match = re.search(pattern, masked)
        if match:
            open_at = match.end() - 1
            return open_at + 1, matching_brace(masked, open_at)
    raise ExtractError(f"no schema {name or 'function (func Resource...() or func ResourceSchema)'} found")


def all_fields(source: str, schema: str | None = None) -> list[Field]:
    masked = mask_strings(source)
    start, end = schema_region(masked, schema)
    identity = re.search(r"Identity:\s*&schema\.ResourceIdentity\{", masked[start:end])
    regions = [(start, end, "")]
    if identity:
        id_open = start + identity.end() - 1
        id_close = matching_brace(masked, id_open)
        regions = [(start, id_open, ""), (id_close, end, "")]
    found: list[Field] = []
    pending = list(regions)
    seen_funcs: set[tuple[str, str]] = set()
    while pending:
        lo, hi, prefix = pending.pop(0)
        for item in fields_in(source, masked, lo, hi, prefix):
            found.append(item)
            # Nested schema defined in a helper function: `Elem: someSchema()`.
            for lo_own, hi_own in item.own:
                for elem in _ELEM_FUNC.finditer(masked, lo_own, hi_own):
                    body = function_body(masked, elem.group(1))
                    if body and (elem.group(1), item.path) not in seen_funcs:
                        seen_funcs.add((elem.group(1), item.path))
                        pending.append((body[0], body[1], item.path))
    return found


# ---- rules from one field's own text --------------------------------------------------------------


def _strings(source: str, lo: int, hi: int) -> list[str]:
    return re.findall(r'"((?:[^"\\]|\\.)*)"', source[lo:hi])


def _call_spans(masked: str, lo: int, hi: int, pattern: str) -> Iterator[tuple[int, int]]:
    """Spans of the argument lists of calls matching `pattern(` inside [lo, hi)."""
    for match in re.finditer(rf"(?:{pattern})\(", masked[lo:hi]):
        open_at = lo + match.end() - 1
        depth = 0
        for i in range(open_at, hi):
            depth += masked[i] == "("
            depth -= masked[i] == ")"
            if depth == 0:
                yield open_at + 1, i
                break


def _list_literal(masked: str, lo: int, hi: int, key: str) -> Iterator[tuple[int, int]]:
    for match in re.finditer(key + r":\s*\[\]string\{", masked[lo:hi]):
        open_at = lo + match.end() - 1
        yield open_at + 1, matching_brace(masked, open_at)


def _relative(path: str, expression: str) -> str | None:
    """A framework path expression -> Terraform path (MatchRoot: absolute; AtParent: sibling)."""
    root = re.fullmatch(r'path\.MatchRoot\("(\w+)"\)((?:\.AtName\("\w+"\))*)', expression)
    if root:
        return ".".join([root.group(1), *re.findall(r'AtName\("(\w+)"\)', root.group(2))])
    sibling = re.fullmatch(r'path\.MatchRelative\(\)\.AtParent\(\)\.AtName\("(\w+)"\)', expression)
    if sibling:
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        return f"{parent}.{sibling.group(1)}" if parent else sibling.group(1)
    return None


def _number(text: str) -> float | int:
    value = float(text)
    return int(value) if value.is_integer() else value


_GROUPS = {"ExactlyOneOf": "exactly_one_of", "AtLeastOneOf": "at_least_one_of"}
_PAIRS = {"ConflictsWith": "conflicts_with", "RequiredWith": "required_with", "AlsoRequires": "required_with"}


def field_rules(source: str, masked: str, item: Field) -> Iterator[dict[str, Any]]:
    def line(pos: int) -> int:
        return source.count("\n", 0, pos) + 1

    for lo, hi in item.own:
        own = masked[lo:hi]
        for match in re.finditer(r"ForceNew:\s*true|RequiresReplace\w*\(", own):
            yield {"kind": "immutable", "path": item.path, "line": line(lo + match.start())}
            break
        # SDK v2: lists of Terraform paths.
        for key, kind in {**_GROUPS, **_PAIRS}.items():
            for a, b in _list_literal(masked, lo, hi, key):
                others = [p for p in _strings(source, a, b)]
                if others:
                    yield _relation(kind, item.path, others, line(a))
        # Plugin framework: validators taking path expressions.
        for key, kind in {**_GROUPS, **_PAIRS}.items():
            for a, b in _call_spans(masked, lo, hi, rf"validator\.{key}"):
                expressions = [e.strip() for e in re.split(r",\s*(?=path\.)", source[a:b]) if e.strip()]
                others = [p for p in (_relative(item.path, e) for e in expressions) if p]
                if others:
                    yield _relation(kind, item.path, others, line(a))
        for pattern in (
            r"validation\.StringInSlice",
            r"verify\.ValidateEnum",
            r"stringvalidator\.OneOf\w*",
        ):
            for a, b in _call_spans(masked, lo, hi, pattern):
                values = _strings(source, a, b)
                case = "CaseInsensitive" not in masked[a - 40 : a] and ", true)" not in source[a : b + 1]
                yield {
                    "kind": "enum",
                    "path": item.path,
                    "values": values,
                    "caseSensitive": case,
                    "line": line(a),
                }
        for a, b in _call_spans(masked, lo, hi, r"(?:int64|float64)validator\.OneOf"):
            values = [_number(v) for v in re.findall(r"-?\d+(?:\.\d+)?", source[a:b])]
            yield {
                "kind": "enum",
                "path": item.path,
                "values": values,
                "caseSensitive": True,
                "line": line(a),
            }
        for pattern, bounds in (
            (r"validation\.(?:IntBetween|FloatBetween)|(?:int64|float64)validator\.Between", ("min", "max")),
            (r"validation\.(?:IntAtLeast|FloatAtLeast)|(?:int64|float64)validator\.AtLeast", ("min",)),
            (r"validation\.(?:IntAtMost|FloatAtMost)|(?:int64|float64)validator\.AtMost", ("max",)),
        ):
            for a, b in _call_spans(masked, lo, hi, rf"(?:{pattern})"):
                numbers = re.findall(r"-?\d+(?:\.\d+)?", source[a:b])
                if len(numbers) == len(bounds):
                    rule: dict[str, Any] = {"kind": "range", "path": item.path, "line": line(a)}
                    rule.update({k: _number(v) for k, v in zip(bounds, numbers, strict=True)})
                    yield rule
        for a, b in _call_spans(
            masked, lo, hi, r"validation\.StringLenBetween|stringvalidator\.LengthBetween"
        ):
            numbers = re.findall(r"\d+", source[a:b])
            if len(numbers) == 2:
                yield {
                    "kind": "length",
                    "path": item.path,
                    "min": int(numbers[0]),
                    "max": int(numbers[1]),
                    "line": line(a),
                }
        for match in re.finditer(r"verify\.ValidateDuration\(\)", own):
            yield {
                "kind": "format",
                "path": item.path,
                "format": "duration",
                "pattern": r"^-?\d+(\.\d{1,9})?s$",
                "line": line(lo + match.start()),
            }
        for a, b in _call_spans(masked, lo, hi, r"verify\.ValidateRFC1035Name"):
            numbers = re.findall(r"\d+", source[a:b])
            if len(numbers) == 2:
                # verify.RFC1035NameTemplate, and the length check beside it.
                yield {
                    "kind": "format",
                    "path": item.path,
                    "format": "RFC 1035 name",
                    "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$",
                    "line": line(a),
                }
                low, high = int(numbers[0]), int(numbers[1])
                yield {"kind": "length", "path": item.path, "min": low, "max": high, "line": line(a)}
        for a, b in _call_spans(masked, lo, hi, r"verify\.ValidateRegexp|regexp\.MustCompile"):
            literal = re.search(r"`([^`]*)`|\"((?:[^\"\\]|\\.)*)\"", source[a:b])
            if literal:
                raw = literal.group(1)
                pattern_text = raw if raw is not None else _unquote(literal.group(2))
                yield {"kind": "format", "path": item.path, "pattern": pattern_text, "line": line(a)}


def _unquote(go_string: str) -> str:
    return json.loads(f'"{go_string}"')


def _relation(kind: str, path: str, others: list[str], line: int) -> dict[str, Any]:
    terraform = [path, *others] if kind in _GROUPS.values() else others
    fields = sorted({".".join(p for p in t.split(".") if not p.isdigit()) for t in terraform})
    rule: dict[str, Any] = {"kind": kind, "line": line}
    if kind in _GROUPS.values():
        rule["fields"] = fields
    else:
        rule["path"] = path
        rule["others"] = fields
    return rule


def extract_resource(source: str, schema: str | None = None) -> list[dict[str, Any]]:
    """Every rule the schema in `source` declares, paths in Pulumi camelCase, deduplicated.

    `schema` names the function or `var` holding the schema map; default: the file's resource function.
    """
    masked = mask_strings(source)
    rules: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in all_fields(source, schema):
        for rule in field_rules(source, masked, item):
            for key in ("path",):
                if key in rule:
                    rule[key] = pulumi_path(rule[key])
            for key in ("fields", "others"):
                if key in rule:
                    rule[key] = sorted({pulumi_path(p) for p in rule[key]})
            identity = json.dumps({k: v for k, v in rule.items() if k != "line"}, sort_keys=True)
            if identity not in seen:
                seen.add(identity)
                rules.append(rule)
    return rules


# ---- command line ---------------------------------------------------------------------------------


def load_providers() -> dict[str, Any]:
    return yaml.safe_load(PROVIDERS_FILE.read_text(encoding="utf-8"))["providers"]


def git_commit(checkout: Path) -> str:
    result = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise ExtractError(f"{checkout} is not a git checkout: {result.stderr.strip()}")
    return result.stdout.strip()


def extract_provider(name: str, checkout: Path, commit: str | None = None) -> dict[str, Any]:
    providers = load_providers()
    if name not in providers:
        raise ExtractError(f"unknown provider {name!r}: one of {', '.join(sorted(providers))}")
    provider = providers[name]
    resources: dict[str, Any] = {}
    for token, entry in sorted(provider["resources"].items()):
        rules: list[dict[str, Any]] = []
        for source in entry["sources"]:
            path = checkout / source["file"]
            if not path.is_file():
                raise ExtractError(f"{source['file']} not found in {checkout} (for {token})")
            try:
                found = extract_resource(path.read_text(encoding="utf-8"), source.get("schema"))
            except ExtractError as error:
                raise ExtractError(f"{source['file']}: {error} (for {token})") from None
            rules.extend({**rule, "file": source["file"]} for rule in found)
        if not rules:
            raise ExtractError(f"no schema rules found for {token}")
        resources[token] = {"terraform": entry["terraform"], "rules": rules}
    return {
        "provider": name,
        "repository": provider["repository"],
        "commit": commit or git_commit(checkout),
        "resources": resources,
    }


def run(provider: str, checkout: Path, *, commit: str | None = None, out: Path | None = None) -> ExitCode:
    """Extract `provider`'s rules from `checkout` into `out` (default extracted/<provider>.json): OK, or
    USAGE when the checkout does not hold what providers.yaml names."""
    try:
        data = extract_provider(provider, checkout, commit)
    except ExtractError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    out = out or EXTRACTED_DIR / f"{provider}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    count = sum(len(r["rules"]) for r in data["resources"].values())
    types = len(data["resources"])
    print(f"{provider}@{data['commit'][:12]}: {count} rules for {types} types -> {out}")
    return ExitCode.OK
