"""`python -m tools bench console`: ops console page loads with a large seeded ledger, medians and p95.

Seeding is keyed by index, so a second run against the same stack adds nothing (docs/tools.md).
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from google.cloud import firestore

from tools.bench.pipeline import started_stack
from tools.exit_codes import ExitCode
from tools.journey.local_stack import load_endpoints
from tools.project_files import ROOT

sys.path.insert(0, str(ROOT / "functions_src"))
from launchready.platform.ledger import doc_id  # noqa: E402
from launchready.records import journal  # noqa: E402  (the journal's own document shapes)
from launchready.records.ops import inbox_item_key, inbox_path  # noqa: E402

BATCH = 450  # Firestore allows 500 writes per batch
TARGET_MS = 300.0


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


def _journal(
    event_key: str,
    steps: dict[str, Any],
    correlation_id: str,
    at: datetime,
    uid: str | None = None,
    event_type: str | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The ledger steps and the journal entries (journal.writes, as the ledger makes them) of `steps`."""
    for index, (step, result) in enumerate(steps.items()):
        started = at + timedelta(milliseconds=200 * index)
        done = started + timedelta(milliseconds=120)
        yield (
            f"events/{doc_id(event_key)}/steps/{step}",
            {
                "state": "done",
                "step": step,
                "event_key": event_key,
                "correlation_id": correlation_id,
                "attempts": 1,
                "started_at": started,
                "done_at": done,
                "updated_at": done,
                "result": result,
                "lease_until": None,
            },
        )
        for transition, moment in ((journal.RUNNING, started), (journal.DONE, done)):
            yield from journal.writes(
                event_key,
                step,
                transition,
                correlation_id=correlation_id,
                at=moment,
                attempts=1,
                result=result,
                uid=uid,
                event_type=event_type,
            )


