"""Render a program diff: build/diff.json (`pulumi preview --json`'s shape) and build/diff.md (the comment).

The summary is never cut; only per-resource details are, to stay under GitHub's limit (docs/tools.md).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tools.offline.diff.compare import Step, alias_hint, counts

MARKER = "<!-- launchready-diff -->"
MAX_COMMENT = 60_000  # GitHub rejects comment bodies over 65,536 characters; keep a margin.
_VALUE_CHARS = 240
_SYMBOL = {"create": "+", "update": "~", "replace": "+-", "delete": "-", "same": " "}
# The order details appear in, most consequential first (the end is what gets cut).
_ORDER = {"replace": 0, "delete": 1, "update": 2, "create": 3, "same": 4}


@dataclass
class StackDiff:
    stack: str
    steps: list[Step]
    policy: str  # one cell: "0 mandatory, 2 advisory" or "not run: <why>"
    policy_findings: list[dict[str, Any]] = field(default_factory=list)
    note: str = ""  # e.g. "Pulumi.prod.yaml only in the base: every resource deleted"
    # The base's stack file still held the template's example values: never deployed with them, so its
    # replacements and deletions destroy nothing and are not gated.
    first_configuration: bool = False

    @property
    def changed(self) -> list[Step]:
        return [s for s in self.steps if s.op != "same" or s.option_changes]

    @property
    def destructive(self) -> list[Step]:
        return [] if self.first_configuration else [s for s in self.steps if s.destructive]


def _state(entry: dict[str, Any] | None) -> dict[str, Any] | None:
    """apitype.ResourceV3's fields we know offline (inputs only: outputs need the cloud)."""
    if entry is None:
        return None
    return {
        "urn": entry["urn"],
        "type": entry["type"],
        "custom": not entry["type"].startswith("launchready:"),
        "parent": entry["parent"] or "",
        "inputs": entry["inputs"],
        "protect": bool(entry["options"].get("protect")),
    }


def step_json(step: Step) -> dict[str, Any]:
    data: dict[str, Any] = {"op": step.op, "urn": step.urn}
    if step.op != "same":
        data["oldState"] = _state(step.old)
        data["newState"] = _state(step.new)
    if step.op in ("update", "replace"):
        data["diffReasons"] = step.diff_reasons
    if step.op == "replace":
        data["replaceReasons"] = step.replace_reasons
    data["detailedDiff"] = (
        {c.path: {"kind": c.kind, "inputDiff": True} for c in step.changes}
        if step.op in ("update", "replace")
        else None
    )
    extra: dict[str, Any] = {}
    if step.op == "replace":
        extra["predicted"] = "from the provider contracts' immutable inputs"
        extra["deleteBeforeReplace"] = step.delete_before_replace
    if step.option_changes:
        extra["optionChanges"] = {k: {"old": o, "new": n} for k, (o, n) in step.option_changes.items()}
    if step.destructive:
        extra["destructive"] = step.destructive
    if step.refused:
        extra["refusedByProvider"] = step.refused
    if step.rename_of:
        extra["probableRenameOf"] = step.rename_of
        extra["aliases"] = [step.rename_of]
    if step.renamed_to:
        extra["probablyRenamedTo"] = step.renamed_to
    if extra:
        data["launchready"] = extra
    return data


