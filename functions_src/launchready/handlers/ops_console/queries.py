"""The console's reads: health now, the event timeline, one journey, a customer, what needs a human.

Every page reads documents by id (the journey journal, hourly statistics, the day's inbox summaries), so
its cost does not grow with the ledger (docs/architecture.md, "Ops console").
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core.exceptions import InvalidArgument
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from launchready.domain.steps import APPLY, BY_KIND, HUBSPOT_UPSERT
from launchready.platform.config import function_names, publishes
from launchready.platform.ledger import DEFAULT_LEASE_SECONDS, EVENTS, doc_id
from launchready.records.journal import (
    CUSTOMER_EMAILS,
    CUSTOMER_JOURNEYS,
    JOURNEYS,
    PROVIDER_STEPS,
    TIMELINE,
    email_digest,
    hour_id,
    kind_of,
)
from launchready.records.ops import DEAD_LETTERS, DISPUTES, SYNC_FAILURES, UNMATCHED_EVENTS, inbox_path
from launchready.records.runs import (
    FUNCTION_STATS,
    LATENCY_BUCKETS_MS,
    PAYMENT_SYNC_LAG_BOUNDS_S,
    PAYMENT_SYNC_STATS,
    SHARDS,
)

SUPPORT_REQUESTS = "support_requests"
NOTIFICATIONS = "notifications"
PAYMENT_SYNC = "payment_sync"
USERS = "users"
STRIPE_CUSTOMERS = "stripe_customers"

HEALTH_WINDOW = timedelta(hours=24)
ATTENTION_WINDOW = timedelta(days=7)
# The alert threshold of components/monitoring.py (PAYMENT_SYNC_LAG_THRESHOLD_SECONDS).
PAYMENT_SYNC_THRESHOLD_SECONDS = 300
TIMELINE_PAGE = 25
TIMELINE_LOOKBACK_HOURS = 31 * 24  # how far back a timeline page looks for journeys
HOURS_PER_READ = 48
CUSTOMER_JOURNEYS_SHOWN = 50


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dicts(query: firestore.Query | firestore.CollectionReference) -> list[dict[str, Any]]:
    return [{"_id": snapshot.id, **(snapshot.to_dict() or {})} for snapshot in query.stream()]


def _get_all(client: firestore.Client, paths: Iterable[str]) -> dict[str, dict[str, Any]]:
    """Documents by path (missing ones left out), in one batched read."""
    refs = [client.document(path) for path in dict.fromkeys(paths)]
    if not refs:
        return {}
    return {
        snapshot.reference.path: {"_id": snapshot.id, **(snapshot.to_dict() or {})}
        for snapshot in client.get_all(refs)
        if snapshot.exists
    }


# Hourly documents (run and lag statistics, the timeline) stop changing once their hour is over; an
# instance keeps those it has read, so a reload reads only the current and the previous hour again.
_SETTLED: dict[str, dict[str, Any] | None] = {}
_SETTLED_LIMIT = 20_000


def _get_hourly(
    client: firestore.Client, paths: list[tuple[str, datetime]], now: datetime
) -> list[dict[str, Any]]:
    """Documents of (path, hour) pairs; those of hours ended over an hour ago come from the instance cache."""
    settled_before = _hour(now) - timedelta(hours=1)
    wanted = [path for path, hour in paths if hour >= settled_before or path not in _SETTLED]
    fetched = _get_all(client, wanted)
    if len(_SETTLED) > _SETTLED_LIMIT:
        _SETTLED.clear()
    for path, hour in paths:
        if hour < settled_before and path in wanted:
            _SETTLED[path] = fetched.get(path)
    return [doc for path, _ in paths if (doc := fetched.get(path) or _SETTLED.get(path)) is not None]


# ---- health now ---------------------------------------------------------------------------------


def percentile_bucket(
    histogram: dict[str, int],
    fraction: float,
    bounds: Iterable[int] = LATENCY_BUCKETS_MS,
) -> str | None:
    """The upper bound (or "inf") of the histogram bucket holding the `fraction` percentile."""
    total = sum(histogram.values())
    if not total:
        return None
    needed, seen = fraction * total, 0
    for bound in [*map(str, bounds), "inf"]:
        seen += histogram.get(bound, 0)
        if seen >= needed:
            return bound
    return "inf"


def _later(a: Any, b: Any) -> Any:
    return b if a is None or (b is not None and b > a) else a


def health(client: firestore.Client, now: datetime | None = None) -> dict[str, Any]:
    """Per-function runs, error rate, p95 and last success/failure; payment sync lag; dead-letter backlog."""
    now = now or utcnow()
    return {
        "window_hours": int(HEALTH_WINDOW.total_seconds() // 3600),
        "functions": function_health(client, now),
        "payment_sync": payment_sync(client, now),
        "dead_letters": dead_letter_backlog(inbox(client, now)[DEAD_LETTERS]),
    }


def function_health(client: firestore.Client, now: datetime) -> list[dict[str, Any]]:
    per_function: dict[str, dict[str, Any]] = {
        name: {
            "name": name,
            "ok": 0,
            "failed": 0,
            "histogram": defaultdict(int),
            "last_success_at": None,
            "last_failure_at": None,
            "last_error": "",
        }
        for name in function_names()
    }
    paths = [
        (f"{FUNCTION_STATS}/{name}_{hour_id(hour)}_{shard}", hour)
        for name in per_function
        for hour in _hours(now)
        for shard in range(SHARDS)
    ]
    for doc in _get_hourly(client, paths, now):
        entry = per_function.get(str(doc.get("function")))
        if entry is None:
            continue
        entry["ok"] += int(doc.get("ok", 0))
        entry["failed"] += int(doc.get("failed", 0))
        for bound, count in (doc.get("latency_ms") or {}).items():
            entry["histogram"][bound] += int(count)
        entry["last_success_at"] = _later(entry["last_success_at"], doc.get("last_success_at"))
        if (
            doc.get("last_failure_at")
            and _later(entry["last_failure_at"], doc["last_failure_at"]) is not entry["last_failure_at"]
        ):
            entry["last_failure_at"], entry["last_error"] = doc["last_failure_at"], doc.get("last_error", "")
    functions = []
    for entry in per_function.values():
        runs = entry["ok"] + entry["failed"]
        functions.append(
            {
                **{k: v for k, v in entry.items() if k != "histogram"},
                "runs": runs,
                "error_rate": entry["failed"] / runs if runs else None,
                "p95_ms": percentile_bucket(entry["histogram"], 0.95),
            }
        )
    return functions


def _hour(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _hours(now: datetime) -> list[datetime]:
    """The hour buckets of the health window (the current hour and the 24 before it)."""
    return [_hour(now) - timedelta(hours=h) for h in range(int(HEALTH_WINDOW.total_seconds() // 3600) + 1)]


def payment_sync(client: firestore.Client, now: datetime) -> dict[str, Any]:
    """Stripe-event-to-CRM lag over the window: count, p95 (bucket bound), max and the latest."""
    histogram: dict[str, int] = defaultdict(int)
    count, worst, latest, latest_at = 0, None, None, None
    paths = [
        (f"{PAYMENT_SYNC_STATS}/{hour_id(hour)}_{shard}", hour)
        for hour in _hours(now)
        for shard in range(SHARDS)
    ]
    for doc in _get_hourly(client, paths, now):
        count += int(doc.get("count", 0))
        for bound, n in (doc.get("lag_seconds") or {}).items():
            histogram[bound] += int(n)
        worst = _later(worst, doc.get("max_seconds"))
        if doc.get("last_at") and _later(latest_at, doc["last_at"]) is not latest_at:
            latest_at, latest = doc["last_at"], doc.get("last_seconds")
    p95 = percentile_bucket(histogram, 0.95, PAYMENT_SYNC_LAG_BOUNDS_S)
    over = p95 is not None and (p95 == "inf" or float(p95) > PAYMENT_SYNC_THRESHOLD_SECONDS)
    return {
        "count": count,
        "p95_bucket_seconds": p95,
        "latest_seconds": latest,
        "max_seconds": worst,
        "threshold_seconds": PAYMENT_SYNC_THRESHOLD_SECONDS,
        "over_threshold": over,
    }


def inbox(client: firestore.Client, now: datetime) -> dict[str, list[dict[str, Any]]]:
    """The last week's operational records by collection, newest first, from the daily inbox summaries."""
    days = [now - timedelta(days=d) for d in range(ATTENTION_WINDOW.days + 1)]
    collections = (DEAD_LETTERS, SYNC_FAILURES, UNMATCHED_EVENTS, DISPUTES)
    docs = _get_all(client, (inbox_path(c, day) for c in collections for day in days))
    found: dict[str, list[dict[str, Any]]] = {c: [] for c in collections}
    for path, doc in docs.items():
        collection = path.split("/", 1)[1].rsplit("_", 1)[0]
        found[collection] += [{"_id": item.get("id"), **item} for item in (doc.get("items") or {}).values()]
    oldest = datetime.min.replace(tzinfo=UTC)
    for items in found.values():
        items.sort(key=lambda item: item.get("recorded_at") or oldest, reverse=True)
    return found