def _writes(events: int, start: datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    """(document path, data) for `events` journeys one minute apart, oldest first, in the pipeline's shapes:
    six in ten payments, two sign-ups, two support requests; a dead letter and a sync failure per 500."""
    lag_counts: dict[datetime, int] = {}
    for n in range(events):
        at = start + timedelta(minutes=n)
        correlation_id = f"bench{n:08d}"
        uid = f"bench-user-{n % 2000:05d}"
        kind = n % 10
        if kind < 6:
            key = f"stripe:evt_bench{n:08d}"
            event_type = "checkout.session.completed"
            yield (
                f"events/{key}",
                {
                    "key": key,
                    "claimed_at": at,
                    "event_type": event_type,
                    "correlation_id": correlation_id,
                    "status": "published",
                    "uid": uid,
                    "billing_outcome": "applied",
                },
            )
            yield from _journal(key, {"publish": "msg"}, correlation_id, at, event_type=event_type)
            yield from _journal(
                key,
                {"apply": {"outcome": "applied"}, "claims": None},
                correlation_id,
                at + timedelta(seconds=1),
                uid=uid,
                event_type=event_type,
            )
            yield from _journal(
                f"crm:{uid}:{key}",
                {"hubspot_upsert": {"contact_ids": [str(n)], "synced_at": 0}},
                correlation_id,
                at + timedelta(seconds=2),
                uid=uid,
            )
            yield (
                f"payment_sync/evt_bench{n:08d}",
                {
                    "lag_seconds": 2.4,
                    "synced_at": at + timedelta(seconds=2),
                    "correlation_id": correlation_id,
                },
            )
        elif kind < 8:
            key = f"signup:{uid}-{n}"
            yield (
                f"events/{key}",
                {
                    "key": key,
                    "claimed_at": at,
                    "correlation_id": correlation_id,
                    "published": True,
                    "source": "user_created",
                },
            )
            yield from _journal(key, {"publish": "msg"}, correlation_id, at, uid=uid)
        else:
            reference = f"SR-B{n:05d}"
            key = f"support:{reference}"
            yield (
                f"support_requests/{reference}",
                {
                    "reference": reference,
                    "uid": uid,
                    "created_at": at,
                    "email": f"{uid}@example.com",
                    "status": "ticket_created",
                    "ticket_id": n,
                    "correlation_id": correlation_id,
                    "category": "billing",
                    "subject": "Help",
                },
            )
            yield from _journal(
                key,
                {"publish": "msg", "zendesk_ticket": n, "write_back": reference, "ack_email": None},
                correlation_id,
                at,
                uid=uid,
            )
            yield from _journal(
                f"email:support-ack:{reference}",
                {"resend_send": f"re_{n}"},
                correlation_id,
                at + timedelta(seconds=1),
                uid=uid,
            )
        if n % 500 == 0:  # and its summary in the day's inbox, as records.py writes both
            dead = {
                "status": "open",
                "topic": "crm-sync",
                "function": "crm_worker",
                "event_id": f"crm:bench-{n}",
                "recorded_at": at,
                "attempts": 5,
                "error": "TransientError('503')",
                "correlation_id": correlation_id,
            }
            yield f"dead_letters/bench-{n}", {**dead, "data": {"uid": uid}, "attributes": {}}
            yield (
                inbox_path("dead_letters", at),
                {"items": {inbox_item_key(f"bench-{n}"): {**dead, "id": f"bench-{n}"}}},
            )
            failure = {
                "function": "email_worker",
                "code": "validation_error",
                "recorded_at": at,
                "event_id": f"email:bench-{n}",
                "correlation_id": correlation_id,
            }
            yield f"sync_failures/bench-{n}", failure
            yield (
                inbox_path("sync_failures", at),
                {"items": {inbox_item_key(f"bench-{n}"): {**failure, "id": f"bench-{n}"}}},
            )
        if kind < 6 and at > start + timedelta(minutes=events - 24 * 60):  # the last day's payment sync lags
            hour = at.replace(minute=0, second=0, microsecond=0)
            lag_counts[hour] = lag_counts.get(hour, 0) + 1
    for hour, count in lag_counts.items():
        yield (
            f"payment_sync_stats/{hour:%Y%m%d%H}_0",
            {
                "hour": hour,
                "count": count,
                "max_seconds": 2.4,
                "lag_seconds": {"5": count},
                "last_seconds": 2.4,
                "last_at": hour,
            },
        )
    for n in range(10):
        yield (
            f"users/bench-user-{n:05d}",
            {"email": f"bench-user-{n:05d}@example.com", "billing": {"status": "active"}},
        )


def _merge(target: dict[str, Any], data: dict[str, Any]) -> None:
    for name, value in data.items():
        if isinstance(value, dict) and isinstance(target.get(name), dict):
            _merge(target[name], value)
        else:
            target[name] = value


def seed(endpoints: dict[str, Any], events: int) -> int:
    """Write the bench ledger (unless this stack has it already); returns the documents written."""
    os.environ["FIRESTORE_EMULATOR_HOST"] = endpoints["emulators"]["firestore"]
    client = firestore.Client(project=endpoints["project_id"])
    marker = client.collection("bench").document("console")
    if (marker.get().to_dict() or {}).get("events", 0) >= events:
        return 0
    start = datetime.now(UTC) - timedelta(minutes=events + 5)
    documents: dict[str, dict[str, Any]] = {}
    for path, data in _writes(events, start):  # merged here as Firestore merges them, then written once
        _merge(documents.setdefault(path, {}), data)
    batch, pending, written = client.batch(), 0, 0
    for path, data in documents.items():
        batch.set(client.document(path), data)
        pending += 1
        if pending == BATCH:
            batch.commit()
            written += pending
            batch, pending = client.batch(), 0
            print(f"  seeded {written} of {len(documents)} documents", end="\r", file=sys.stderr, flush=True)
    batch.commit()
    written += pending
    marker.set({"events": events})
    print(f"  seeded {written} documents for {events} events", file=sys.stderr, flush=True)
    return written


def operator_token(endpoints: dict[str, Any]) -> str:
    console = endpoints["ops_console"]
    answer = requests.post(
        f"http://{endpoints['emulators']['auth']}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword"
        "?key=fake-api-key",
        json={"email": console["email"], "password": console["password"], "returnSecureToken": True},
        timeout=10,
    )
    answer.raise_for_status()
    return answer.json()["idToken"]


def pages(endpoints: dict[str, Any], events: int) -> dict[str, str]:
    base = endpoints["ops_console"]["url"]
    middle = datetime.now(UTC) - timedelta(minutes=5000)
    return {
        "overview (health, needs a human, 25 newest journeys)": base,
        "timeline page 3 days back": f"{base}timeline?before={middle.isoformat().replace('+', '%2B')}",
        "one payment journey": f"{base}journey/bench{events - 5:08d}",
        "customer by email (every journey of the user)": f"{base}customer?q=bench-user-00006@example.com",
    }


def measure(endpoints: dict[str, Any], events: int, runs: int) -> list[dict[str, Any]]:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {operator_token(endpoints)}"
    results = []
    for name, url in pages(endpoints, events).items():
        warm = session.get(url, timeout=30)
        if warm.status_code != 200:
            raise RuntimeError(f"{name}: {url} answered {warm.status_code}: {warm.text[:300]}")
        samples = []
        for _ in range(runs):
            since = time.perf_counter()
            answer = session.get(url, timeout=30)
            samples.append((time.perf_counter() - since) * 1000)
            answer.raise_for_status()
        results.append(
            {
                "page": name,
                "n": runs,
                "median_ms": round(statistics.median(samples), 1),
                "p95_ms": round(percentile(samples, 0.95), 1),
                "bytes": len(warm.content),
            }
        )
    return results


def render(results: list[dict[str, Any]], events: int) -> str:
    lines = [
        f"ops console page loads with {events} ledger events (target {TARGET_MS:.0f} ms)",
        "",
        "| page | n | median | p95 | HTML |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['page']} | {r['n']} | {r['median_ms']:.0f} ms | {r['p95_ms']:.0f} ms | "
            f"{r['bytes'] // 1024} KiB |"
        )
    return "\n".join(lines)


def bench(endpoints: dict[str, Any], events: int, runs: int, output: Path | None) -> ExitCode:
    if not endpoints.get("ops_console"):
        print("error: this stack serves no ops console", file=sys.stderr)
        return ExitCode.USAGE
    print(f"seeding {events} ledger events…", file=sys.stderr, flush=True)
    seed(endpoints, events)
    results = measure(endpoints, events, runs)
    print(render(results, events))
    if output:
        output.write_text(json.dumps({"events": events, "results": results}, indent=2) + "\n")
    return ExitCode.OK if all(r["median_ms"] <= TARGET_MS for r in results) else ExitCode.FAILED


def run(endpoints: Path, *, start: bool = False, events: int = 10_000, runs: int = 30,
        json_out: Path | None = None) -> ExitCode:
    """Seed `events` ledger events and time `runs` loads of each console page, on the stack of `endpoints`
    or (with `start`) a private one."""
    if start:
        with started_stack() as started:
            return bench(started, events, runs, json_out)
    return bench(load_endpoints(endpoints), events, runs, json_out)
