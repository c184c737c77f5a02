"""The ops console's queries on the Firestore emulator, and the composite index each one needs.

The emulator serves any query without an index, where Firestore refuses one whose composite index is
not deployed. So every query the console runs in these tests is captured and checked against
firestore.indexes.json with Firestore's rules for when a composite index is needed
(https://firebase.google.com/docs/firestore/query-data/index-overview#composite_indexes).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore
from google.cloud.firestore_v1 import base_query
from launchready.handlers.ops_console import queries
from launchready.records import journal, runs
from launchready.records.runs import LATENCY_BUCKETS_MS

from tests.functions.handlers.ops_console.fixtures import seed_payment, seed_problems, seed_support

pytestmark = pytest.mark.runs_as("ops_console")

INDEXES = Path(__file__).resolve().parents[4] / "firestore.indexes.json"
EQUALITY = {"EQUAL", "IN"}


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every structured query the code under test sends, as its protobuf."""
    sent: list[Any] = []
    original = base_query.BaseQuery._to_protobuf

    def capture(self: base_query.BaseQuery) -> Any:
        proto = original(self)
        sent.append(proto)
        return proto

    monkeypatch.setattr(base_query.BaseQuery, "_to_protobuf", capture)
    yield sent


def _filters(proto: Any) -> list[tuple[str, str]]:
    where = proto.where
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if node._pb.HasField("composite_filter"):
            for sub in node.composite_filter.filters:
                walk(sub)
        elif node._pb.HasField("field_filter"):
            found.append((node.field_filter.field.field_path, node.field_filter.op.name))
        elif node._pb.HasField("unary_filter"):
            found.append((node.unary_filter.field.field_path, "EQUAL"))

    if proto._pb.HasField("where"):
        walk(where)
    return found


def required_index(proto: Any) -> dict[str, Any] | None:
    """The composite index a query needs, or None when single-field indexes serve it."""
    source = proto.from_[0]
    scope = "COLLECTION_GROUP" if source.all_descendants else "COLLECTION"
    filters = _filters(proto)
    orders = [
        (o.field.field_path, o.direction.name) for o in proto.order_by if o.field.field_path != "__name__"
    ]
    equality = sorted({f for f, op in filters if op in EQUALITY})
    contains = sorted({f for f, op in filters if op in ("ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY")})
    ranged = {f for f, op in filters if op not in EQUALITY | {"ARRAY_CONTAINS", "ARRAY_CONTAINS_ANY"}}
    ordered = [(f, d) for f, d in orders if f not in equality]
    fields = set(equality) | set(contains) | ranged | {f for f, _ in ordered}
    if len(fields) <= 1 and scope == "COLLECTION":
        return None  # one field: the automatic single-field index
    if not ordered and not ranged and scope == "COLLECTION":
        return None  # equalities only: Firestore merges single-field indexes
    return {
        "collection": source.collection_id,
        "scope": scope,
        "equality": equality,
        "contains": contains,
        "ordered": ordered or [(f, "ASCENDING") for f in sorted(ranged)],
    }


def covered(need: dict[str, Any], declared: list[dict[str, Any]]) -> bool:
    for index in declared:
        if (
            index["collectionGroup"] != need["collection"]
            or index.get("queryScope", "COLLECTION") != need["scope"]
        ):
            continue
        fields = index["fields"]
        prefix = len(need["equality"]) + len(need["contains"])
        head, tail = fields[:prefix], fields[prefix:]
        head_ok = (
            sorted(f["fieldPath"] for f in head if "order" in f) == need["equality"]
            and sorted(f["fieldPath"] for f in head if f.get("arrayConfig") == "CONTAINS") == need["contains"]
        )
        tail_ok = [(f["fieldPath"], f.get("order")) for f in tail] == [tuple(o) for o in need["ordered"]]
        if head_ok and tail_ok:
            return True
    return False


def assert_indexed(protos: list[Any]) -> None:
    declared = json.loads(INDEXES.read_text())["indexes"]
    missing = [need for need in filter(None, map(required_index, protos)) if not covered(need, declared)]
    assert not missing, f"queries without a declared composite index in firestore.indexes.json: {missing}"


@pytest.fixture
def seeded(db: firestore.Client) -> dict[str, Any]:
    paid = seed_payment(db, uid="u-ada", email="ada@example.com", customer="cus_ada", resend_id="re_123")
    support = seed_support(db, uid="u-ada", email="ada@example.com", reference="SR-ABC123")
    problems = seed_problems(db)
    return {"paid": paid, "support": support, "problems": problems}