def dead_letter_backlog(dead_letters: list[dict[str, Any]]) -> dict[str, int]:
    """Open dead letters per topic the console replays to (Pub/Sub keeps a dead letter 7 days, the inbox
    window)."""
    backlog = {topic: 0 for topic in publishes()}
    for item in dead_letters:
        if item.get("status", "open") == "open":
            topic = str(item.get("topic") or "unknown")
            backlog[topic] = backlog.get(topic, 0) + 1
    return backlog


# ---- journeys -----------------------------------------------------------------------------------


@dataclass
class Step:
    event_key: str
    name: str
    state: str  # pending, running, done, failed
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    duplicates_skipped: int = 0
    error: str = ""
    provider: str = ""
    provider_ids: list[str] = field(default_factory=list)

    @property
    def duration_ms(self) -> float | None:
        if self.started_at and self.finished_at and self.state in ("done", "failed"):
            return round((self.finished_at - self.started_at).total_seconds() * 1000, 1)
        return None


@dataclass
class Journey:
    correlation_id: str
    title: str = ""
    kind: str = ""
    root_key: str = ""
    started_at: datetime | None = None
    uid: str = ""
    steps: list[Step] = field(default_factory=list)

    @property
    def state(self) -> str:
        states = {step.state for step in self.steps}
        for state in ("failed", "running", "pending"):
            if state in states:
                return state
        return "done" if states else "skipped"  # nothing to do (e.g. a Stripe event type not handled)

    @property
    def provider_ids(self) -> list[tuple[str, str]]:
        return [(step.provider, value) for step in self.steps for value in step.provider_ids]

    @property
    def duration_ms(self) -> float | None:
        ends = [step.finished_at for step in self.steps if step.finished_at]
        if not self.started_at or not ends or self.state != "done":
            return None
        return round((max(ends) - self.started_at).total_seconds() * 1000, 1)


