"""A user's entitlements from the current state of each of their payment sources: `entitled(states, now)`
is a pure function, and `stripe_state(subscription, ...)` applies Stripe's status table to a re-read
subscription. A user is entitled while any source's state grants access, whatever the source
(docs/architecture.md, "Entitlements").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import Any

from launchready.domain.billing_state import subscription_period_end
from launchready.domain.source_state import Source, SourceState

STRIPE_STATUS_DOC = "https://docs.stripe.com/api/subscriptions/object#subscription_object-status"


class Access(Enum):
    GRANTS = "grants"
    GRACE = "grace"  # grants while the payment problem is younger than the configured grace
    NONE = "none"


# Stripe's subscription statuses (STRIPE_STATUS_DOC; the same text in stripe-python 16.1.0
# `_subscription.py`, `status`): `active` and `trialing` are paid or in a trial; `past_due` means a
# renewal payment failed and Stripe is still retrying, so access lasts for a configured grace; `incomplete`
# (first payment not made), `incomplete_expired` (terminal), `unpaid` (retries exhausted, invoices stay
# open), `canceled` and `paused` (no invoices, no new period) give none. A status missing here (one a later
# API version adds) gives none until it is added to this table.
STRIPE_ACCESS: dict[str, Access] = {
    "active": Access.GRANTS,
    "trialing": Access.GRANTS,
    "past_due": Access.GRACE,
    "incomplete": Access.NONE,
    "incomplete_expired": Access.NONE,
    "unpaid": Access.NONE,
    "canceled": Access.NONE,
    "paused": Access.NONE,
}


def _timestamp(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _period_start(subscription: Mapping[str, Any]) -> int | None:
    """When the current period began: the latest `current_period_start` of the items (on the item since
    2025-03-31.basil, https://docs.stripe.com/api/subscription_items/object), else the subscription's own
    (earlier API versions)."""
    items = (subscription.get("items") or {}).get("data") or []
    starts = [item.get("current_period_start") for item in items]
    ints = [start for start in starts if isinstance(start, int) and not isinstance(start, bool)]
    legacy = subscription.get("current_period_start")
    return max(ints) if ints else legacy if isinstance(legacy, int) else None


def stripe_state(subscription: Mapping[str, Any], *, confirmed_at: datetime,
                 past_due_grace: timedelta) -> SourceState:
    """The SourceState of one Stripe subscription object as retrieved now (GET /v1/subscriptions,
    https://docs.stripe.com/api/subscriptions/list). `past_due` grants access until `past_due_grace` after
    the current period began: Stripe moves a subscription to `past_due` when the invoice that opened the
    period fails (https://docs.stripe.com/billing/subscriptions/overview#payment-status), so the period
    start is when the payment problem began. `sandbox` is the object's `livemode` negated (test mode and
    Stripe sandboxes). Raises KeyError without `id` or `status`."""
    status = str(subscription["status"])
    access = STRIPE_ACCESS.get(status, Access.NONE)
    if access is Access.GRACE:
        began = _timestamp(_period_start(subscription))
        grants = began is not None and confirmed_at < began + past_due_grace
    else:
        grants = access is Access.GRANTS
    period_end = subscription_period_end(subscription)
    return SourceState(source="stripe", reference=str(subscription["id"]), status=status,
                       grants_access=grants, sandbox=not bool(subscription.get("livemode")),
                       period_end=_timestamp(period_end), confirmed_at=confirmed_at)


@dataclass(frozen=True)
class Entitlements:
    """What a user may use and how they stand as a customer, from all their SourceStates.

    pro: some state grants access. status: the deciding state's own status (its source's word, verbatim),
    "none" without any state. source, reference: the deciding state, None without any. period_end: the
    latest `period_end` among the states that grant access (the `pro_until` the app may show), else the
    deciding state's. paying: some state that grants access is not a sandbox one; only these count as
    revenue, in the CRM stage and in the digest. confirmed_at: the oldest `confirmed_at` among the
    states (how fresh the whole answer is), None without any.
    """

    pro: bool
    status: str
    source: Source | None
    reference: str | None
    period_end: datetime | None
    paying: bool
    confirmed_at: datetime | None


NO_ENTITLEMENTS = Entitlements(pro=False, status="none", source=None, reference=None, period_end=None,
                               paying=False, confirmed_at=None)


def _rank(state: SourceState) -> tuple[bool, bool, datetime, datetime, str]:
    """The deciding state is the one that grants access (a live one before a sandbox one), then the one
    whose period ends last, then the one read last; the reference breaks the last tie, so the answer
    never depends on the order the provider listed them in."""
    floor = datetime.min.replace(tzinfo=UTC)
    return (state.grants_access, not state.sandbox, state.period_end or floor, state.confirmed_at,
            state.reference)


def entitled(states: Iterable[SourceState]) -> Entitlements:
    """The user's entitlements from the current state of every source they bought through (any mix of
    Stripe, App Store and Google Play). No I/O."""
    states = list(states)
    if not states:
        return NO_ENTITLEMENTS
    deciding = max(states, key=_rank)
    granting = [state.period_end for state in states if state.grants_access and state.period_end]
    return Entitlements(
        pro=deciding.grants_access,
        status=deciding.status,
        source=deciding.source,
        reference=deciding.reference,
        period_end=max(granting) if granting else deciding.period_end,
        paying=any(state.grants_access and not state.sandbox for state in states),
        confirmed_at=min(state.confirmed_at for state in states),
    )
