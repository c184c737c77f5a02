"""`python -m tools.local demo`: the founder's journey (tools/local/journey.py) against the running stack.

sign-up -> CRM contact; checkout -> signed Stripe webhook -> billing active, `pro` claim, CRM customer;
failed renewal -> no new access, one recovery email; support request -> one ticket, one
acknowledgement; the same webhook replayed -> nothing new. Each step prints its timing and where to
look; the first failing step stops the demo with a non-zero exit code. Before the first step every part
of the stack is probed (as `make status` does), so a dead part is named at once instead of stalling a
step; a step that times out names the hop of its chain that did not happen (tools/local/hops.py).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from components.catalog import load_catalog

from . import status
from .client import LocalStack, load_endpoints
from .journey import Journey, Step, StepFailed, check, run_steps, steps
from .lock import read

__all__ = ["Journey", "Step", "StepFailed", "check", "run_demo", "steps", "unhealthy_parts"]


def unhealthy_parts(endpoints_path: Path, endpoints: dict[str, Any]) -> list[status.Check]:
    """The parts of the running stack that do not answer (empty when all is well)."""
    lock = read(endpoints_path.parent / "up.lock") or {}
    return [check for check in status.part_checks(endpoints, lock, load_catalog()) if not check.ok]


def run_demo(endpoints_path: Path) -> int:
    endpoints = load_endpoints(endpoints_path)
    dead = unhealthy_parts(endpoints_path, endpoints)
    if dead:
        print(
            f"✗ the stack is not healthy, so the demo would stall: {', '.join(c.part for c in dead)}",
            flush=True,
        )
        for check in dead:
            print(f"   {check.part}: {check.detail}", flush=True)
        print(
            f"   logs: {endpoints['logs_dir']}; restart `make up` (Ctrl-C, then `make up`) and retry",
            flush=True,
        )
        return 1
    journey = Journey(LocalStack(endpoints))
    print(f"Founder's journey against {endpoints_path} (project {endpoints['project_id']})\n", flush=True)
    code = run_steps(journey, steps(journey, endpoints), Path(endpoints["logs_dir"]), say)
    if code == 0:
        say(console_pointer(journey, endpoints))
    return code


def say(line: str) -> None:
    print(line, flush=True)


def console_pointer(journey: Journey, endpoints: dict[str, Any]) -> str:
    """Where the ops console shows the journey just run: the payment's page and the customer's."""
    console = endpoints.get("ops_console")
    if not console or journey.user is None:
        return ""
    base = console["url"]
    event = journey.stack.get_document(f"events/stripe:{journey.paid_event.get('id', '')}") or {}
    lines = ["", "See every step of it, with states and timings, in the ops console:"]
    if event.get("correlation_id"):
        lines.append(f"  payment   {base}journey/{event['correlation_id']}")
    lines.append(f"  customer  {base}customer?q={journey.user.uid}")
    lines.append(f"  sign in as {console['email']} / {console['password']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(run_demo(Path(sys.argv[1])))