def title_of(root_key: str, event_type: str | None) -> str:
    kind, _, rest = root_key.partition(":")
    if kind == "stripe":
        return f"Stripe {event_type or 'event'} ({rest})"
    if kind == "signup":
        return "Sign-up"
    if kind == "support":
        return f"Support request {rest}"
    return root_key


def _step(entry: dict[str, Any], now: datetime, lease: timedelta) -> Step:
    name = str(entry.get("step") or "")
    state = str(entry.get("state") or "running")
    started = entry.get("started_at")
    if state == "running" and started and now - started > lease:
        state = "failed"  # the attempt died holding its lease; the next delivery resumes the step
    return Step(
        event_key=str(entry.get("event_key") or ""),
        name=name,
        state=state,
        started_at=started,
        finished_at=entry.get("finished_at"),
        attempts=int(entry.get("attempts") or 0),
        duplicates_skipped=int(entry.get("duplicates_skipped") or 0),
        error=str(entry.get("error") or "") if state == "failed" else "",
        provider=PROVIDER_STEPS.get(name, ""),
        provider_ids=list(entry.get("provider_ids") or []),
    )


def _expects(key: str, name: str, event: dict[str, Any] | None) -> bool:
    """Whether a missing step is still to come (an ignored or unmatched Stripe event has no apply)."""
    if kind_of(key) == "stripe" and event:
        if event.get("status") == "ignored":
            return False
        if name == APPLY and event.get("billing_outcome") == "unmatched":
            return False
    return True