def test_timeline_shows_each_journey_with_every_step_state_timing_and_provider_id(
    db: firestore.Client, seeded: dict[str, Any], captured: list[Any]
) -> None:
    journeys = {j.correlation_id: j for j in queries.timeline(db)}
    paid = journeys[seeded["paid"]["correlation_id"]]
    assert paid.title.startswith("Stripe checkout.session.completed")
    assert paid.state == "done" and paid.uid == "u-ada"
    steps = {(s.event_key, s.name): s for s in paid.steps}
    event, crm = seeded["paid"]["event"], seeded["paid"]["crm"]
    assert {(event, "publish"), (event, "apply"), (event, "claims"), (crm, "hubspot_upsert")} <= set(steps)
    assert all(s.state == "done" and s.duration_ms is not None for s in steps.values())
    assert ("HubSpot contact", "901") in paid.provider_ids and ("Resend email", "re_123") in paid.provider_ids

    support = journeys[seeded["support"]["correlation_id"]]
    assert support.title == "Support request SR-ABC123"
    states = {s.name: s for s in support.steps}
    assert states["zendesk_ticket"].provider_ids == ["4242"]
    assert states["zendesk_ticket"].duplicates_skipped == 1
    assert states["ack_email"].state == "pending"  # not run yet: shown as what comes next
    assert support.state == "pending"
    # Newest first: the support request (seeded second) before the payment.
    order = [j.correlation_id for j in queries.timeline(db)]
    assert order.index(support.correlation_id) < order.index(paid.correlation_id)
    # A dead-lettered CRM sync has no root step of its own: reachable from its dead letter, not listed.
    assert seeded["problems"]["correlation_id"] not in order
    assert_indexed(captured)


def test_timeline_pages_back_in_time(db: firestore.Client, seeded: dict[str, Any]) -> None:
    first = queries.timeline(db, limit=1)
    assert [j.correlation_id for j in first] == [seeded["support"]["correlation_id"]]
    older = queries.timeline(db, limit=5, before=first[-1].started_at)
    assert seeded["paid"]["correlation_id"] in [j.correlation_id for j in older]
    assert seeded["support"]["correlation_id"] not in [j.correlation_id for j in older]


def test_journey_gathers_emails_payment_sync_and_failures(
    db: firestore.Client, seeded: dict[str, Any], captured: list[Any]
) -> None:
    found = queries.journey(db, seeded["paid"]["correlation_id"])
    assert found is not None
    assert [e["resend_id"] for e in found["emails"]] == ["re_123"]
    assert found["payment_sync"][0]["lag_seconds"] == 4.5
    dead = queries.journey(db, seeded["problems"]["correlation_id"])
    assert dead is not None
    assert [d["event_id"] for d in dead["dead_letters"]] == [seeded["problems"]["event_id"]]
    failed = [s for s in dead["journey"].steps if s.state == "failed"]
    assert failed and "503" in failed[0].error and dead["journey"].title == seeded["problems"]["event_id"]
    assert queries.journey(db, "no-such-correlation-id") is None
    assert_indexed(captured)


@pytest.mark.parametrize(
    "term", ["ada@example.com", "ADA@example.com", "u-ada", "cus_ada", "SR-ABC123", "sr-abc123"]
)
def test_a_customer_is_found_by_email_uid_stripe_customer_or_reference(
    db: firestore.Client, seeded: dict[str, Any], term: str
) -> None:
    assert queries.find_customer(db, term) == "u-ada"


def test_a_customer_indexed_at_sign_up_is_found_by_email_with_one_read(
    db: firestore.Client, captured: list[Any]
) -> None:
    journal.index_email("Grace.Hopper@Example.com", "u-grace")
    assert queries.find_customer(db, "grace.hopper@example.com") == "u-grace"
    assert captured == []  # a document read, no query


@pytest.mark.parametrize(
    "term", ["", "nobody@example.com", "cus_unknown", "SR-ZZZZZZ", "users/u-ada", "u-none", "..", "__x__"]
)
def test_an_unknown_customer_is_not_found(db: firestore.Client, seeded: dict[str, Any], term: str) -> None:
    assert queries.find_customer(db, term) is None


