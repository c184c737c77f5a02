"""Google Play subscription purchases as the sandbox holds them, and the transitions a customer, Play or
the developer makes, each naming the real-time developer notification Play publishes.

A purchase's state, its paid period and its access end always agree (docs/tools.md).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .store import ControlError

RECOVERED, RENEWED, CANCELED, PURCHASED, ON_HOLD, IN_GRACE_PERIOD, RESTARTED = 1, 2, 3, 4, 5, 6, 7
PAUSED, REVOKED, EXPIRED = 10, 12, 13
FULL_REFUND, PARTIAL_REFUND = 1, 2
DAY_MS = 86_400_000
ACK_WINDOW_MS = 3 * DAY_MS
KIND = "androidpublisher#subscriptionPurchaseV2"
# Live states (SUBSCRIPTION_STATE_*) a renewal attempt or a cancellation applies to.
_LIVE = ("ACTIVE", "IN_GRACE_PERIOD", "ON_HOLD", "PAUSED")


def rfc3339(ms: int) -> str:
    """Google's Timestamp JSON form: UTC, `Z`, millisecond precision."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@dataclass(frozen=True)
class Event:
    """What a transition publishes: a subscriptionNotification type and/or a voided purchase's refundType."""

    notification_type: int | None = None
    refund_type: int | None = None


@dataclass
class Purchase:
    token: str
    package_name: str
    product_id: str
    base_plan_id: str
    start: int
    period_ms: int
    paid_until: int
    expiry: int
    price_micros: int
    currency: str
    region_code: str
    test: bool
    account_id: str | None
    profile_id: str | None
    first_order: str
    state: str = "ACTIVE"
    acknowledged: bool = False
    auto_renew: bool = True
    renewals: int = 0
    restorable: bool = True
    cancellation: dict[str, Any] | None = None  # canceledStateContext
    pause_until: int | None = None
    revoked: bool = False
    refunded: bool = False

    @property
    def order_id(self) -> str:
        """The latest successful order: renewal orders carry the first order's id with ..0, ..1, ... ."""
        return self.first_order if self.renewals == 0 else f"{self.first_order}..{self.renewals - 1}"

    def resource(self) -> dict[str, Any]:
        """The purchase as purchases.subscriptionsv2.get answers it (SubscriptionPurchaseV2)."""
        units, micros = divmod(self.price_micros, 1_000_000)
        body: dict[str, Any] = {
            "kind": KIND,
            "regionCode": self.region_code,
            "startTime": rfc3339(self.start),
            "subscriptionState": f"SUBSCRIPTION_STATE_{self.state}",
            "acknowledgementState": "ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED" if self.acknowledged
            else "ACKNOWLEDGEMENT_STATE_PENDING",
            "lineItems": [{
                "productId": self.product_id,
                "expiryTime": rfc3339(self.expiry),
                "autoRenewingPlan": {
                    "autoRenewEnabled": self.auto_renew,
                    "recurringPrice": {"currencyCode": self.currency, "units": str(units),
                                       "nanos": micros * 1000},
                },
                "offerDetails": {"basePlanId": self.base_plan_id},
                "latestSuccessfulOrderId": self.order_id,
            }],
        }
        ids = {"obfuscatedExternalAccountId": self.account_id, "obfuscatedExternalProfileId": self.profile_id}
        if any(ids.values()):
            body["externalAccountIdentifiers"] = {name: value for name, value in ids.items() if value}
        if self.test:
            body["testPurchase"] = {}  # "Only present if this subscription purchase is a test purchase."
        if self.cancellation is not None and self.state in ("CANCELED", "EXPIRED"):
            body["canceledStateContext"] = self.cancellation
        if self.state == "PAUSED" and self.pause_until is not None:
            body["pausedStateContext"] = {"autoResumeTime": rfc3339(self.pause_until)}
        body["etag"] = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        return body

    def view(self) -> dict[str, Any]:
        return {"purchaseToken": self.token, "packageName": self.package_name, **self.resource()}


def _token() -> str:
    letters = "".join(secrets.choice(string.ascii_lowercase) for _ in range(24))
    return f"{letters}.AO-J1O{secrets.token_urlsafe(96)}"


def _order() -> str:
    digits = "".join(secrets.choice(string.digits) for _ in range(19))
    return f"GPA.{digits[:4]}-{digits[4:8]}-{digits[8:12]}-{digits[12:]}"