def build_journeys(
    client: firestore.Client, correlation_ids: list[str], now: datetime | None = None
) -> list[Journey]:
    """The journeys of these correlation ids (unknown ones left out), in the order given."""
    now = now or utcnow()
    docs = _get_all(client, (f"{JOURNEYS}/{cid}" for cid in correlation_ids if cid and "/" not in cid))
    found = {doc["_id"]: doc for doc in docs.values()}
    roots = _get_all(
        client, (f"{EVENTS}/{doc_id(d['root_key'])}" for d in found.values() if d.get("root_key"))
    )
    events = {str(doc.get("key") or doc["_id"]): doc for doc in roots.values()}
    lease = timedelta(seconds=DEFAULT_LEASE_SECONDS)  # the lease a running step holds
    result = []
    for cid in correlation_ids:
        doc = found.get(cid)
        if doc is None:
            continue
        steps = sorted(
            (_step(entry, now, lease) for entry in (doc.get("steps") or {}).values()),
            key=lambda s: s.started_at or now,
        )
        root_key = str(doc.get("root_key") or (steps[0].event_key if steps else ""))
        seen = {(step.event_key, step.name) for step in steps}
        for key in dict.fromkeys([root_key, *(step.event_key for step in steps)]):
            for name in BY_KIND.get(kind_of(key), ()):
                if (key, name) not in seen and _expects(key, name, events.get(key)):
                    steps.append(Step(event_key=key, name=name, state="pending"))
        root_event = events.get(root_key) or {}
        started = doc.get("started_at") or min((s.started_at for s in steps if s.started_at), default=None)
        result.append(
            Journey(
                correlation_id=cid,
                title=title_of(root_key, doc.get("event_type")),
                kind=kind_of(root_key),
                root_key=root_key,
                started_at=started,
                uid=str(doc.get("uid") or root_event.get("uid") or ""),
                steps=steps,
            )
        )
    return result


def timeline(
    client: firestore.Client,
    *,
    before: datetime | None = None,
    limit: int = TIMELINE_PAGE,
    now: datetime | None = None,
) -> list[Journey]:
    """The newest journeys started before `before` (default: now), newest first."""
    now = now or utcnow()
    before = before or now + timedelta(seconds=1)
    hour = _hour(before)
    entries: dict[str, datetime] = {}
    for start in range(0, TIMELINE_LOOKBACK_HOURS, HOURS_PER_READ):
        hours = [hour - timedelta(hours=h) for h in range(start, start + HOURS_PER_READ)]
        for doc in _get_hourly(client, [(f"{TIMELINE}/{hour_id(h)}", h) for h in hours], now):
            for cid, at in (doc.get("journeys") or {}).items():
                if isinstance(at, datetime) and at < before:
                    entries[cid] = at
        if len(entries) >= limit:
            break
    newest = sorted(entries, key=lambda cid: entries[cid], reverse=True)[:limit]
    return build_journeys(client, newest, now)


