"""Entitlements from each source's current state: Stripe's status table applied to subscription objects
in the shape the sandbox's Stripe serves (held to Stripe's OpenAPI document), and the source-agnostic
rule "entitled while any source grants access"."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from launchready.domain.entitlements import (
    NO_ENTITLEMENTS,
    STRIPE_ACCESS,
    Access,
    entitled,
    stripe_state,
)
from launchready.domain.source_state import SourceState

from tools.sandbox.providers import stripe_objects

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = 86_400
GRACE = timedelta(days=7)
# Every value of the status enum in stripe-python 16.1.0 (`Subscription.status`, 2026-10-28.endive).
STRIPE_STATUSES = ("incomplete", "incomplete_expired", "trialing", "active", "past_due", "canceled",
                   "unpaid", "paused")


def stripe_subscription(status: str, *, period_start: int | None = None, livemode: bool = False,
                        sub_id: str = "sub_1", period_days: int = 30) -> dict[str, Any]:
    start = period_start if period_start is not None else int(NOW.timestamp()) - DAY
    item = stripe_objects.subscription_item(sub_id, "price_pro", quantity=1, created=start, start=start,
                                            end=start + period_days * DAY, livemode=livemode)
    subscription = stripe_objects.subscription(sub_id, customer_id="cus_1", items=[item], created=start,
                                               livemode=livemode, trial_end=None, metadata={})
    return {**subscription, "status": status}


def state(status: str, *, grants: bool, source: str = "stripe", reference: str = "ref",
          sandbox: bool = False, period_end: datetime | None = None,
          confirmed_at: datetime = NOW) -> SourceState:
    return SourceState(source=source, reference=reference, status=status,  # type: ignore[arg-type]
                       grants_access=grants, sandbox=sandbox, period_end=period_end,
                       confirmed_at=confirmed_at)


# ---- Stripe's table ----------------------------------------------------------------------------


def test_the_table_names_every_status_stripe_python_knows() -> None:
    import typing

    from stripe import Subscription

    # Union[Literal[...the documented values...], str]: the SDK admits values it does not know yet.
    documented, _ = typing.get_args(Subscription.__annotations__["status"])
    assert set(typing.get_args(documented)) == set(STRIPE_STATUSES) == set(STRIPE_ACCESS)


@pytest.mark.parametrize(("status", "grants"), [
    ("active", True), ("trialing", True), ("past_due", True), ("incomplete", False),
    ("incomplete_expired", False), ("unpaid", False), ("canceled", False), ("paused", False)])
def test_each_status_grants_as_stripe_defines_it(status: str, grants: bool) -> None:
    current = stripe_state(stripe_subscription(status), confirmed_at=NOW, past_due_grace=GRACE)
    assert current.grants_access is grants
    assert current.status == status and current.source == "stripe" and current.reference == "sub_1"


def test_past_due_grants_only_within_the_grace_after_the_period_began() -> None:
    began = int(NOW.timestamp())
    inside = stripe_subscription("past_due", period_start=began - 6 * DAY)
    outside = stripe_subscription("past_due", period_start=began - 8 * DAY)
    assert stripe_state(inside, confirmed_at=NOW, past_due_grace=GRACE).grants_access
    assert not stripe_state(outside, confirmed_at=NOW, past_due_grace=GRACE).grants_access
    assert not stripe_state(inside, confirmed_at=NOW, past_due_grace=timedelta(0)).grants_access


def test_a_status_the_table_does_not_know_grants_nothing() -> None:
    current = stripe_state(stripe_subscription("some_future_status"), confirmed_at=NOW, past_due_grace=GRACE)
    assert current.grants_access is False and current.status == "some_future_status"
    assert STRIPE_ACCESS.get("some_future_status", Access.NONE) is Access.NONE


def test_period_end_comes_from_the_items_and_test_mode_is_a_sandbox() -> None:
    start = int(NOW.timestamp()) - DAY
    test_mode = stripe_state(stripe_subscription("active", period_start=start), confirmed_at=NOW,
                             past_due_grace=GRACE)
    live = stripe_state(stripe_subscription("active", period_start=start, livemode=True), confirmed_at=NOW,
                        past_due_grace=GRACE)
    assert test_mode.period_end == datetime.fromtimestamp(start + 30 * DAY, UTC)
    assert test_mode.sandbox is True and live.sandbox is False
    assert live.confirmed_at == NOW


# ---- any source --------------------------------------------------------------------------------


def test_no_source_no_entitlements() -> None:
    assert entitled([]) == NO_ENTITLEMENTS


def test_one_granting_source_among_ended_ones_entitles() -> None:
    """An old subscription's end never revokes the one that is active (the kind of
    invertase/stripe-firebase-extensions#177), whatever the order the states come in."""
    ended = state("canceled", grants=False, reference="sub_old", period_end=NOW - timedelta(days=40))
    active = state("active", grants=True, reference="sub_new", period_end=NOW + timedelta(days=20))
    for states in ([ended, active], [active, ended]):
        result = entitled(states)
        assert result.pro and result.status == "active" and result.reference == "sub_new"
        assert result.paying and result.period_end == NOW + timedelta(days=20)


def test_sources_mix_and_the_latest_granting_period_end_is_pro_until() -> None:
    stripe = state("active", grants=True, reference="sub_1", period_end=NOW + timedelta(days=3))
    store = state("4", grants=True, source="app_store", reference="2000000",
                  period_end=NOW + timedelta(days=9))
    result = entitled([stripe, store])
    assert result.pro and result.period_end == NOW + timedelta(days=9)
    assert (result.source, result.reference) == ("app_store", "2000000")


def test_a_sandbox_purchase_grants_access_but_is_not_paying() -> None:
    tester = state("active", grants=True, source="google_play", sandbox=True,
                   period_end=NOW + timedelta(days=1))
    result = entitled([tester])
    assert result.pro is True and result.paying is False


def test_a_live_granting_state_decides_over_a_sandbox_one() -> None:
    tester = state("active", grants=True, reference="tester", sandbox=True,
                   period_end=NOW + timedelta(days=30))
    live = state("active", grants=True, reference="live", period_end=NOW + timedelta(days=2))
    result = entitled([tester, live])
    assert result.reference == "live" and result.paying is True


def test_nothing_granting_reports_the_latest_ended_state_and_the_oldest_confirmation() -> None:
    older = state("canceled", grants=False, reference="a", period_end=NOW - timedelta(days=60),
                  confirmed_at=NOW - timedelta(hours=1))
    newer = state("unpaid", grants=False, reference="b", period_end=NOW - timedelta(days=5))
    result = entitled([newer, older])
    assert not result.pro and not result.paying
    assert (result.status, result.reference) == ("unpaid", "b")
    assert result.period_end == NOW - timedelta(days=5)
    assert result.confirmed_at == NOW - timedelta(hours=1)
