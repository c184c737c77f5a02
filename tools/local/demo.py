"""`make demo`: the founder's journey (tools/journey/steps.py) against the running local stack.

Every part of the stack is probed first (as `make status` does), so a dead part is named at once instead
of stalling a step; the first failing step stops the demo and names the hop that did not happen.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tools.exit_codes import ExitCode
from tools.journey.local_stack import LocalStack, load_endpoints
from tools.journey.steps import Journey, run_steps, steps
from tools.project_files import read_catalog

from . import status
from .lock import read


def unhealthy_parts(endpoints_path: Path, endpoints: dict[str, Any]) -> list[status.Check]:
    """The parts of the running stack that do not answer (empty when all is well)."""
    lock = read(endpoints_path.parent / "up.lock") or {}
    return [check for check in status.part_checks(endpoints, lock, read_catalog()) if not check.ok]


def run_demo(endpoints_path: Path) -> ExitCode:
    """The journey on the stack whose endpoints.json is `endpoints_path`: OK, FAILED (a step or an unhealthy
    part), ENVIRONMENT (not running) or NOT_ALL_CHECKED."""
    if not endpoints_path.is_file():
        print(f"{endpoints_path} not found: is the stack running? Start it with `make up`.", flush=True)
        return ExitCode.ENVIRONMENT
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
        return ExitCode.FAILED
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