def journey(
    client: firestore.Client, correlation_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """One journey with the records it names, or None if nothing was journaled under the id."""
    found = build_journeys(client, [correlation_id], now)
    if not found:
        return None
    one = found[0]
    keys = {step.event_key for step in one.steps}
    paths = [
        f"{NOTIFICATIONS}/{doc_id(key.removeprefix('email:'))}" for key in keys if key.startswith("email:")
    ]
    if one.kind == "support":
        paths.append(f"{SUPPORT_REQUESTS}/{one.root_key.removeprefix('support:')}")
    if one.kind == "stripe":
        paths.append(f"{PAYMENT_SYNC}/{doc_id(one.root_key.removeprefix('stripe:'))}")
    docs = _get_all(client, paths)

    def named(collection: str) -> list[dict[str, Any]]:
        return [doc for path, doc in docs.items() if path.startswith(f"{collection}/")]

    problems = inbox(client, now or utcnow())

    def by_correlation(collection: str) -> list[dict[str, Any]]:
        return [item for item in problems[collection] if item.get("correlation_id") == correlation_id]

    return {
        "journey": one,
        "support_requests": named(SUPPORT_REQUESTS),
        "emails": named(NOTIFICATIONS),
        "payment_sync": named(PAYMENT_SYNC),
        "sync_failures": by_correlation(SYNC_FAILURES),
        "dead_letters": by_correlation(DEAD_LETTERS),
    }


# ---- customers ----------------------------------------------------------------------------------


def find_customer(client: firestore.Client, term: str) -> str | None:
    """The uid for an email address, uid, Stripe customer id (cus_...) or support reference (SR-...)."""
    term = term.strip()
    if not term or "/" in term:
        return None
    try:
        if "@" in term:
            indexed = client.collection(CUSTOMER_EMAILS).document(email_digest(term)).get()
            if indexed.exists:  # written by user_created at sign-up: one read
                return str((indexed.to_dict() or {}).get("uid") or "") or None
            # Users who signed up before the index existed: a query on users (email as stored).
            for spelling in dict.fromkeys([term.lower(), term]):
                users = list(
                    client.collection(USERS)
                    .where(filter=FieldFilter("email", "==", spelling))
                    .limit(1)
                    .stream()
                )
                if users:
                    return users[0].id
            return None
        if term.startswith("cus_"):
            snapshot = client.collection(STRIPE_CUSTOMERS).document(doc_id(term)).get()
        elif term.upper().startswith("SR-"):
            snapshot = client.collection(SUPPORT_REQUESTS).document(term.upper()).get()
        else:
            return term if client.collection(USERS).document(term).get().exists else None
    except (ValueError, InvalidArgument):  # not a possible document id (e.g. "..", "__x__")
        return None
    return (str((snapshot.to_dict() or {}).get("uid") or "") or None) if snapshot.exists else None


def customer(
    client: firestore.Client, uid: str, claims: dict[str, Any] | None, now: datetime | None = None
) -> dict[str, Any]:
    """Billing, access claim, CRM sync, tickets, emails and every journey that touched `uid`."""
    docs = _get_all(client, [f"{USERS}/{uid}", f"{CUSTOMER_JOURNEYS}/{uid}"])
    user = docs.get(f"{USERS}/{uid}", {})
    touched = (docs.get(f"{CUSTOMER_JOURNEYS}/{uid}") or {}).get("journeys") or {}
    newest = sorted(touched, key=lambda cid: touched[cid], reverse=True)[:CUSTOMER_JOURNEYS_SHOWN]
    journeys = build_journeys(client, newest, now)
    keys = {step.event_key for j in journeys for step in j.steps}
    named = _get_all(
        client,
        [
            *(
                f"{SUPPORT_REQUESTS}/{key.removeprefix('support:')}"
                for key in keys
                if key.startswith("support:")
            ),
            *(
                f"{NOTIFICATIONS}/{doc_id(key.removeprefix('email:'))}"
                for key in keys
                if key.startswith("email:")
            ),
        ],
    )
    tickets = sorted(
        (d for p, d in named.items() if p.startswith(f"{SUPPORT_REQUESTS}/")),
        key=lambda d: d.get("created_at") or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    emails = sorted(
        (d for p, d in named.items() if p.startswith(f"{NOTIFICATIONS}/")),
        key=lambda d: d.get("sent_at") or datetime.min.replace(tzinfo=UTC),
        reverse=True,
    )
    crm_steps = [step for j in journeys for step in j.steps if step.name == HUBSPOT_UPSERT]
    latest_crm = max(
        crm_steps,
        key=lambda s: s.finished_at or s.started_at or datetime.min.replace(tzinfo=UTC),
        default=None,
    )
    return {
        "uid": uid,
        "user": user,
        "billing": user.get("billing") or {},
        "entitlements": user.get("entitlements") or {},
        "claims": claims or {},
        "crm": latest_crm,
        "tickets": tickets,
        "emails": emails,
        "journeys": journeys,
    }


# ---- what needs a human -------------------------------------------------------------------------


def attention(
    client: firestore.Client,
    now: datetime | None = None,
    found: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Open dead letters, the last week's sync failures, unmatched events and disputes, recent replays."""
    found = found if found is not None else inbox(client, now or utcnow())
    dead = found[DEAD_LETTERS]
    return {
        "dead_letters": [d for d in dead if d.get("status", "open") != "replayed"],
        "replayed": [d for d in dead if d.get("status") == "replayed"][:10],
        "sync_failures": found[SYNC_FAILURES][:50],
        "unmatched_events": found[UNMATCHED_EVENTS][:50],
        "disputes": found[DISPUTES][:50],
    }


def overview(client: firestore.Client, now: datetime | None = None) -> dict[str, Any]:
    """Health, what needs a human and the newest journeys: the independent reads run concurrently, so
    the page waits for the slowest one rather than for their sum."""
    now = now or utcnow()
    with ThreadPoolExecutor(max_workers=4) as pool:
        functions = pool.submit(function_health, client, now)
        lag = pool.submit(payment_sync, client, now)
        found = pool.submit(inbox, client, now)
        journeys = pool.submit(timeline, client, now=now)
        problems = found.result()
        return {
            "health": {
                "window_hours": int(HEALTH_WINDOW.total_seconds() // 3600),
                "functions": functions.result(),
                "payment_sync": lag.result(),
                "dead_letters": dead_letter_backlog(problems[DEAD_LETTERS]),
            },
            "attention": attention(client, now, problems),
            "journeys": journeys.result(),
        }
