"""The App Store's auto-renewable subscriptions as the sandbox holds them, and the transitions a customer
or the App Store makes, each naming the notification Apple sends.

The status, the latest transaction and the renewal info always agree (docs/tools.md).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from .store import ControlError

ACTIVE, EXPIRED, BILLING_RETRY, GRACE_PERIOD, REVOKED = 1, 2, 3, 4, 5
STATUSES = (ACTIVE, EXPIRED, BILLING_RETRY, GRACE_PERIOD, REVOKED)
ENVIRONMENTS = ("Sandbox", "Production")
DAY_MS = 86_400_000
# ExpirationIntent (appstoreserverlibrary/models/ExpirationIntent.py): 1 customer canceled, 2 billing error.
CUSTOMER_CANCELED, BILLING_ERROR = 1, 2
# Storefront of the sandbox's purchases (https://developer.apple.com/documentation/appstoreserverapi/storefront).
STOREFRONT, STOREFRONT_ID = "USA", "143441"


@dataclass(frozen=True)
class Change:
    """What a transition did, as the notification Apple sends about it: `notificationType` and `subtype`."""

    notification_type: str
    subtype: str | None = None


@dataclass
class Subscription:
    original_transaction_id: str
    environment: str
    bundle_id: str
    customer: str
    group: str
    product_id: str
    app_account_token: str | None
    ownership: str  # InAppOwnershipType: PURCHASED or FAMILY_SHARED
    period_ms: int
    price: int  # milliunits of `currency` (https://developer.apple.com/documentation/appstoreserverapi/price)
    currency: str
    app_transaction_id: str
    started: int  # recentSubscriptionStartDate: the start of the current run of paid periods
    transactions: list[dict[str, Any]] = field(default_factory=list)  # newest last, unsigned
    status: int = ACTIVE
    auto_renew: bool = True
    grace_period_expires: int | None = None
    expiration_intent: int | None = None

    @property
    def latest(self) -> dict[str, Any]:
        return self.transactions[-1]

    def transaction_payload(self, signed_date: int) -> dict[str, Any]:
        """The latest transaction as a JWSTransactionDecodedPayload (signed at `signed_date`)."""
        return {**self.latest, "signedDate": signed_date}

    def renewal_payload(self, signed_date: int) -> dict[str, Any]:
        """The renewal info as a JWSRenewalInfoDecodedPayload (signed at `signed_date`)."""
        payload: dict[str, Any] = {
            "originalTransactionId": self.original_transaction_id,
            "autoRenewProductId": self.product_id,
            "productId": self.product_id,
            "autoRenewStatus": int(self.auto_renew),
            "isInBillingRetryPeriod": self.status in (BILLING_RETRY, GRACE_PERIOD),
            "signedDate": signed_date,
            "environment": self.environment,
            "recentSubscriptionStartDate": self.started,
            "renewalDate": self.latest["expiresDate"],
            "currency": self.currency,
            "renewalPrice": self.price,
            "appTransactionId": self.app_transaction_id,
        }
        if self.app_account_token:
            payload["appAccountToken"] = self.app_account_token
        if self.grace_period_expires is not None:
            payload["gracePeriodExpiresDate"] = self.grace_period_expires
        if self.expiration_intent is not None:
            payload["expirationIntent"] = self.expiration_intent
        return payload

    def view(self) -> dict[str, Any]:
        """The subscription as the sandbox's control endpoints and state show it (unsigned)."""
        return {
            "originalTransactionId": self.original_transaction_id,
            "environment": self.environment,
            "bundleId": self.bundle_id,
            "customer": self.customer,
            "subscriptionGroupIdentifier": self.group,
            "status": self.status,
            "autoRenew": self.auto_renew,
            "appAccountToken": self.app_account_token,
            "transactions": [dict(transaction) for transaction in self.transactions],
        }


