"""`python -m tools bench webhook`: `stripe_webhook`'s acknowledgement time beside a floor handler.

Deliveries alternate between the two on the same emulators, so drift hits both alike (docs/tools.md).
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from tools.bench.pipeline import percentile
from tools.exit_codes import ExitCode
from tools.journey.stripe_events import stripe_event, stripe_signature
from tools.local import emulators, environment
from tools.local.layout import Layout, build_layout, free_port_base
from tools.project_files import ROOT, read_catalog

FUNCTION = "stripe_webhook"
FLOOR_SOURCE = ROOT / "tools" / "bench" / "webhook_floor.py"
TOPIC = "billing-events"
START_TIMEOUT_SECONDS = 90.0
TARGET_RATIO = 1.25  # stripe_webhook's p95 within 1.25x of the floor's


class BenchError(RuntimeError):
    pass


@dataclass
class Target:
    name: str
    url: str
    samples: list[float] = field(default_factory=list)  # milliseconds
    session: requests.Session = field(default_factory=requests.Session)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "samples": len(self.samples),
            "median_ms": round(statistics.median(self.samples), 2),
            "p95_ms": round(percentile(self.samples, 0.95), 2),
        }


def unknown_customer_invoice() -> dict[str, Any]:
    return {
        "id": "in_bench",
        "object": "invoice",
        "customer": "cus_bench_unknown",
        "status": "paid",
        "amount_paid": 1900,
        "currency": "usd",
        "lines": {"object": "list", "data": []},
    }


def signed_delivery(secret: str) -> tuple[str, bytes, dict[str, str]]:
    """(event id, body, headers) of a new signed `invoice.paid` delivery, as Stripe sends it."""
    event = stripe_event("invoice.paid", unknown_customer_invoice())
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": stripe_signature(body, secret),
        "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    }
    return event["id"], body, headers


def deliver(target: Target, secret: str, *, record: bool) -> None:
    _, body, headers = signed_delivery(secret)
    started = time.perf_counter()
    response = target.session.post(target.url, data=body, headers=headers, timeout=30)
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise BenchError(f"{target.name} answered {response.status_code}: {response.text[:300]}")
    if target.name == FUNCTION and response.json().get("status") != "published":
        raise BenchError(f"{FUNCTION} did not publish: {response.text[:300]}")
    if record:
        target.samples.append(elapsed * 1000)


def deliver_rounds(targets: tuple[Target, Target], secret: str, *, requests_each: int, warmup: int) -> None:
    for _ in range(warmup):
        for target in targets:
            deliver(target, secret, record=False)
    step = max(1, requests_each // 4)
    for index in range(requests_each):
        order = targets if index % 2 == 0 else targets[::-1]
        for target in order:
            deliver(target, secret, record=True)
        if (index + 1) % step == 0 or index + 1 == requests_each:
            print(f"  {index + 1}/{requests_each} deliveries each", file=sys.stderr, flush=True)


def render(webhook: Target, floor: Target) -> str:
    rows = [webhook.summary(), floor.summary()]
    lines = [f"{'handler':<16} {'n':>5} {'median ms':>10} {'p95 ms':>8}"]
    lines += [
        f"{row['name']:<16} {row['samples']:>5} {row['median_ms']:>10.2f} {row['p95_ms']:>8.2f}"
        for row in rows
    ]
    p95_ratio = rows[0]["p95_ms"] / rows[1]["p95_ms"]
    median_ratio = rows[0]["median_ms"] / rows[1]["median_ms"]
    verdict = "within" if p95_ratio <= TARGET_RATIO else "ABOVE"
    lines.append(
        f"ratio stripe_webhook/floor: p95 {p95_ratio:.2f}x ({verdict} the {TARGET_RATIO}x target), "
        f"median {median_ratio:.2f}x"
    )
    return "\n".join(lines)


def burst(webhook: Target, secret: str, layout: Layout, count: int, concurrency: int) -> dict[str, float]:
    """`count` new deliveries to `stripe_webhook`, `concurrency` at a time: seconds until all were
    answered, and then until every event's `published` record (written after the answer) is in
    Firestore: the backlog of writes after the answer. Bounded: 120 s for the records."""
    from google.cloud import firestore

    def one(_: int) -> str:
        event_id, body, headers = signed_delivery(secret)
        response = requests.post(webhook.url, data=body, headers=headers, timeout=60)
        if response.status_code != 200:
            raise BenchError(f"{FUNCTION} answered {response.status_code} in a burst: {response.text[:300]}")
        return event_id

    print(f"  burst: {count} deliveries, {concurrency} at a time", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
        event_ids = list(pool.map(one, range(count)))
    answered = time.perf_counter() - started
    os.environ["FIRESTORE_EMULATOR_HOST"] = layout.host(layout.firestore_port)
    client = firestore.Client(project=layout.project_id)
    refs = [client.collection("events").document(f"stripe:{event_id}") for event_id in event_ids]
    deadline = time.monotonic() + 120
    while sum(1 for snapshot in client.get_all(refs) if (snapshot.to_dict() or {}).get("published")) < count:
        if time.monotonic() > deadline:
            raise BenchError("the published records of the burst were not all written within 120 s")
        time.sleep(0.05)
    written = time.perf_counter() - started
    return {"answered_s": round(answered, 2), "backlog_s": round(written - answered, 2)}


# ---- the two servers on private emulators ---------------------------------------------------------


@contextmanager
def started_servers(state_dir: Path) -> Iterator[tuple[Target, Target, str, Layout]]:
    """Firestore and Pub/Sub emulators, the billing-events topic, `stripe_webhook` and the floor, on
    free ports: (webhook, floor, webhook secret, the ports' layout); everything stopped (by process
    group) when the block ends."""
    catalog = read_catalog()
    spec = next(item for item in catalog.functions if item.name == FUNCTION)
    layout = build_layout(catalog, port_base=free_port_base(len(catalog.functions)), state_dir=state_dir)
    caller_env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith("_EMULATOR_HOST") and not name.startswith("LOCAL_")
    }
    processes: list[emulators.ManagedProcess] = []
    try:
        print("starting the Firestore and Pub/Sub emulators ...", file=sys.stderr, flush=True)
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            firestore = pool.submit(emulators.start_firestore, layout.firestore_port, layout.logs_dir)
            pubsub = pool.submit(
                emulators.start_pubsub, layout.pubsub_port, layout.logs_dir, layout.project_id
            )
            for future in (firestore, pubsub):
                processes.append(future.result())
        secret = environment.webhook_secret(layout, caller_env)
        shared = environment.shared_environment(layout, "http://127.0.0.1:9", caller_env)
        env = environment.function_environment(
            catalog, spec, layout, shared, environment.local_secrets(secret, caller_env), caller_env
        )
        _create_topic(layout.host(layout.pubsub_port), layout.project_id)
        floor_port = emulators.free_port()
        servers = [
            (
                FUNCTION,
                spec.entry_point,
                environment.FUNCTIONS_SOURCE / "main.py",
                layout.function_ports[FUNCTION],
            ),
            ("floor", "floor_webhook", FLOOR_SOURCE, floor_port),
        ]
        targets = []
        for name, entry_point, source, port in servers:
            process_env = {**env, "FUNCTION_TARGET": entry_point, "PORT": str(port)}
            argv = [
                sys.executable,
                "-m",
                "functions_framework",
                "--target",
                entry_point,
                "--source",
                str(source),
                "--signature-type",
                "http",
                "--port",
                str(port),
                "--host",
                "127.0.0.1",
            ]
            process = emulators.start_process(
                f"function {name}",
                argv,
                layout.logs_dir / f"bench-{name}.log",
                env=process_env,
                cwd=environment.FUNCTIONS_SOURCE,
                inherit_env=False,
            )
            processes.append(process)
            url = f"http://127.0.0.1:{port}/"
            emulators.wait_until_ready(process, url, START_TIMEOUT_SECONDS)
            targets.append(Target(name, url))
        yield targets[0], targets[1], secret, layout
    finally:
        for process in reversed(processes):
            process.stop()


def _create_topic(pubsub_host: str, project: str) -> None:
    url = f"http://{pubsub_host}/v1/projects/{project}/topics/{TOPIC}"
    response = requests.put(url, json={}, timeout=10)
    if response.status_code not in (200, 409):
        raise BenchError(f"creating {TOPIC} failed: {response.status_code} {response.text[:200]}")


def run(*, deliveries: int = 300, warmup: int = 30, burst_size: int = 0, concurrency: int = 40,
        json_out: Path | None = None) -> ExitCode:
    """`deliveries` measured deliveries to stripe_webhook and to its floor (after `warmup` each), then
    `burst_size` more at `concurrency`: OK, or ENVIRONMENT when the servers could not be started."""
    bursts: dict[str, float] | None = None
    started = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="launchready-bench-webhook-") as state_dir:
            with started_servers(Path(state_dir)) as (webhook, floor, secret, layout):
                deliver_rounds((webhook, floor), secret, requests_each=deliveries, warmup=warmup)
                if burst_size:
                    bursts = burst(webhook, secret, layout, burst_size, concurrency)
    except (BenchError, emulators.StartupError, requests.RequestException) as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    print()
    print(render(webhook, floor))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    if bursts:
        print(
            f"burst of {burst_size} at concurrency {concurrency}: all answered in "
            f"{bursts['answered_s']:.2f} s; every published record written "
            f"{bursts['backlog_s']:.2f} s after the last answer"
        )
    print(f"\n{os.cpu_count()} CPUs, load average {load}, {time.monotonic() - started:.0f} s in all")
    if json_out:
        summary = {
            "stripe_webhook": webhook.summary(),
            "floor": floor.summary(),
            "p95_ratio": round(webhook.summary()["p95_ms"] / floor.summary()["p95_ms"], 3),
            "burst": bursts,
        }
        json_out.write_text(json.dumps(summary, indent=2) + "\n")
    return ExitCode.OK