def test_customer_view_has_billing_claim_crm_tickets_emails_and_every_journey(
    db: firestore.Client, seeded: dict[str, Any], captured: list[Any]
) -> None:
    view = queries.customer(db, "u-ada", {"pro": True})
    assert view["billing"]["status"] == "active" and view["claims"] == {"pro": True}
    assert view["crm"].state == "done" and view["crm"].provider_ids == ["901"]
    assert [t["reference"] for t in view["tickets"]] == ["SR-ABC123"]
    assert [e["resend_id"] for e in view["emails"]] == ["re_123"]
    assert {j.correlation_id for j in view["journeys"]} == {
        seeded["paid"]["correlation_id"],
        seeded["support"]["correlation_id"],
    }
    assert_indexed(captured)


def test_needs_a_human_lists_dead_letters_failures_unmatched_and_disputes(
    db: firestore.Client, seeded: dict[str, Any], captured: list[Any]
) -> None:
    found = queries.attention(db)
    assert [d["_id"] for d in found["dead_letters"]] == [seeded["problems"]["record_id"]]
    assert [f["code"] for f in found["sync_failures"]] == ["validation_error"]
    assert [u["customer"] for u in found["unmatched_events"]] == ["cus_nobody"]
    assert [d["event_id"] for d in found["disputes"]] == ["stripe:evt_dispute"]
    assert found["replayed"] == []
    assert_indexed(captured)


def test_health_counts_runs_error_rate_p95_lag_and_dead_letter_backlog(
    db: firestore.Client, seeded: dict[str, Any], captured: list[Any]
) -> None:
    found = queries.health(db)
    crm = next(f for f in found["functions"] if f["name"] == "crm_worker")
    assert (crm["runs"], crm["failed"]) == (5, 1)
    assert crm["error_rate"] == pytest.approx(0.2)
    assert crm["p95_ms"] == "250"  # 8, 40, 90, 120, 200 ms: the 95th percentile is in the <=250 bucket
    assert crm["last_success_at"] and crm["last_failure_at"] and "503" in crm["last_error"]
    assert next(f for f in found["functions"] if f["name"] == "ops_console")["runs"] == 0
    sync = found["payment_sync"]
    assert (sync["count"], sync["p95_bucket_seconds"], sync["latest_seconds"], sync["max_seconds"]) == (
        1,
        "5",
        4.5,
        4.5,
    )
    assert not sync["over_threshold"]
    assert found["dead_letters"] == {"billing-events": 0, "crm-sync": 1, "support": 0, "notifications": 0}
    assert_indexed(captured)


@pytest.mark.parametrize(
    ("histogram", "expected"),
    [
        ({}, None),
        ({"10": 100}, "10"),
        ({"10": 94, "5000": 6}, "5000"),
        ({"10": 95, "5000": 5}, "10"),
        ({"inf": 1}, "inf"),
    ],
)
def test_p95_is_the_upper_bound_of_its_bucket(histogram: dict[str, int], expected: str | None) -> None:
    assert queries.percentile_bucket(histogram, 0.95) == expected
    assert expected is None or expected == "inf" or int(expected) in LATENCY_BUCKETS_MS


def test_the_index_check_catches_a_missing_index(db: firestore.Client, captured: list[Any]) -> None:
    list(
        db.collection("events")
        .where(filter=firestore.FieldFilter("source", "==", "x"))
        .order_by("claimed_at")
        .stream()
    )
    with pytest.raises(AssertionError, match="without a declared composite index"):
        assert_indexed(captured)


def test_the_overview_is_health_attention_and_the_timeline_read_concurrently(
    db: firestore.Client, seeded: dict[str, Any], captured: list[Any]
) -> None:
    found = queries.overview(db)
    assert found["health"] == queries.health(db)
    assert found["attention"] == queries.attention(db)
    assert [j.correlation_id for j in found["journeys"]] == [j.correlation_id for j in queries.timeline(db)]
    assert captured == []  # every read is by document id


@pytest.fixture(autouse=True)
def fresh_instance_cache() -> None:
    queries._SETTLED.clear()  # each test starts like a new instance


def test_hours_that_are_over_are_read_once_per_instance_and_the_current_hour_every_time(
    db: firestore.Client,
) -> None:
    now = datetime.now(UTC)
    old, current = now - timedelta(hours=3), now
    for at_hour in (old, current):
        runs.record_run("crm_worker", runs.OK, 10.0, at=at_hour)
    assert _crm_runs(db) == 2
    for at_hour in (old, current):
        runs.record_run("crm_worker", runs.OK, 10.0, at=at_hour)
    assert _crm_runs(db) == 3  # the settled hour as first read, the current hour as it is now


def _crm_runs(db: firestore.Client) -> int:
    return next(f["runs"] for f in queries.health(db)["functions"] if f["name"] == "crm_worker")