class Ledger:
    """Every purchase the sandbox's Google Play holds, by purchase token."""

    def __init__(self) -> None:
        self.by_token: dict[str, Purchase] = {}

    def find(self, token: str, now: int) -> Purchase | None:
        purchase = self.by_token.get(token)
        if purchase is not None:
            self.settle(purchase, now)
        return purchase

    @staticmethod
    def settle(purchase: Purchase, now: int) -> None:
        """Play refunds and revokes a purchase still unacknowledged three days after it began."""
        deadline = purchase.start + ACK_WINDOW_MS
        if not purchase.acknowledged and purchase.state != "EXPIRED" and now >= deadline:
            purchase.state, purchase.auto_renew = "EXPIRED", False
            purchase.revoked = purchase.refunded = True
            purchase.expiry = purchase.paid_until = min(purchase.expiry, deadline)
            purchase.cancellation = {"systemInitiatedCancellation": {}}

    def purchase(self, *, package_name: str, product_id: str, base_plan_id: str, period_days: int,
                 price_micros: int, currency: str, region_code: str, test: bool, account_id: str | None,
                 profile_id: str | None, now: int) -> tuple[Purchase, Event]:
        period = period_days * DAY_MS
        purchase = Purchase(token=_token(), package_name=package_name, product_id=product_id,
                            base_plan_id=base_plan_id, start=now, period_ms=period, paid_until=now + period,
                            expiry=now + period, price_micros=price_micros, currency=currency,
                            region_code=region_code, test=test, account_id=account_id, profile_id=profile_id,
                            first_order=_order())
        self.by_token[purchase.token] = purchase
        return purchase, Event(PURCHASED)

    @staticmethod
    def _require(purchase: Purchase, *states: str, auto_renew: bool = False) -> None:
        if purchase.state not in states or (auto_renew and not purchase.auto_renew):
            condition = " with auto-renew on" if auto_renew else ""
            renewing = "on" if purchase.auto_renew else "off"
            raise ControlError(409, f"state {purchase.state} (auto-renew {renewing}): this happens only in "
                                    f"{', '.join(states)}{condition}")

    def renew(self, purchase: Purchase, now: int) -> Event:
        """A successful charge: RENEWED, or RECOVERED out of account hold. In time (active or in grace) the
        next period follows the paid one; after hold or pause it starts now."""
        self._require(purchase, *_LIVE, auto_renew=True)
        recovered = purchase.state == "ON_HOLD"
        start = purchase.paid_until if purchase.state in ("ACTIVE", "IN_GRACE_PERIOD") else now
        purchase.paid_until = purchase.expiry = start + purchase.period_ms
        purchase.state, purchase.renewals, purchase.pause_until = "ACTIVE", purchase.renewals + 1, None
        return Event(RECOVERED if recovered else RENEWED)

    def enter_grace_period(self, purchase: Purchase, now: int, grace_days: int) -> Event:
        """The renewal charge failed and the base plan has a grace period: access continues to its end."""
        self._require(purchase, "ACTIVE", auto_renew=True)
        purchase.paid_until = min(purchase.paid_until, now)
        purchase.expiry = purchase.paid_until + grace_days * DAY_MS
        purchase.state = "IN_GRACE_PERIOD"
        return Event(IN_GRACE_PERIOD)

    def enter_on_hold(self, purchase: Purchase, now: int) -> Event:
        """Payment still failing (after the grace period, if any): account hold, no access."""
        self._require(purchase, "ACTIVE", "IN_GRACE_PERIOD", auto_renew=True)
        purchase.paid_until = purchase.expiry = min(purchase.paid_until, now)
        purchase.state = "ON_HOLD"
        return Event(ON_HOLD)

    def pause(self, purchase: Purchase, now: int, days: int) -> Event:
        """The customer paused the subscription (played as starting now): no access until it resumes."""
        self._require(purchase, "ACTIVE", auto_renew=True)
        purchase.paid_until = purchase.expiry = min(purchase.paid_until, now)
        purchase.state, purchase.pause_until = "PAUSED", now + days * DAY_MS
        return Event(PAUSED)

    def cancel(self, purchase: Purchase, now: int, *, by_developer: bool, restorable: bool) -> Event:
        """Auto-renew stops; access continues to the paid period's end (CANCELED)."""
        self._require(purchase, "ACTIVE", "IN_GRACE_PERIOD")
        purchase.state, purchase.auto_renew, purchase.restorable = "CANCELED", False, restorable
        purchase.cancellation = ({"developerInitiatedCancellation": {}} if by_developer
                                 else {"userInitiatedCancellation": {"cancelTime": rfc3339(now)}})
        return Event(CANCELED)

    def restore(self, purchase: Purchase, now: int) -> Event:
        """The customer resubscribes before the period ends (RESTARTED)."""
        self._require(purchase, "CANCELED")
        if not purchase.restorable or now >= purchase.expiry:
            raise ControlError(409, "this cancellation cannot be restored (the developer stopped payments, "
                                    "or the period has ended)")
        purchase.state, purchase.auto_renew, purchase.cancellation = "ACTIVE", True, None
        return Event(RESTARTED)

    def expire(self, purchase: Purchase, now: int) -> Event:
        """Access ends for good: a canceled period ran out, or hold, pause or grace ended unpaid (EXPIRED)."""
        self._require(purchase, "CANCELED", "IN_GRACE_PERIOD", "ON_HOLD", "PAUSED")
        purchase.paid_until = purchase.expiry = min(purchase.expiry, now)
        purchase.state, purchase.auto_renew, purchase.pause_until = "EXPIRED", False, None
        return Event(EXPIRED)

    def refund(self, purchase: Purchase, now: int, *, refund_type: int, revoke: bool) -> Event:
        """A refund of the latest order (a voided purchase); with `revoke`, a live entitlement also ends now
        (REVOKED)."""
        if purchase.refunded:
            raise ControlError(409, "the latest order is already refunded")
        purchase.refunded = True
        if not revoke or purchase.state == "EXPIRED":
            return Event(refund_type=refund_type)
        purchase.paid_until = purchase.expiry = min(purchase.expiry, now)
        purchase.state, purchase.auto_renew, purchase.revoked = "EXPIRED", False, True
        purchase.cancellation = purchase.cancellation or {"developerInitiatedCancellation": {}}
        return Event(REVOKED, refund_type)
