"""Run statistics for the ops console: per function and hour, outcome counts, a latency histogram and the
last success and failure, sharded over `function_stats/{function}_{YYYYMMDDHH}_{shard}`; the payment
sync lag likewise in `payment_sync_stats/`.

Recording never fails the function it measures (docs/architecture.md, "Run statistics").
"""

import random
from datetime import UTC, datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore_v1.transforms import Maximum

from launchready.platform import log
from launchready.platform.clients import db

FUNCTION_STATS = "function_stats"
SHARDS = 4
# Upper bounds in milliseconds; a latency above the last lands in "inf".
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
OK, FAILED = "ok", "failed"


def bucket_of(latency_ms: float) -> str:
    for bound in LATENCY_BUCKETS_MS:
        if latency_ms <= bound:
            return str(bound)
    return "inf"


def hour_of(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def record_run(
    function: str, outcome: str, latency_ms: float, error: str | None = None, at: datetime | None = None
) -> None:
    """Count one run of `function`: outcome "ok" or "failed", its latency, and the error of a failure."""
    at = at or datetime.now(UTC)
    hour = hour_of(at)
    doc_id = f"{function}_{hour:%Y%m%d%H}_{random.randrange(SHARDS)}"
    fields: dict[str, Any] = {
        "function": function,
        "hour": hour,
        outcome: firestore.Increment(1),
        "latency_ms": {bucket_of(latency_ms): firestore.Increment(1)},
    }
    if outcome == OK:
        fields["last_success_at"] = at
    else:
        fields.update(last_failure_at=at, last_error=(error or "")[:300])
    try:
        db().collection(FUNCTION_STATS).document(doc_id).set(fields, merge=True)
    except Exception as exc:  # statistics are best effort; the run's own outcome stands
        log.warning("run statistics not recorded", error=repr(exc))


PAYMENT_SYNC_STATS = "payment_sync_stats"
# The buckets of the payment sync lag alert's distribution metric (components/monitoring.py), so the
# console's p95 lines up with the alert's 300 s threshold.
PAYMENT_SYNC_LAG_BOUNDS_S = (1, 5, 10, 30, 60, 120, 180, 240, 300, 600, 900, 1800, 3600, 21600, 86400)


def lag_bucket_of(seconds: float) -> str:
    for bound in PAYMENT_SYNC_LAG_BOUNDS_S:
        if seconds <= bound:
            return str(bound)
    return "inf"


def record_payment_sync_lag(lag_seconds: float, at: datetime | None = None) -> None:
    """Count one payment's Stripe-to-CRM lag in `payment_sync_stats/{YYYYMMDDHH}_{shard}` (best effort)."""
    at = at or datetime.now(UTC)
    hour = hour_of(at)
    try:
        db().collection(PAYMENT_SYNC_STATS).document(f"{hour:%Y%m%d%H}_{random.randrange(SHARDS)}").set({
            "hour": hour, "count": firestore.Increment(1), "max_seconds": Maximum(lag_seconds),
            "lag_seconds": {lag_bucket_of(lag_seconds): firestore.Increment(1)},
            "last_seconds": lag_seconds, "last_at": at}, merge=True)
    except Exception as exc:
        log.warning("payment sync statistics not recorded", error=repr(exc))
