"""The sandbox Stripe account's billing: customers, subscriptions, invoices, payments and charges on the
sandbox clock, every change recorded as the Events Stripe sends.

Objects of test and live mode are kept apart; what is and is not modelled: docs/tools.md.
"""

import copy
from collections.abc import Callable
from typing import Any

from . import stripe_objects as objects
from .stripe_events import AUTOMATIC, EventLog, Origin
from .stripe_lists import StripeRequestError, no_such
from .stripe_prices import SANDBOX_UNIT_AMOUNT

ENDED = ("canceled", "incomplete_expired")
PAUSABLE = ("active", "trialing", "past_due")
# "The reason for cancellation": set by Stripe when a request cancels or schedules the cancellation
# (https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details-reason).
CANCELLATION_REQUESTED = "cancellation_requested"
# The time Stripe waits before the next payment attempt of a failed renewal (Smart Retries pick their own
# times; the sandbox shows one attempt three days later and makes none).
RETRY_SECONDS = 3 * 86400


class Billing:
    def __init__(self, now: Callable[[], float], events: EventLog) -> None:
        self._now = now
        self.events = events
        self.customers: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.invoice_payments: dict[str, list[dict[str, Any]]] = {}  # by invoice id
        self.charges: dict[str, dict[str, Any]] = {}
        self._paid_by: dict[str, str] = {}  # invoice id -> the charge that paid it

    def now(self) -> float:
        """The sandbox clock's now (unix seconds)."""
        return self._now()

    # ---- lookups -------------------------------------------------------------------------------

    @staticmethod
    def _in_mode(found: dict[str, Any] | None, livemode: bool) -> dict[str, Any] | None:
        return found if found is not None and found["livemode"] == livemode else None

    def customer(self, customer_id: str, livemode: bool) -> dict[str, Any] | None:
        return self._in_mode(self.customers.get(customer_id), livemode)

    def subscription(self, subscription_id: str, livemode: bool) -> dict[str, Any] | None:
        return self._in_mode(self.subscriptions.get(subscription_id), livemode)

    def invoice(self, invoice_id: str, livemode: bool) -> dict[str, Any] | None:
        return self._in_mode(self.invoices.get(invoice_id), livemode)

    def charge(self, charge_id: str, livemode: bool) -> dict[str, Any] | None:
        return self._in_mode(self.charges.get(charge_id), livemode)

    def payments_of(self, invoice_id: str) -> dict[str, Any]:
        """The invoice's `payments` list, as `expand[]=payments` includes it."""
        data = self.invoice_payments.get(invoice_id, [])
        return {
            "object": "list",
            "data": copy.deepcopy(data),
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/payments",
        }

    # ---- customers -----------------------------------------------------------------------------

    def named_customer(self, customer_id: str, livemode: bool) -> dict[str, Any]:
        """The customer a request names. One the sandbox has not seen is taken to exist already (held
        from then on, without email, no `customer.created`), as every `price_...` a request names exists."""
        found = self.customers.get(customer_id)
        if found is not None and found["livemode"] != livemode:
            raise StripeRequestError(
                _other_mode("customer", customer_id, livemode), "customer", "resource_missing"
            )
        if found is None:
            found = self.customers[customer_id] = objects.customer(
                customer_id, created=int(self._now()), livemode=livemode
            )
        return found

    def create_customer(
        self, origin: Origin, *, livemode: bool, email: str | None = None, name: str | None = None
    ) -> dict[str, Any]:
        found = objects.customer(
            objects.new_id("cus_", 14), created=int(self._now()), livemode=livemode, email=email, name=name
        )
        self.customers[found["id"]] = found
        self.events.record("customer.created", found, origin)
        return found

    # ---- subscriptions -------------------------------------------------------------------------

    def subscribe(
        self,
        customer: dict[str, Any],
        items: list[tuple[str, int, dict[str, str]]],
        origin: Origin,
        *,
        trial_days: int = 0,
        metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new subscription of `customer` to `items` ((price id, quantity, metadata)), paid at once
        (or trialing for `trial_days`), with its first invoice."""
        now = int(self._now())
        livemode = customer["livemode"]
        trial_end = now + trial_days * 86400 if trial_days else None
        end = trial_end or objects.period_end(now, 1)
        subscription_id = objects.new_id("sub_")
        data = [
            objects.subscription_item(
                subscription_id,
                price,
                quantity=quantity,
                created=now,
                start=now,
                end=end,
                livemode=livemode,
                metadata=item_metadata,
            )
            for price, quantity, item_metadata in items
        ]
        subscription = objects.subscription(
            subscription_id,
            customer_id=customer["id"],
            items=data,
            created=now,
            livemode=livemode,
            trial_end=trial_end,
            metadata=metadata or {},
        )
        self.subscriptions[subscription_id] = subscription
        invoice = self._open_invoice(
            subscription, "subscription_create", now, end, at=now, amount_each=0 if trial_end else None
        )
        subscription["latest_invoice"] = invoice["id"]
        self.events.record("customer.subscription.created", subscription, origin)
        self._collect(invoice, origin, at=now, succeeds=True)
        return subscription

    def settle(self) -> None:
        """Bring every subscription to the sandbox clock's now: periods that ended renew, trials that
        ended become active, scheduled cancellations end the subscription; each with its events, dated
        when it happened."""
        now = int(self._now())
        for subscription in list(self.subscriptions.values()):
            self._settle(subscription, now)

    def _settle(self, subscription: dict[str, Any], now: int) -> None:
        while subscription["status"] in ("active", "trialing"):
            start = _period(subscription)[1]
            cancel_at = subscription["cancel_at"]
            if cancel_at is not None and cancel_at <= min(start, now):
                self._end(subscription, cancel_at, AUTOMATIC, reason=None)
                return
            if start > now:
                return
            self._renew(subscription, start, succeeds=True, origin=AUTOMATIC)

    def _renew(
        self,
        subscription: dict[str, Any],
        start: int,
        *,
        succeeds: bool,
        origin: Origin,
        reason: str = "subscription_cycle",
        anchor: int | None = None,
        before: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The period from `start` begins (on the billing cycle anchor, or a new one at `anchor`): its
        invoice is created and paid, or the payment fails and the subscription is past_due.
        `before`: the subscription as the change found it (default: as it is now)."""
        before = before or copy.deepcopy(subscription)
        if anchor is not None:
            subscription["billing_cycle_anchor"] = anchor
        end = _next_period_end(subscription["billing_cycle_anchor"], start)
        for item in subscription["items"]["data"]:
            item.update(current_period_start=start, current_period_end=end)
        invoice = self._open_invoice(subscription, reason, start, end, at=start)
        subscription["latest_invoice"] = invoice["id"]
        subscription["status"] = "active" if succeeds else "past_due"
        self.events.record(
            "customer.subscription.updated",
            subscription,
            origin,
            previous=_changed(before, subscription),
            at=start,
        )
        self._collect(invoice, origin, at=start, succeeds=succeeds)
        return invoice

    def _open_invoice(
        self,
        subscription: dict[str, Any],
        billing_reason: str,
        start: int,
        end: int,
        *,
        at: int,
        amount_each: int | None = None,
    ) -> dict[str, Any]:
        invoice_id = objects.new_id("in_")
        lines = [
            objects.line_item(
                invoice_id,
                amount=(SANDBOX_UNIT_AMOUNT if amount_each is None else amount_each) * item["quantity"],
                description=f"{item['quantity']} × {item['price']['product']} (at $"
                f"{SANDBOX_UNIT_AMOUNT / 100:.2f} / month)",
                start=start,
                end=end,
                livemode=subscription["livemode"],
                price_id=item["price"]["id"],
                quantity=item["quantity"],
                subscription_id=subscription["id"],
                subscription_item_id=item["id"],
            )
            for item in subscription["items"]["data"]
        ]
        customer = self.customers[subscription["customer"]]
        invoice = objects.invoice(
            invoice_id,
            customer=customer,
            lines=lines,
            created=at,
            billing_reason=billing_reason,
            livemode=subscription["livemode"],
            period=(start, start) if billing_reason == "subscription_create" else (start, end),
            subscription_id=subscription["id"],
        )
        invoice["parent"]["subscription_details"]["metadata"] = dict(subscription["metadata"])
        self.invoices[invoice_id] = invoice
        return invoice

    def one_off_invoice(
        self, customer: dict[str, Any], amount: int, description: str, origin: Origin
    ) -> dict[str, Any]:
        """A one-off invoice (billing_reason `manual`, no parent) for `amount` cents, paid at once."""
        now = int(self._now())
        invoice_id = objects.new_id("in_")
        line = objects.line_item(
            invoice_id,
            amount=amount,
            description=description,
            start=now,
            end=now,
            livemode=customer["livemode"],
        )
        invoice = objects.invoice(
            invoice_id,
            customer=customer,
            lines=[line],
            created=now,
            billing_reason="manual",
            livemode=customer["livemode"],
            period=(now, now),
            description=description,
        )
        self.invoices[invoice_id] = invoice
        self._collect(invoice, origin, at=now, succeeds=True)
        return invoice

    def _collect(self, invoice: dict[str, Any], origin: Origin, *, at: int, succeeds: bool) -> None:
        """The invoice's life from creation: created, finalized, then paid (or its payment attempt
        failed), with its events; a $0 invoice is paid without a payment."""
        finalized = copy.deepcopy(invoice)
        invoice.update(
            status="draft",
            number=None,
            webhooks_delivered_at=None,
            status_transitions={**invoice["status_transitions"], "finalized_at": None},
        )
        self.events.record("invoice.created", invoice, origin, at=at)
        invoice.clear()
        invoice.update(finalized)
        self.events.record("invoice.finalized", invoice, origin, at=at)
        if invoice["amount_due"] == 0:
            invoice.update(status="paid", status_transitions={**invoice["status_transitions"], "paid_at": at})
            self.events.record("invoice.paid", invoice, origin, at=at)
            return
        self._attempt(invoice, origin, at=at, succeeds=succeeds)

    def _attempt(self, invoice: dict[str, Any], origin: Origin, *, at: int, succeeds: bool) -> None:
        customer = self.customers[invoice["customer"]]
        payments = self.invoice_payments.setdefault(invoice["id"], [])
        # A later attempt goes through the same PaymentIntent, with a new charge.
        payment_intent = payments[0]["payment"]["payment_intent"] if payments else objects.new_id("pi_")
        charge = objects.charge(
            customer=customer,
            amount=invoice["amount_due"],
            created=at,
            livemode=invoice["livemode"],
            payment_intent_id=payment_intent,
            succeeded=succeeds,
            description=_charge_description(invoice["billing_reason"]),
        )
        self.charges[charge["id"]] = charge
        if not payments:
            payments.append(
                objects.invoice_payment(
                    invoice["id"],
                    payment_intent,
                    amount=invoice["amount_due"],
                    created=at,
                    livemode=invoice["livemode"],
                )
            )
        payment = payments[0]
        invoice.update(attempt_count=invoice["attempt_count"] + 1, attempted=True)
        if not succeeds:
            invoice["next_payment_attempt"] = at + RETRY_SECONDS
            self.events.record("charge.failed", charge, origin, at=at)
            self.events.record("invoice.payment_failed", invoice, origin, at=at)
            return
        self._paid_by[invoice["id"]] = charge["id"]
        payment.update(
            amount_paid=invoice["amount_due"],
            status="paid",
            status_transitions={"canceled_at": None, "paid_at": at},
        )
        invoice.update(
            amount_paid=invoice["amount_due"],
            amount_remaining=0,
            next_payment_attempt=None,
            status="paid",
            status_transitions={**invoice["status_transitions"], "paid_at": at},
        )
        self.events.record("charge.succeeded", charge, origin, at=at)
        self.events.record("invoice_payment.paid", payment, origin, at=at)
        self.events.record("invoice.paid", invoice, origin, at=at)
        self.events.record("invoice.payment_succeeded", invoice, origin, at=at)

    def one_off_charge(self, customer: dict[str, Any], amount: int, origin: Origin) -> dict[str, Any]:
        """A one-time card payment of `amount` cents (Checkout in payment mode): its charge, succeeded."""
        now = int(self._now())
        charge = objects.charge(
            customer=customer,
            amount=amount,
            created=now,
            livemode=customer["livemode"],
            description=None,
            payment_intent_id=objects.new_id("pi_"),
            succeeded=True,
        )
        self.charges[charge["id"]] = charge
        self.events.record("charge.succeeded", charge, origin)
        return charge

    def pay(self, invoice: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """The customer pays an open invoice (a new card, a retry that works): paid, and its
        subscription, if past_due, active again."""
        if invoice["status"] != "open":
            raise StripeRequestError(
                f"Invoice {invoice['id']} is already {invoice['status']}.", "invoice", "invoice_not_open"
            )
        now = int(self._now())
        self._attempt(invoice, origin, at=now, succeeds=True)
        subscription = self.subscriptions.get(_parent_subscription(invoice) or "")
        if (
            subscription is not None
            and subscription["status"] == "past_due"
            and subscription["latest_invoice"] == invoice["id"]
        ):
            subscription["status"] = "active"
            self.events.record(
                "customer.subscription.updated", subscription, origin, previous={"status": "past_due"}
            )
        return invoice

    def refund(self, charge: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """Refund the charge in full (https://docs.stripe.com/api/refunds/create without `amount`)."""
        if charge["status"] != "succeeded" or charge["refunded"]:
            raise StripeRequestError(
                f"Charge {charge['id']} has already been refunded."
                if charge["refunded"]
                else f"Charge {charge['id']} did not succeed.",
                "charge",
                "charge_already_refunded",
            )
        previous = {"amount_refunded": charge["amount_refunded"], "refunded": False}
        charge.update(amount_refunded=charge["amount"], refunded=True)
        self.events.record("charge.refunded", charge, origin, previous=previous)
        return charge

    def charge_of(self, invoice: dict[str, Any]) -> dict[str, Any] | None:
        """The charge that paid the invoice."""
        charge_id = self._paid_by.get(invoice["id"])
        return self.charges.get(charge_id) if charge_id else None

    # ---- changes to one subscription ------------------------------------------------------------

    def cancel(
        self, subscription: dict[str, Any], origin: Origin, details: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """Cancel now (https://docs.stripe.com/api/subscriptions/cancel). A canceled subscription is not
        found again (stripe/stripe-go#1887: Stripe treats it like a deleted one)."""
        if subscription["status"] in ENDED:
            raise no_such("subscription", subscription["id"])
        self._end(subscription, int(self._now()), origin, reason=CANCELLATION_REQUESTED, details=details)
        return subscription

    def _end(
        self,
        subscription: dict[str, Any],
        at: int,
        origin: Origin,
        *,
        reason: str | None,
        details: dict[str, Any] | None = None,
    ) -> None:
        subscription.pop("status_details", None)
        subscription.update(
            status="canceled",
            ended_at=at,
            cancel_at_period_end=False,
            canceled_at=subscription["canceled_at"] or at,
        )
        if reason is not None:
            subscription["cancellation_details"] = _cancellation_details(details, reason)
        self.events.record("customer.subscription.deleted", subscription, origin, at=at)

    def update(self, subscription: dict[str, Any], params: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """`cancel_at_period_end`, `cancellation_details` and `metadata` of
        https://docs.stripe.com/api/subscriptions/update (other parameters change nothing here)."""
        if subscription["status"] in ENDED and set(params) - {"cancellation_details", "metadata"}:
            raise StripeRequestError(
                "A canceled subscription can only update its cancellation_details and metadata."
            )
        before = copy.deepcopy(subscription)
        flag = params.get("cancel_at_period_end")
        if flag is not None:
            if flag not in ("true", "false"):
                raise StripeRequestError(f"Invalid boolean: {flag}", "cancel_at_period_end")
            ending = flag == "true"
            subscription.update(
                cancel_at_period_end=ending,
                cancel_at=_period(subscription)[1] if ending else None,
                canceled_at=int(self._now()) if ending else None,
                cancellation_details=_cancellation_details(
                    params.get("cancellation_details"), CANCELLATION_REQUESTED if ending else None
                ),
            )
        elif isinstance(params.get("cancellation_details"), dict):
            reason = subscription["cancellation_details"]["reason"]
            subscription["cancellation_details"] = _cancellation_details(
                params["cancellation_details"], reason
            )
        if isinstance(params.get("metadata"), dict):
            # Stripe's rule for metadata updates: an empty value unsets the key.
            metadata = dict(subscription["metadata"])
            for key, value in params["metadata"].items():
                if value == "":
                    metadata.pop(key, None)
                else:
                    metadata[key] = value
            subscription["metadata"] = metadata
        changed = _changed(before, subscription)
        if changed:
            self.events.record("customer.subscription.updated", subscription, origin, previous=changed)
        return subscription

    def pause(self, subscription: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """The endive pause (https://docs.stripe.com/changelog/endive/2026-09-30/pause-subscription):
        status `paused` with `status_details.paused` (type `pause_requested`); no invoices, no periods."""
        if subscription["status"] not in PAUSABLE:
            raise StripeRequestError(f"A subscription in status {subscription['status']} cannot be paused.")
        now = int(self._now())
        previous = {"status": subscription["status"]}
        subscription.update(
            status="paused",
            status_details={
                "paused": {
                    "subscription": {"type": "pause_requested"},
                    "transitioned_at": now,
                    "type": "subscription",
                }
            },
        )
        self.events.record("customer.subscription.updated", subscription, origin, previous=previous)
        self.events.record("customer.subscription.paused", subscription, origin)
        return subscription

    def resume(self, subscription: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """Resume a paused subscription with billing_cycle_anchor `now`: a new period from now, its
        invoice paid at once (https://docs.stripe.com/api/subscriptions/resume)."""
        if subscription["status"] != "paused":
            raise StripeRequestError("Only a paused subscription can be resumed.", "subscription")
        now = int(self._now())
        before = copy.deepcopy(subscription)
        subscription.pop("status_details", None)
        # The resumption invoice's billing_reason is not documented; a new period begun by a change to
        # the subscription is what `subscription_update` names.
        self._renew(
            subscription,
            now,
            succeeds=True,
            origin=origin,
            reason="subscription_update",
            anchor=now,
            before=before,
        )
        self.events.record("customer.subscription.resumed", subscription, origin)
        return subscription

    def fail_renewal(self, subscription: dict[str, Any], origin: Origin) -> dict[str, Any]:
        """The renewal falls due now and the card is declined: a new period from now whose invoice stays
        open, the subscription `past_due` (as if its billing cycle had reached its end now)."""
        if subscription["status"] not in ("active", "trialing"):
            raise StripeRequestError(
                f"A subscription in status {subscription['status']} has no renewal to fail."
            )
        now = int(self._now())
        self._renew(subscription, now, succeeds=False, origin=origin, anchor=now)
        return subscription


def _period(subscription: dict[str, Any]) -> tuple[int, int]:
    """The current period: the items' latest start and end (every item shares it here)."""
    items = subscription["items"]["data"]
    return max(item["current_period_start"] for item in items), max(
        item["current_period_end"] for item in items
    )


def _next_period_end(anchor: int, start: int) -> int:
    periods = 1
    while objects.period_end(anchor, periods) <= start:
        periods += 1
    return objects.period_end(anchor, periods)


def _changed(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`previous_attributes`: the top-level fields that changed, with their old values."""
    return {key: value for key, value in before.items() if after.get(key) != value}


def _cancellation_details(given: Any, reason: str | None) -> dict[str, Any]:
    given = given if isinstance(given, dict) else {}
    return {
        "comment": given.get("comment") or None,
        "feedback": given.get("feedback") or None,
        "reason": reason,
    }


def _parent_subscription(invoice: dict[str, Any]) -> str | None:
    parent = invoice.get("parent") or {}
    return (parent.get("subscription_details") or {}).get("subscription")


def _charge_description(billing_reason: str) -> str:
    # Stripe's descriptions of subscription charges, as its Dashboard shows them.
    return {
        "subscription_create": "Subscription creation",
        "subscription_cycle": "Subscription update",
        "subscription_update": "Subscription update",
    }.get(billing_reason, "Payment for Invoice")


def _other_mode(kind: str, object_id: str, livemode: bool) -> str:
    other, used = ("live", "test") if not livemode else ("test", "live")
    return (
        f"No such {kind}: '{object_id}'; a similar object exists in {other} mode, but a {used} mode key "
        "was used to make this request."
    )
