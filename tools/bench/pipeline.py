"""`python -m tools bench pipeline`: handler latency and end-to-end chain times on the local stack.

Times come from the sandbox's own request log, never from when polling noticed (docs/tools.md).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import requests

from tools.exit_codes import ExitCode
from tools.journey.local_stack import LocalStack, load_endpoints
from tools.journey.stripe_events import checkout_session_completed, stripe_event
from tools.journey.target import AuthUser, WaitTimeout, wait_until

PAYMENT_DEADLINE_SECONDS = 60.0  # target: a payment reaches the CRM within 60 s
SUPPORT_DEADLINE_SECONDS = 120.0  # target: a support request is acknowledged within 2 minutes
SIGNUP_DEADLINE_SECONDS = 60.0
POLL_SECONDS = 0.05


class BenchError(RuntimeError):
    pass


# ---- statistics ---------------------------------------------------------------------------------


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile: a value that was actually measured, never an interpolation."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


@dataclass
class Series:
    name: str
    unit: str = "ms"
    samples: list[float] = field(default_factory=list)
    failures: int = 0

    def add_seconds(self, seconds: float) -> None:
        self.samples.append(seconds * 1000 if self.unit == "ms" else seconds)

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"name": self.name, "unit": self.unit, "n": 0, "failures": self.failures}
        return {
            "name": self.name,
            "unit": self.unit,
            "n": len(self.samples),
            "failures": self.failures,
            "median": round(statistics.median(self.samples), 1),
            "p95": round(percentile(self.samples, 0.95), 1),
            "min": round(min(self.samples), 1),
            "max": round(max(self.samples), 1),
        }


def render(series: list[Series]) -> str:
    header = f"{'measurement':<44} {'n':>4} {'fail':>4} {'median':>9} {'p95':>9} {'min':>9} {'max':>9}"
    lines = [header, "-" * len(header)]
    for item in series:
        s = item.summary()
        if not s["n"]:
            lines.append(f"{item.name:<44} {0:>4} {item.failures:>4}   (no samples)")
            continue
        unit = item.unit
        lines.append(
            f"{item.name:<44} {s['n']:>4} {s['failures']:>4} {s['median']:>7}{unit} {s['p95']:>7}{unit} "
            f"{s['min']:>7}{unit} {s['max']:>7}{unit}"
        )
    return "\n".join(lines)


# ---- what the runs send and look for -------------------------------------------------------------


def unknown_customer_invoice() -> dict[str, Any]:
    """A paid invoice of a customer no user is linked to: the webhook publishes it like any other, the
    billing worker records it as unmatched (no retries, nothing else touched)."""
    return {
        "id": "in_" + uuid.uuid4().hex[:24],
        "object": "invoice",
        "customer": "cus_" + uuid.uuid4().hex[:14],
        "amount_paid": 1900,
        "amount_due": 1900,
        "currency": "usd",
        "status": "paid",
    }


def sandbox_time(entry: dict[str, Any]) -> float:
    """When the sandbox received the request (its log's timestamp, this machine's clock)."""
    return datetime.fromisoformat(entry["time"]).timestamp()


def wait_for_request(
    stack: LocalStack, provider: str, matches: Callable[[dict[str, Any]], bool], timeout: float
) -> dict[str, Any]:
    """The first request the sandbox recorded for `provider` that `matches`, polled until a deadline."""
    return wait_until(
        lambda: next((entry for entry in stack.sandbox_requests(provider) if matches(entry)), None),
        timeout=timeout,
        interval=POLL_SECONDS,
        what=f"a matching {provider} request",
    )


def upsert_of(email: str, lifecycle_stage: str) -> Callable[[dict[str, Any]], bool]:
    def matches(entry: dict[str, Any]) -> bool:
        if entry["path"] != "/crm/objects/2026-09/contacts/batch/upsert" or entry["status"] != 200:
            return False
        inputs = (entry.get("body") or {}).get("inputs") or []
        return any(
            item.get("id") == email
            and (item.get("properties") or {}).get("lifecyclestage") == lifecycle_stage
            for item in inputs
        )

    return matches


def email_to(address: str, reference: str) -> Callable[[dict[str, Any]], bool]:
    def matches(entry: dict[str, Any]) -> bool:
        body = entry.get("body") or {}
        return (
            entry["path"] == "/emails"
            and entry["status"] == 200
            and address in (body.get("to") or [])
            and reference in str(body.get("subject") or "")
        )

    return matches


# ---- the measurements ---------------------------------------------------------------------------


def signed_up_user(stack: LocalStack) -> AuthUser:
    """A new account with its users/{uid} profile, written as the app writes it (under the rules)."""
    user = stack.sign_up(display_name="Grace Hopper")
    response = stack.create_profile(user, display_name="Grace Hopper")
    if response.status_code != 200:
        raise BenchError(f"profile write answered {response.status_code}: {response.text[:200]}")
    return user


def measure_payment_to_crm(stack: LocalStack, webhook: Series, pipeline: Series) -> None:
    user = signed_up_user(stack)
    # The sign-up's own upsert (lead) first, so the payment is measured on its own.
    wait_for_request(stack, "hubspot", upsert_of(user.email, "lead"), SIGNUP_DEADLINE_SECONDS)
    session = checkout_session_completed(
        "cs_test_" + uuid.uuid4().hex,
        user.uid,
        user.email,
        "cus_" + uuid.uuid4().hex[:14],
        "sub_" + uuid.uuid4().hex[:14],
    )
    sent = time.time()
    response = stack.post_stripe_event(stripe_event("checkout.session.completed", session))
    webhook.add_seconds(time.time() - sent)
    if response.status_code != 200:
        raise BenchError(f"webhook answered {response.status_code}: {response.text[:200]}")
    entry = wait_for_request(stack, "hubspot", upsert_of(user.email, "customer"), PAYMENT_DEADLINE_SECONDS)
    pipeline.add_seconds(sandbox_time(entry) - sent)


def measure_support_to_email(stack: LocalStack, handler: Series, pipeline: Series) -> None:
    user = stack.sign_up(display_name="Grace Hopper")
    body = {
        "subject": "Cannot restore my purchase",
        "message": "The app asks me to pay again after reinstalling.",
        "category": "billing",
        "client_request_id": str(uuid.uuid4()),
    }
    sent = time.time()
    response = stack.call("support_request", user, body)
    answered = time.time()
    handler.add_seconds(answered - sent)
    if response.status_code != 202:
        raise BenchError(f"support_request answered {response.status_code}: {response.text[:200]}")
    reference = response.json()["reference"]
    entry = wait_for_request(stack, "resend", email_to(user.email, reference), SUPPORT_DEADLINE_SECONDS)
    pipeline.add_seconds(sandbox_time(entry) - answered)


def measure_webhook_handler(stack: LocalStack, series: Series) -> None:
    sent = time.time()
    response = stack.post_stripe_event(stripe_event("invoice.paid", unknown_customer_invoice()))
    series.add_seconds(time.time() - sent)
    if response.status_code != 200 or response.json().get("status") != "published":
        raise BenchError(f"webhook answered {response.status_code}: {response.text[:200]}")


def repeat(runs: int, failures: Series, measure: Callable[[], None], label: str) -> None:
    for run in range(1, runs + 1):
        try:
            measure()
        except (BenchError, WaitTimeout, requests.RequestException) as exc:
            failures.failures += 1
            print(f"  {label} run {run}: FAILED ({exc})", file=sys.stderr, flush=True)
        if run % max(1, runs // 4) == 0 or run == runs:
            print(f"  {label}: {run}/{runs}", file=sys.stderr, flush=True)


def run_benchmark(endpoints: dict[str, Any], *, runs: int, handler_requests: int) -> list[Series]:
    stack = LocalStack(endpoints)
    webhook_in_payment = Series("stripe_webhook round trip (payment runs)")
    payment = Series("payment -> CRM customer upsert")
    support_handler = Series("support_request round trip")
    support = Series("support answered -> acknowledgement email")
    webhook = Series(f"stripe_webhook round trip ({handler_requests} sequential)")
    # One unmeasured pass warms every function (imports, clients, connections), as a first request would.
    measure_payment_to_crm(stack, Series("warm-up"), Series("warm-up"))
    measure_support_to_email(stack, Series("warm-up"), Series("warm-up"))
    repeat(
        runs, payment, lambda: measure_payment_to_crm(stack, webhook_in_payment, payment), "payment -> CRM"
    )
    repeat(
        runs, support, lambda: measure_support_to_email(stack, support_handler, support), "support -> email"
    )
    repeat(handler_requests, webhook, lambda: measure_webhook_handler(stack, webhook), "webhook handler")
    return [webhook, webhook_in_payment, payment, support_handler, support]


# ---- running against a stack --------------------------------------------------------------------


@contextmanager
def started_stack() -> Iterator[dict[str, Any]]:
    """`python -m tools up` (as `make up` and the end-to-end fixture run it) on a free block of ports
    with a private state directory; SIGTERM on exit, and the supervisor stops everything it started."""
    from tools.local.launcher import StackNotReady, running_stack  # only --start needs it

    with tempfile.TemporaryDirectory(prefix="launchready-bench-") as state_dir:
        print("starting a private stack on free ports ...", file=sys.stderr, flush=True)
        try:
            with running_stack(Path(state_dir)) as stack:
                yield stack.endpoints()
        except StackNotReady as exc:
            raise BenchError(str(exc)) from None


def run(endpoints: Path, *, start: bool = False, runs: int = 20, handler_requests: int = 200,
        json_out: Path | None = None) -> ExitCode:
    """Measure the pipeline on the stack of `endpoints` or (with `start`) a private one: OK, FAILED when a
    run failed, ENVIRONMENT when the stack never came up or the warm-up pass failed."""
    started = time.monotonic()
    try:
        if start:
            with started_stack() as private:
                series = run_benchmark(private, runs=runs, handler_requests=handler_requests)
        else:
            series = run_benchmark(load_endpoints(endpoints), runs=runs, handler_requests=handler_requests)
    except (BenchError, WaitTimeout) as exc:  # the stack never came up, or the warm-up pass failed
        print(f"✗ {exc}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    print()
    print(render(series))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average {load}, {time.monotonic() - started:.0f} s in all")
    if json_out:
        json_out.write_text(json.dumps([item.summary() for item in series], indent=2) + "\n")
    return ExitCode.FAILED if any(item.failures for item in series) else ExitCode.OK
