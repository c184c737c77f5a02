"""`ops_digest`: the daily summary for ops (sync failures, dead letters, unmatched events, payment sync
lag over the last 24 hours), called by Cloud Scheduler with an OIDC token.

Stored in `ops_digests/{date}` on every run; emailed once per day (the email is a ledger step keyed by
the date).
"""

import html
import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import flask
from google.cloud import firestore

from launchready.domain import steps
from launchready.platform.clients import db
from launchready.platform.config import settings
from launchready.platform.ledger import Ledger
from launchready.platform.web import endpoint, json_response
from launchready.providers.resend_queue import queue_email
from launchready.records.ops import DEAD_LETTERS, SYNC_FAILURES, UNMATCHED_EVENTS

FUNCTION = "ops_digest"
OPS_DIGESTS = "ops_digests"
PAYMENT_SYNC = "payment_sync"
WINDOW = timedelta(hours=24)
TOP_CODES = 5
# Enough for any day a small team can act on; the digest says when it stopped counting.
MAX_DOCUMENTS_PER_SECTION = 5000


def now() -> datetime:
    return datetime.now(UTC)


@endpoint(FUNCTION, methods=("POST",))
def ops_digest(request: flask.Request) -> flask.Response:
    generated_at = now()
    summary = build_summary(db(), generated_at - WINDOW, generated_at)
    date = generated_at.date().isoformat()
    db().collection(OPS_DIGESTS).document(date).set(
        {**summary, "runs": firestore.Increment(1), "last_run_at": generated_at}, merge=True)
    result = Ledger().run_step(f"ops-digest:{date}", steps.DIGEST_EMAIL,
                               lambda: queue_digest_email(date, summary))
    return json_response({"date": date, "email_key": result["key"], **summary})


def queue_digest_email(date: str, summary: dict[str, Any]) -> dict[str, Any]:
    key = f"ops-digest:{date}"
    subject, text, body_html = render(date, summary)
    queue_email(key=key, to=settings().ops_email, subject=subject, text=text, html=body_html,
                tags={"category": "ops_digest"})
    return {"key": key}


# ---- collecting --------------------------------------------------------------------------------


def _recent(client: firestore.Client, collection: str, field: str, since: datetime,
            until: datetime) -> tuple[list[dict[str, Any]], bool]:
    """Documents whose `field` falls in [since, until); and whether the cap cut the list short."""
    query = (client.collection(collection).where(filter=firestore.FieldFilter(field, ">=", since))
             .where(filter=firestore.FieldFilter(field, "<", until)).limit(MAX_DOCUMENTS_PER_SECTION + 1))
    documents = [snapshot.to_dict() or {} for snapshot in query.stream()]
    return documents[:MAX_DOCUMENTS_PER_SECTION], len(documents) > MAX_DOCUMENTS_PER_SECTION


def percentile(values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile (the value at least `fraction` of the samples do not exceed)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def _counts(values: Iterable[Any], limit: int | None = None) -> list[dict[str, Any]]:
    counter = Counter(str(value or "unknown") for value in values)
    return [{"name": name, "count": count}
            for name, count in sorted(counter.items(), key=lambda item: (-item[1], item[0]))[:limit]]


def build_summary(client: firestore.Client, since: datetime, until: datetime) -> dict[str, Any]:
    failures, failures_capped = _recent(client, SYNC_FAILURES, "recorded_at", since, until)
    dead, dead_capped = _recent(client, DEAD_LETTERS, "recorded_at", since, until)
    unmatched, unmatched_capped = _recent(client, UNMATCHED_EVENTS, "recorded_at", since, until)
    synced, synced_capped = _recent(client, PAYMENT_SYNC, "synced_at", since, until)
    lags = [float(doc["lag_seconds"]) for doc in synced if isinstance(doc.get("lag_seconds"), int | float)]
    return {
        "window": {"start": since.isoformat(), "end": until.isoformat()},
        "environment": settings().environment,
        "sync_failures": {"count": len(failures), "top_codes": _counts((d.get("code") for d in failures),
                                                                       TOP_CODES),
                          "by_function": _counts(d.get("function") for d in failures),
                          "capped": failures_capped},
        "dead_letters": {"count": len(dead), "by_function": _counts(d.get("function") for d in dead),
                         "capped": dead_capped},
        "unmatched_events": {"count": len(unmatched),
                             "by_type": _counts(d.get("event_type") for d in unmatched),
                             "capped": unmatched_capped},
        "payment_sync": {"count": len(lags), "p50_seconds": percentile(lags, 0.50),
                         "p95_seconds": percentile(lags, 0.95), "max_seconds": max(lags) if lags else None,
                         "capped": synced_capped},
    }


# ---- rendering ---------------------------------------------------------------------------------


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


def _breakdown(items: list[dict[str, Any]]) -> str:
    return ", ".join(f"{item['name']} ({item['count']})" for item in items) or "none"


def _lines(summary: dict[str, Any]) -> list[tuple[str, str]]:
    failures, dead = summary["sync_failures"], summary["dead_letters"]
    unmatched, lag = summary["unmatched_events"], summary["payment_sync"]

    def count(section: dict[str, Any]) -> str:
        return f"{section['count']}{'+' if section['capped'] else ''}"

    return [
        ("Sync failures", f"{count(failures)} (top codes: {_breakdown(failures['top_codes'])})"),
        ("Dead-lettered messages", f"{count(dead)} (by function: {_breakdown(dead['by_function'])})"),
        ("Unmatched Stripe events", f"{count(unmatched)} (by type: {_breakdown(unmatched['by_type'])})"),
        ("Payment sync lag", f"{lag['count']} payments, p50 {_seconds(lag['p50_seconds'])}, "
                             f"p95 {_seconds(lag['p95_seconds'])}, max {_seconds(lag['max_seconds'])}"),
    ]


def needs_attention(summary: dict[str, Any]) -> bool:
    return any(summary[section]["count"] for section in ("sync_failures", "dead_letters", "unmatched_events"))


def render(date: str, summary: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) of the digest email."""
    state = "needs attention" if needs_attention(summary) else "all clear"
    subject = f"[launchready {summary['environment']}] Ops digest {date}: {state}"
    lines = _lines(summary)
    window = f"{summary['window']['start']} to {summary['window']['end']}"
    text = (f"Ops digest for the 24 hours from {window}.\n\n"
            + "".join(f"{label}: {value}\n" for label, value in lines)
            + f"\nDead letters can be replayed with: {replay_hint()}\n")
    rows = "".join(f'<tr><th align="left">{html.escape(label)}</th><td>{html.escape(value)}</td></tr>'
                   for label, value in lines)
    body = ('<!doctype html>\n<html><body style="font-family:Arial,Helvetica,sans-serif;font-size:14px">\n'
            f"<p>Ops digest for the 24 hours from {html.escape(window)}: <strong>{html.escape(state)}"
            f'</strong>.</p>\n<table cellpadding="4">{rows}</table>\n'
            "<p>Dead letters can be replayed with "
            f"<code>{html.escape(replay_hint())}</code>.</p>\n</body></html>")
    return subject, text, body


def replay_hint() -> str:
    """The command an operator runs (from a clone of this repository) to replay dead letters."""
    return f"make replay-dlq TOPIC=<topic> PROJECT={settings().project_id}"
