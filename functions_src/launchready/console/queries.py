"""The console's reads: health now, the event timeline, one journey, a customer, what needs a human.

Everything comes from what the pipeline records (docs/data-model.md): the ledger (`events/{key}` and
its `steps`), `support_requests`, `notifications`, `payment_sync`, `sync_failures`, `unmatched_events`,
`dead_letters` and `function_stats`. A journey is everything that shares one correlation id: a Stripe
event with its billing, CRM and email steps; a sign-up with its CRM sync; a support request with its
ticket and acknowledgement. Each page costs a bounded number of queries whatever the ledger's size;
every query that needs a composite index has it in firestore.indexes.json (tests/functions/console
checks it, since the emulator does not enforce indexes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from google.api_core.exceptions import InvalidArgument
from google.cloud import firestore
from google.cloud.firestore_v1.base_query import FieldFilter

from ..catalog import catalog
from ..ledger import EVENTS, STEPS, doc_id
from ..records import DEAD_LETTERS, SYNC_FAILURES, UNMATCHED_EVENTS
from ..runs import FUNCTION_STATS, LATENCY_BUCKETS_MS

SUPPORT_REQUESTS = "support_requests"
NOTIFICATIONS = "notifications"
PAYMENT_SYNC = "payment_sync"
USERS = "users"
STRIPE_CUSTOMERS = "stripe_customers"
OPS_AUDIT = "ops_audit"

HEALTH_WINDOW = timedelta(hours=24)
ATTENTION_WINDOW = timedelta(days=7)
# The alert threshold of components/monitoring.py (PAYMENT_SYNC_LAG_THRESHOLD_SECONDS).
PAYMENT_SYNC_THRESHOLD_SECONDS = 300
TIMELINE_PAGE = 25
IN_LIMIT = 30  # Firestore's limit of values in an `in` filter
DISPUTE_TYPES = [
    "charge.dispute.created",
    "charge.dispute.updated",
    "charge.dispute.closed",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.funds_reinstated",
]
# The steps each kind of ledger entry goes through; a missing one is shown as pending.
EXPECTED_STEPS = {
    "stripe": ("publish", "apply"),
    "signup": ("publish",),
    "support": ("publish", "zendesk_ticket", "write_back", "ack_email"),
    "crm": ("hubspot_upsert",),
    "email": ("resend_send",),
}
PROVIDER_STEPS = {
    "hubspot_upsert": "HubSpot contact",
    "zendesk_ticket": "Zendesk ticket",
    "resend_send": "Resend email",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


def _dicts(query: firestore.Query | firestore.CollectionReference) -> list[dict[str, Any]]:
    return [{"_id": snapshot.id, **(snapshot.to_dict() or {})} for snapshot in query.stream()]


# ---- health now ---------------------------------------------------------------------------------


def percentile_bucket(histogram: dict[str, int], fraction: float) -> str | None:
    """The upper bound (ms, or "inf") of the bucket holding the `fraction` percentile."""
    total = sum(histogram.values())
    if not total:
        return None
    needed, seen = fraction * total, 0
    for bound in [*map(str, LATENCY_BUCKETS_MS), "inf"]:
        seen += histogram.get(bound, 0)
        if seen >= needed:
            return bound
    return "inf"


def health(client: firestore.Client, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    since = now - HEALTH_WINDOW
    stats = _dicts(
        client.collection(FUNCTION_STATS).where(filter=FieldFilter("hour", ">=", since - timedelta(hours=1)))
    )
    per_function: dict[str, dict[str, Any]] = {
        spec["name"]: {
            "name": spec["name"],
            "ok": 0,
            "failed": 0,
            "histogram": defaultdict(int),
            "last_success_at": None,
            "last_failure_at": None,
            "last_error": "",
        }
        for spec in catalog()["functions"]
    }
    for doc in stats:
        entry = per_function.get(str(doc.get("function")))
        if entry is None:
            continue
        entry["ok"] += int(doc.get("ok", 0))
        entry["failed"] += int(doc.get("failed", 0))
        for bound, count in (doc.get("latency_ms") or {}).items():
            entry["histogram"][bound] += int(count)
        if doc.get("last_success_at") and (
            entry["last_success_at"] is None or doc["last_success_at"] > entry["last_success_at"]
        ):
            entry["last_success_at"] = doc["last_success_at"]
        if doc.get("last_failure_at") and (
            entry["last_failure_at"] is None or doc["last_failure_at"] > entry["last_failure_at"]
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
    return {
        "window_hours": int(HEALTH_WINDOW.total_seconds() // 3600),
        "functions": functions,
        "payment_sync": payment_sync(client, since),
        "dead_letters": dead_letter_backlog(client),
    }


def payment_sync(client: firestore.Client, since: datetime) -> dict[str, Any]:
    docs = _dicts(
        client.collection(PAYMENT_SYNC)
        .where(filter=FieldFilter("synced_at", ">=", since))
        .order_by("synced_at", direction=firestore.Query.DESCENDING)
        .limit(2000)
    )
    lags = sorted(float(d["lag_seconds"]) for d in docs if isinstance(d.get("lag_seconds"), int | float))
    p95 = lags[max(0, -(-len(lags) * 95 // 100) - 1)] if lags else None
    latest = (
        float(docs[0]["lag_seconds"])
        if docs and isinstance(docs[0].get("lag_seconds"), int | float)
        else None
    )
    worst = max(lags) if lags else None
    return {
        "count": len(lags),
        "p95_seconds": p95,
        "latest_seconds": latest,
        "max_seconds": worst,
        "threshold_seconds": PAYMENT_SYNC_THRESHOLD_SECONDS,
        "over_threshold": bool(p95 is not None and p95 > PAYMENT_SYNC_THRESHOLD_SECONDS),
    }


def dead_letter_backlog(client: firestore.Client) -> dict[str, int]:
    backlog = {topic: 0 for topic in catalog()["topics"]}
    for doc in _dicts(
        client.collection(DEAD_LETTERS).where(filter=FieldFilter("status", "==", "open")).limit(5000)
    ):
        topic = str(doc.get("topic") or "unknown")
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
        if self.started_at and self.finished_at:
            return round((self.finished_at - self.started_at).total_seconds() * 1000, 1)
        return None


@dataclass
class Journey:
    correlation_id: str
    title: str = ""
    kind: str = ""
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


def kind_of(event_key: str) -> str:
    return event_key.split(":", 1)[0]


def title_of(event_key: str, event: dict[str, Any] | None) -> str:
    kind, _, rest = event_key.partition(":")
    if kind == "stripe":
        return f"Stripe {(event or {}).get('event_type', 'event')} ({rest})"
    if kind == "signup":
        return "Sign-up"
    if kind == "support":
        return f"Support request {rest}"
    return event_key


def _provider_ids(name: str, result: Any) -> list[str]:
    if name == "hubspot_upsert" and isinstance(result, dict):
        return [str(value) for value in result.get("contact_ids") or []]
    if name in ("zendesk_ticket", "resend_send") and result not in (None, ""):
        return [str(result)]
    return []


def _step(doc: dict[str, Any], now: datetime) -> Step:
    state = str(doc.get("state") or "running")
    lease = doc.get("lease_until")
    if state == "running" and lease and lease < now:
        state = "failed"  # the attempt died holding the lease; the next delivery resumes it
    name = str(doc.get("step") or doc.get("_id"))
    return Step(
        event_key=str(doc.get("event_key") or ""),
        name=name,
        state=state,
        started_at=doc.get("started_at"),
        finished_at=doc.get("done_at") or doc.get("failed_at"),
        attempts=int(doc.get("attempts") or 0),
        duplicates_skipped=int(doc.get("duplicates_skipped") or 0),
        error=str(doc.get("last_error") or "") if state == "failed" else "",
        provider=PROVIDER_STEPS.get(name, ""),
        provider_ids=_provider_ids(name, doc.get("result")),
    )


def _chunks(values: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def journeys(
    client: firestore.Client, roots: list[tuple[str, str, datetime | None, str]], now: datetime | None = None
) -> list[Journey]:
    """Journeys for (correlation id, root event key, started at, uid) roots, newest first as given."""
    now = now or utcnow()
    ids = [correlation_id for correlation_id, *_ in roots if correlation_id]
    steps_by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for chunk in _chunks(list(dict.fromkeys(ids)), IN_LIMIT):
        query = (
            client.collection_group(STEPS)
            .where(filter=FieldFilter("correlation_id", "in", chunk))
            .order_by("updated_at")
        )
        for snapshot in query.stream():
            data = snapshot.to_dict() or {}
            # Steps written before event_key was recorded: the key is the parent document's id.
            data.setdefault(
                "event_key", snapshot.reference.parent.parent.id if snapshot.reference.parent.parent else ""
            )
            steps_by_id[str(data.get("correlation_id"))].append({"_id": snapshot.id, **data})
    keys = {root_key for _, root_key, *_ in roots} | {
        str(d["event_key"]) for docs in steps_by_id.values() for d in docs
    }
    events = _events(client, keys)
    result = []
    for correlation_id, root_key, started_at, uid in roots:
        docs = steps_by_id.get(correlation_id, []) if correlation_id else []
        steps = [_step(doc, now) for doc in docs]
        seen = {(step.event_key, step.name) for step in steps}
        for key in dict.fromkeys([root_key, *(step.event_key for step in steps)]):
            for name in EXPECTED_STEPS.get(kind_of(key), ()):
                if (key, name) not in seen and _expects(key, name, events.get(key)):
                    steps.append(Step(event_key=key, name=name, state="pending"))
        root_event = events.get(root_key)
        result.append(
            Journey(
                correlation_id=correlation_id,
                title=title_of(root_key, root_event),
                kind=kind_of(root_key),
                started_at=started_at,
                uid=uid or str((root_event or {}).get("uid") or ""),
                steps=steps,
            )
        )
    return result


def _expects(key: str, name: str, event: dict[str, Any] | None) -> bool:
    """Whether a missing step is still to come (an ignored or unmatched Stripe event has no apply)."""
    if kind_of(key) == "stripe" and event:
        if event.get("status") == "ignored":
            return False
        if name == "apply" and event.get("billing_outcome") == "unmatched":
            return False
    return True


def _events(client: firestore.Client, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    refs = [client.collection(EVENTS).document(doc_id(key)) for key in keys if key]
    found: dict[str, dict[str, Any]] = {}
    for snapshot in client.get_all(refs):
        if snapshot.exists:
            data = snapshot.to_dict() or {}
            found[str(data.get("key") or snapshot.id)] = data
    return found


def timeline(
    client: firestore.Client,
    *,
    before: datetime | None = None,
    limit: int = TIMELINE_PAGE,
    now: datetime | None = None,
) -> list[Journey]:
    """The newest journeys (Stripe events, sign-ups, support requests), `before` a time for older pages."""
    events = client.collection(EVENTS).order_by("claimed_at", direction=firestore.Query.DESCENDING)
    requests = client.collection(SUPPORT_REQUESTS).order_by(
        "created_at", direction=firestore.Query.DESCENDING
    )
    if before:
        events = events.where(filter=FieldFilter("claimed_at", "<", before))
        requests = requests.where(filter=FieldFilter("created_at", "<", before))
    roots = [
        (
            str(d.get("correlation_id") or ""),
            str(d.get("key") or d["_id"]),
            d.get("claimed_at"),
            str(d.get("uid") or ""),
        )
        for d in _dicts(events.limit(limit))
    ]
    roots += [
        (
            str(d.get("correlation_id") or ""),
            f"support:{d.get('reference') or d['_id']}",
            d.get("created_at"),
            str(d.get("uid") or ""),
        )
        for d in _dicts(requests.limit(limit))
    ]
    roots.sort(key=lambda root: root[2] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return journeys(client, roots[:limit], now)


def journey(
    client: firestore.Client, correlation_id: str, now: datetime | None = None
) -> dict[str, Any] | None:
    """One journey with everything recorded under its correlation id, or None if nothing is."""

    def by_correlation(collection: str) -> list[dict[str, Any]]:
        return _dicts(
            client.collection(collection)
            .where(filter=FieldFilter("correlation_id", "==", correlation_id))
            .limit(50)
        )

    roots = by_correlation(EVENTS)
    requests = by_correlation(SUPPORT_REQUESTS)
    if roots:
        root = roots[0]
        key, started, uid = str(root.get("key") or root["_id"]), root.get("claimed_at"), root.get("uid")
    elif requests:
        root = requests[0]
        key, started, uid = f"support:{root.get('reference')}", root.get("created_at"), root.get("uid")
    else:
        key, started, uid = "", None, ""
    found = journeys(client, [(correlation_id, key, started, str(uid or ""))], now)[0]
    if not found.steps and not key:
        return None
    if not key:  # a message with no root of its own (e.g. a dead-lettered CRM sync): named by its key
        found.title, found.kind = found.steps[0].event_key, kind_of(found.steps[0].event_key)
    if not found.started_at:
        starts = [step.started_at for step in found.steps if step.started_at]
        found.started_at = min(starts) if starts else None
    return {
        "journey": found,
        "support_requests": requests,
        "emails": by_correlation(NOTIFICATIONS),
        "payment_sync": by_correlation(PAYMENT_SYNC),
        "sync_failures": by_correlation(SYNC_FAILURES),
        "dead_letters": by_correlation(DEAD_LETTERS),
    }


# ---- customers ----------------------------------------------------------------------------------


def find_customer(client: firestore.Client, term: str) -> str | None:
    """The uid for an email address, uid, Stripe customer id (cus_...) or support reference (SR-...)."""
    term = term.strip()
    if not term or "/" in term:
        return None
    if "@" in term:
        users = list(
            client.collection(USERS).where(filter=FieldFilter("email", "==", term.lower())).limit(1).stream()
        )
        if not users:  # stored as the app wrote it
            users = list(
                client.collection(USERS).where(filter=FieldFilter("email", "==", term)).limit(1).stream()
            )
        return users[0].id if users else None
    if term.startswith("cus_"):
        snapshot = client.collection(STRIPE_CUSTOMERS).document(doc_id(term)).get()
        return str((snapshot.to_dict() or {}).get("uid") or "") or None if snapshot.exists else None
    if term.upper().startswith("SR-"):
        snapshot = client.collection(SUPPORT_REQUESTS).document(term.upper()).get()
        return str((snapshot.to_dict() or {}).get("uid") or "") or None if snapshot.exists else None
    try:
        return term if client.collection(USERS).document(term).get().exists else None
    except (ValueError, InvalidArgument):  # not a possible document id (e.g. "..", "__x__")
        return None


def customer(
    client: firestore.Client, uid: str, claims: dict[str, Any] | None, now: datetime | None = None
) -> dict[str, Any]:
    """Billing, access claim, CRM sync, tickets, emails and every journey that touched `uid`."""
    user = client.collection(USERS).document(uid).get().to_dict() or {}
    events = _dicts(
        client.collection(EVENTS)
        .where(filter=FieldFilter("uid", "==", uid))
        .order_by("claimed_at", direction=firestore.Query.DESCENDING)
        .limit(50)
    )
    signup = _events(client, [f"signup:{uid}"]).get(f"signup:{uid}")
    tickets = _dicts(
        client.collection(SUPPORT_REQUESTS)
        .where(filter=FieldFilter("uid", "==", uid))
        .order_by("created_at", direction=firestore.Query.DESCENDING)
        .limit(50)
    )
    email = str(user.get("email") or "")
    emails = (
        _dicts(
            client.collection(NOTIFICATIONS)
            .where(filter=FieldFilter("to", "array_contains", email))
            .order_by("sent_at", direction=firestore.Query.DESCENDING)
            .limit(50)
        )
        if email
        else []
    )
    roots = [
        (str(e.get("correlation_id") or ""), str(e.get("key") or e["_id"]), e.get("claimed_at"), uid)
        for e in events
    ]
    if signup:
        roots.append(
            (str(signup.get("correlation_id") or ""), f"signup:{uid}", signup.get("claimed_at"), uid)
        )
    roots += [
        (str(t.get("correlation_id") or ""), f"support:{t.get('reference')}", t.get("created_at"), uid)
        for t in tickets
    ]
    roots.sort(key=lambda root: root[2] or datetime.min.replace(tzinfo=UTC), reverse=True)
    touched = journeys(client, roots, now)
    crm_steps = [step for j in touched for step in j.steps if step.name == "hubspot_upsert"]
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
        "journeys": touched,
    }


# ---- what needs a human -------------------------------------------------------------------------


def attention(client: firestore.Client, now: datetime | None = None) -> dict[str, list[dict[str, Any]]]:
    now = now or utcnow()
    since = now - ATTENTION_WINDOW

    def recent(collection: str) -> list[dict[str, Any]]:
        return _dicts(
            client.collection(collection)
            .where(filter=FieldFilter("recorded_at", ">=", since))
            .order_by("recorded_at", direction=firestore.Query.DESCENDING)
            .limit(50)
        )

    dead = _dicts(
        client.collection(DEAD_LETTERS)
        .where(filter=FieldFilter("status", "in", ["open", "replaying"]))
        .order_by("recorded_at", direction=firestore.Query.DESCENDING)
        .limit(50)
    )
    replayed = _dicts(
        client.collection(DEAD_LETTERS)
        .where(filter=FieldFilter("status", "==", "replayed"))
        .order_by("recorded_at", direction=firestore.Query.DESCENDING)
        .limit(10)
    )
    disputes = _dicts(
        client.collection(EVENTS)
        .where(filter=FieldFilter("event_type", "in", DISPUTE_TYPES))
        .order_by("claimed_at", direction=firestore.Query.DESCENDING)
        .limit(20)
    )
    return {
        "dead_letters": dead,
        "replayed": replayed,
        "sync_failures": recent(SYNC_FAILURES),
        "unmatched_events": recent(UNMATCHED_EVENTS),
        "disputes": disputes,
    }


def dead_letter(client: firestore.Client, record_id: str) -> dict[str, Any] | None:
    snapshot = client.collection(DEAD_LETTERS).document(record_id).get()
    return {"_id": snapshot.id, **(snapshot.to_dict() or {})} if snapshot.exists else None
