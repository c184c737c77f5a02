"""Where a journey step's chain stopped: each hop checked against the ledger, documents and sandbox log.

Reads only; it names the first hop that did not happen and the evidence (docs/tools.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .target import JourneyTarget


@dataclass(frozen=True)
class Hop:
    what: str  # "billing_worker applied the event to users/{uid}.billing"
    happened: Callable[[], bool]
    function: str  # whose log to read when it did not happen
    provider: str = ""  # the sandbox provider this hop calls, if any


def ledger_step_done(stack: JourneyTarget, key: str, step: str) -> bool:
    record = stack.get_document(f"events/{key.replace('/', '_')}/steps/{step}")
    return bool(record) and record.get("state") == "done"


def ledger_published(stack: JourneyTarget, key: str) -> bool:
    """The webhook's publish: its claim is the step's lease and the event document records
    `published: True` (launchready/handlers/stripe_webhook.py), with no steps/ document on success."""
    record = stack.get_document(f"events/{key.replace('/', '_')}")
    return bool(record) and record.get("published") is True


def ledger_claimed(stack: JourneyTarget, key: str) -> bool:
    return stack.get_document(f"events/{key.replace('/', '_')}") is not None


def first_missing(hops: list[Hop]) -> Hop | None:
    for hop in hops:
        try:
            if not hop.happened():
                return hop
        except Exception:  # an unreadable record is as good as a missing one here
            return hop
    return None


def last_push(logs_dir: Path, function: str) -> str:
    """The push relay's last log line about deliveries to `function`, or ''."""
    try:
        lines = (logs_dir / "push-relay.log").read_text(errors="replace").splitlines()
    except OSError:
        return ""
    for line in reversed(lines):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("function") == function:
            return str(entry.get("message", ""))
    return ""


def last_provider_call(stack: JourneyTarget, provider: str) -> dict[str, Any] | None:
    sandbox_requests = getattr(stack, "sandbox_requests", None)  # only the local sandbox records the calls
    if sandbox_requests is None:
        return None
    try:
        calls = sandbox_requests(provider)
    except Exception:
        return None
    return calls[-1] if calls else None


def explain(hops: list[Hop], stack: JourneyTarget, logs_dir: Path) -> list[str]:
    """Lines naming the first hop that did not happen and what the logs say about it."""
    missing = first_missing(hops)
    if missing is None:
        return ["every hop of the chain happened; the step's own check did not hold (see the message above)"]
    lines = [
        f"the hop that did not happen: {missing.what}",
        f"its log: {logs_dir / (missing.function + '.log')}",
    ]
    push = last_push(logs_dir, missing.function)
    if push:
        lines.append(f"push relay, last delivery to {missing.function}: {push}")
    elif missing.function.endswith("_worker"):
        lines.append(f"push relay: no delivery to {missing.function} yet ({logs_dir / 'push-relay.log'})")
    if missing.provider:
        call = last_provider_call(stack, missing.provider)
        if call:
            fault = f", injected fault {call['fault']}" if call.get("fault") else ""
            lines.append(
                f"sandbox, last {missing.provider} call: {call['method']} {call['path']} "
                f"answered {call['status']}{fault}"
            )
        else:
            lines.append(f"sandbox: no {missing.provider} call recorded")
    return lines