class Ledger:
    """Every subscription the sandbox's App Store holds, by originalTransactionId."""

    def __init__(self) -> None:
        self.by_original_id: dict[str, Subscription] = {}
        self._original_of: dict[str, str] = {}  # any transactionId -> originalTransactionId
        self._transaction_ids = itertools.count(1)
        self._line_items = itertools.count(1)
        self._customers = itertools.count(1)
        self._app_transaction_ids: dict[tuple[str, str, str], str] = {}

    def new_customer(self) -> str:
        return f"sandbox-customer-{next(self._customers)}"

    def _transaction_id(self, environment: str) -> str:
        # Numeric strings like Apple's: sandbox ids start 2000000..., production ids 1000000....
        base = 2_000_000_000_000_000 if environment == "Sandbox" else 1_000_000_000_000_000
        return str(base + next(self._transaction_ids))

    def _app_transaction_id(self, customer: str, bundle_id: str, environment: str) -> str:
        """The customer's appTransactionId: one per customer, app and environment."""
        key = (customer, bundle_id, environment)
        return self._app_transaction_ids.setdefault(
            key, str(704_000_000_000_000_000 + len(self._app_transaction_ids) + 1))

    def find(self, any_transaction_id: str) -> Subscription | None:
        """The subscription of a transactionId or originalTransactionId, or one of the customer's
        subscriptions for an appTransactionId (the API accepts any of the three)."""
        original = self._original_of.get(any_transaction_id)
        if original:
            return self.by_original_id[original]
        return next((subscription for subscription in self.by_original_id.values()
                     if subscription.app_transaction_id == any_transaction_id), None)

    def of_customer(self, subscription: Subscription) -> list[Subscription]:
        """Every subscription of `subscription`'s customer in the same app and environment."""
        return [other for other in self.by_original_id.values()
                if (other.customer, other.bundle_id, other.environment)
                == (subscription.customer, subscription.bundle_id, subscription.environment)]

    def subscribe(self, *, environment: str, bundle_id: str, customer: str, group: str, product_id: str,
                  app_account_token: str | None, family_shared: bool, period_days: int, price: int,
                  currency: str, now: int) -> tuple[Subscription, Change]:
        """A purchase: SUBSCRIBED INITIAL_BUY, or RESUBSCRIBE when the customer's subscription in the group
        had expired or was revoked (it continues under its originalTransactionId)."""
        current = next((s for s in self.by_original_id.values()
                        if (s.customer, s.bundle_id, s.environment, s.group)
                        == (customer, bundle_id, environment, group)), None)
        if current is not None and current.status in (ACTIVE, BILLING_RETRY, GRACE_PERIOD):
            raise ControlError(409, f"customer {customer} already has subscription "
                                    f"{current.original_transaction_id} in group {group} (status "
                                    f"{current.status}); the App Store sells one per group")
        transaction_id = self._transaction_id(environment)
        if current is None:
            subscription = Subscription(
                original_transaction_id=transaction_id, environment=environment, bundle_id=bundle_id,
                customer=customer, group=group, product_id=product_id, app_account_token=app_account_token,
                ownership="FAMILY_SHARED" if family_shared else "PURCHASED", period_ms=period_days * DAY_MS,
                price=price, currency=currency,
                app_transaction_id=self._app_transaction_id(customer, bundle_id, environment), started=now,
            )
            self.by_original_id[transaction_id] = subscription
            change = Change("SUBSCRIBED", "INITIAL_BUY")
        else:
            subscription = current
            subscription.product_id, subscription.period_ms = product_id, period_days * DAY_MS
            subscription.price, subscription.currency = price, currency
            subscription.app_account_token = app_account_token or subscription.app_account_token
            subscription.started = now
            change = Change("SUBSCRIBED", "RESUBSCRIBE")
        subscription.status, subscription.auto_renew = ACTIVE, True
        subscription.grace_period_expires = subscription.expiration_intent = None
        self._add_transaction(subscription, transaction_id, now, now + subscription.period_ms, "PURCHASE")
        return subscription, change

    def _add_transaction(self, subscription: Subscription, transaction_id: str, start: int, end: int,
                         reason: str) -> None:
        first = subscription.transactions[0] if subscription.transactions else None
        transaction: dict[str, Any] = {
            "transactionId": transaction_id,
            "originalTransactionId": subscription.original_transaction_id,
            "webOrderLineItemId": str((2 if subscription.environment == "Sandbox" else 1)
                                      * 1_000_000_000_000_000 + next(self._line_items)),
            "bundleId": subscription.bundle_id,
            "productId": subscription.product_id,
            "subscriptionGroupIdentifier": subscription.group,
            "purchaseDate": start,
            "originalPurchaseDate": first["purchaseDate"] if first else start,
            "expiresDate": end,
            "quantity": 1,
            "type": "Auto-Renewable Subscription",
            "inAppOwnershipType": subscription.ownership,
            "environment": subscription.environment,
            "transactionReason": reason,
            "storefront": STOREFRONT,
            "storefrontId": STOREFRONT_ID,
            "currency": subscription.currency,
            "price": subscription.price,
            "appTransactionId": subscription.app_transaction_id,
        }
        if subscription.app_account_token:
            transaction["appAccountToken"] = subscription.app_account_token
        subscription.transactions.append(transaction)
        self._original_of[transaction_id] = subscription.original_transaction_id

    def renew(self, subscription: Subscription, now: int) -> Change:
        """A successful renewal: DID_RENEW, with subtype BILLING_RECOVERY after a failed one. A renewal in
        the grace period keeps the renewal date; one out of billing retry starts a new period now."""
        if subscription.status not in (ACTIVE, BILLING_RETRY, GRACE_PERIOD):
            raise ControlError(409, f"status {subscription.status}: only a live subscription renews "
                                    "(a lapsed one is bought again)")
        if not subscription.auto_renew:
            raise ControlError(409, "auto-renew is off: the App Store does not renew; it expires "
                                    "(VOLUNTARY) at the period's end")
        recovered = subscription.status in (BILLING_RETRY, GRACE_PERIOD)
        start = now if subscription.status == BILLING_RETRY else subscription.latest["expiresDate"]
        self._add_transaction(subscription, self._transaction_id(subscription.environment), start,
                              start + subscription.period_ms, "RENEWAL")
        subscription.status, subscription.grace_period_expires = ACTIVE, None
        return Change("DID_RENEW", "BILLING_RECOVERY" if recovered else None)

    def fail_renewal(self, subscription: Subscription, now: int, grace_days: int) -> Change:
        """A failed renewal: DID_FAIL_TO_RENEW with subtype GRACE_PERIOD when the app offers a grace period
        (`grace_days` > 0; the customer keeps access), else without a subtype (billing retry: no access)."""
        if subscription.status != ACTIVE or not subscription.auto_renew:
            raise ControlError(409, "only an active subscription with auto-renew on attempts a renewal")
        end = self._end_period(subscription, now)
        if grace_days > 0:
            subscription.status, subscription.grace_period_expires = GRACE_PERIOD, end + grace_days * DAY_MS
            return Change("DID_FAIL_TO_RENEW", "GRACE_PERIOD")
        subscription.status = BILLING_RETRY
        return Change("DID_FAIL_TO_RENEW")

    def expire_grace_period(self, subscription: Subscription, now: int) -> Change:
        """The grace period ended unpaid: GRACE_PERIOD_EXPIRED; billing retry continues, access ends."""
        if subscription.status != GRACE_PERIOD:
            raise ControlError(409, f"status {subscription.status}: not in a billing grace period")
        subscription.status, subscription.grace_period_expires = BILLING_RETRY, None
        return Change("GRACE_PERIOD_EXPIRED")

    def expire(self, subscription: Subscription, now: int) -> Change:
        """The subscription lapses: EXPIRED with subtype VOLUNTARY (auto-renew was off) or BILLING_RETRY
        (the billing retry period ended without a renewal)."""
        if subscription.status == BILLING_RETRY:
            subscription.expiration_intent, subtype = BILLING_ERROR, "BILLING_RETRY"
        elif subscription.status == ACTIVE and not subscription.auto_renew:
            subscription.expiration_intent, subtype = CUSTOMER_CANCELED, "VOLUNTARY"
        elif subscription.status == GRACE_PERIOD:
            raise ControlError(409, "in the grace period: expire the grace period first (billing retry "
                                    "continues after it)")
        elif subscription.status == ACTIVE:
            raise ControlError(409, "auto-renew is on: turn it off, or fail the renewal, before it can "
                                    "expire")
        else:
            raise ControlError(409, f"status {subscription.status}: already ended")
        self._end_period(subscription, now)
        subscription.status, subscription.auto_renew = EXPIRED, False
        return Change("EXPIRED", subtype)

    def refund(self, subscription: Subscription, now: int, reason: int) -> Change:
        """Apple refunded the latest transaction: REFUND; the transaction carries revocationDate and
        revocationReason (0 other, 1 an issue in the app) and the subscription is revoked."""
        self._revoke(subscription, now)
        subscription.latest["revocationReason"] = reason
        return Change("REFUND")

    def revoke(self, subscription: Subscription, now: int) -> Change:
        """Family Sharing no longer shares the purchase with this customer: REVOKE."""
        if subscription.ownership != "FAMILY_SHARED":
            raise ControlError(409, "REVOKE is for purchases shared through Family Sharing; refund a "
                                    "purchased one")
        self._revoke(subscription, now)
        return Change("REVOKE")

    def _revoke(self, subscription: Subscription, now: int) -> None:
        if "revocationDate" in subscription.latest:
            raise ControlError(409, "the latest transaction is already revoked")
        subscription.latest["revocationDate"] = now
        self._end_period(subscription, now)
        subscription.status, subscription.auto_renew, subscription.grace_period_expires = REVOKED, False, None

    def set_auto_renew(self, subscription: Subscription, on: bool) -> Change:
        """The customer turns auto-renew on or off: DID_CHANGE_RENEWAL_STATUS AUTO_RENEW_ENABLED/_DISABLED."""
        if subscription.status not in (ACTIVE, BILLING_RETRY, GRACE_PERIOD):
            raise ControlError(409, f"status {subscription.status}: the subscription has ended")
        if subscription.auto_renew == on:
            raise ControlError(409, f"auto-renew is already {'on' if on else 'off'}")
        subscription.auto_renew = on
        return Change("DID_CHANGE_RENEWAL_STATUS", "AUTO_RENEW_ENABLED" if on else "AUTO_RENEW_DISABLED")

    @staticmethod
    def _end_period(subscription: Subscription, now: int) -> int:
        """End the latest period now if it has not ended yet; its end."""
        subscription.latest["expiresDate"] = min(subscription.latest["expiresDate"], now)
        return subscription.latest["expiresDate"]