def render_json(base: str, stacks: Sequence[StackDiff], acknowledged: bool) -> str:
    document = {
        "base": base,
        "comparison": "desired states of the program at base and in the working tree; not live state",
        "acknowledgedDestructive": acknowledged,
        "stacks": {
            s.stack: {
                "steps": [step_json(step) for step in s.steps],
                "changeSummary": counts(s.steps),
                "launchready": {"policy": s.policy, "policyFindings": s.policy_findings, "note": s.note},
            }
            for s in stacks
        },
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _plain_numbers(value: Any) -> Any:
    """Numbers cross the engine's protobuf as doubles: show 30.0 as 30, as `pulumi preview` does."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _plain_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_numbers(v) for v in value]
    return value


def _value(value: Any) -> str:
    text = json.dumps(_plain_numbers(value), sort_keys=True, ensure_ascii=False)
    return text if len(text) <= _VALUE_CHARS else text[: _VALUE_CHARS - 1] + "…"


def _cell(step_count: int, suffix: str = "") -> str:
    return f"{step_count}{suffix}" if step_count else "0"


def summary(base: str, stacks: Sequence[StackDiff], acknowledged: bool, gate_source: str) -> str:
    lines = [
        MARKER,
        f"### Infrastructure diff: `{base}` → this branch",
        "",
        "A diff between two programs' **desired states** (the Pulumi program at the base and at this "
        "branch, each evaluated offline under mocks with the stack's config), **not** against the live "
        "state of the stacks: drift, refresh results and what the cloud computes are only in a real "
        "`pulumi preview`. Replacements are *predicted* from the provider contracts' immutable inputs.",
        "",
        "| stack | create | update | replace (predicted) | delete | unchanged | destructive | policy |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for s in stacks:
        c = counts(s.steps)
        lines.append(
            f"| {s.stack} | {_cell(c.get('create', 0))} | {_cell(c.get('update', 0))} | "
            f"{_cell(c.get('replace', 0))} | {_cell(c.get('delete', 0))} | {c.get('same', 0)} | "
            f"{len(s.destructive)} | {s.policy} |"
        )
    notes = [f"- **{s.stack}**: {s.note}" for s in stacks if s.note]
    if notes:
        lines += ["", *notes]
    destructive = [(s.stack, step) for s in stacks for step in s.destructive]
    if destructive:
        verdict = (
            f"acknowledged ({gate_source})"
            if acknowledged
            else "**not acknowledged**: the check fails until the PR carries the `allow-destructive` "
            "label (locally: `make diff ACK_DESTRUCTIVE=1`)"
        )
        lines += ["", f"**Destructive changes**, {verdict}:", ""]
        for stack, step in destructive:
            lines.append(
                f"- {stack}: `{_SYMBOL[step.op]}{step.op}` `{step.type}` **{step.name}**: "
                + "; ".join(step.destructive)
            )
    if not any(s.changed for s in stacks):
        lines += ["", "No changes in any stack."]
    return "\n".join(lines) + "\n"


def details(stack: str, step: Step) -> str:
    """One collapsible block for one resource."""
    label = {"replace": "replace (predicted)"}.get(step.op, step.op)
    if step.op == "same":
        label = "options only"
    extra = ""
    if step.rename_of:
        extra = " · probable rename"
    elif step.renamed_to:
        extra = " · probably renamed"
    if step.destructive:
        extra += " · destructive"
    if step.refused:
        extra += " · refused as planned"
    head = (
        f"<details><summary><code>{html.escape(_SYMBOL[step.op] + ' ' + label)}</code> {stack}: "
        f"<code>{html.escape(step.type)}</code> <b>{html.escape(step.name)}</b>{extra}</summary>"
    )
    body = [f"urn: {step.urn}"]
    if step.rename_of:
        body.append(f"probable rename of {step.rename_of}")
        body.append(f"keep the resource instead of replacing it: {alias_hint(step)}")
    if step.renamed_to:
        body.append(f"probably renamed to {step.renamed_to} (see that resource for the alias)")
    if step.op == "replace":
        order = (
            "delete first (deleteBeforeReplace)"
            if step.delete_before_replace
            else "create first, then delete"
        )
        body.append(f"replaced because {', '.join(step.replace_reasons)} cannot change in place; {order}")
    for why in step.destructive:
        body.append(f"destructive: {why}")
    for why in step.refused:
        body.append(f"refused as planned: {why}")
    for change in step.changes:
        mark = "!" if change.kind.endswith("-replace") else {"add": "+", "delete": "-"}.get(change.kind, "~")
        if change.kind.startswith("add"):
            body.append(f"{mark} {change.path}: {_value(change.new)}")
        elif change.kind.startswith("delete"):
            body.append(f"{mark} {change.path}: {_value(change.old)}")
        else:
            body.append(f"{mark} {change.path}: {_value(change.old)} -> {_value(change.new)}")
    for option, (old, new) in step.option_changes.items():
        body.append(f"~ option {option}: {_value(old)} -> {_value(new)}")
    if step.op in ("create", "delete") and not step.rename_of:
        entry = step.new if step.op == "create" else step.old
        for key, value in sorted((entry or {}).get("inputs", {}).items()):
            body.append(f"{'+' if step.op == 'create' else '-'} {key}: {_value(value)}")
    text = "\n".join(body).replace("```", "`\u200b``")
    return f"{head}\n\n```\n{text}\n```\n</details>\n"


def render_markdown(
    base: str,
    stacks: Sequence[StackDiff],
    acknowledged: bool,
    gate_source: str,
    limit: int | None = MAX_COMMENT,
    artifact: str = "the `program-diff` artifact of this run (diff-full.md, diff.json)",
) -> str:
    """The comment: the summary in full, then details until `limit` characters (None: no limit)."""
    text = summary(base, stacks, acknowledged, gate_source)
    blocks: list[str] = []
    for s in stacks:
        changed = sorted(s.changed, key=lambda step: (not step.destructive, _ORDER[step.op], step.urn))
        if changed:
            blocks.append(f"\n#### {s.stack}: {len(changed)} changed resource(s)\n\n")
        blocks += [details(s.stack, step) for step in changed]
    body = "".join(blocks)
    if limit is None or len(text) + len(body) <= limit:
        return text + body
    kept: list[str] = []
    size = len(text)
    total = sum(1 for b in blocks if b.startswith("<details>"))
    for block in blocks:
        pointer = _pointer(total - sum(1 for k in kept if k.startswith("<details>")), artifact)
        if size + len(block) + len(pointer) > limit:
            break
        kept.append(block)
        size += len(block)
    cut = total - sum(1 for k in kept if k.startswith("<details>"))
    return text + "".join(kept) + _pointer(cut, artifact)


def _pointer(cut: int, artifact: str) -> str:
    return (
        f"\n… {cut} more resource(s) not shown to keep this comment under the size limit: see {artifact}.\n"
    )


def render_terminal(stacks: Sequence[StackDiff]) -> str:
    """A few lines per changed resource, for the terminal."""
    lines = []
    for s in stacks:
        c = counts(s.steps)
        lines.append(
            f"{s.stack}: {c.get('create', 0)} to create, {c.get('update', 0)} to update, "
            f"{c.get('replace', 0)} to replace (predicted), {c.get('delete', 0)} to delete, "
            f"{c.get('same', 0)} unchanged; policy: {s.policy}" + (f" ({s.note})" if s.note else "")
        )
        for step in sorted(s.changed, key=lambda st: (_ORDER[st.op], st.urn)):
            tag = " [DESTRUCTIVE]" if step.destructive else ""
            rename = " (probable rename)" if step.rename_of else ""
            lines.append(f"  {_SYMBOL[step.op]:>2} {step.op:<8} {step.type} {step.name}{rename}{tag}")
            for change in step.changes[:20]:
                lines.append(f"       {change.kind}: {change.path}")
            for option, (old, new) in step.option_changes.items():
                lines.append(f"       option {option}: {_value(old)} -> {_value(new)}")
    return "\n".join(lines)
