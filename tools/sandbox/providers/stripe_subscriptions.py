"""Stripe Subscriptions in the sandbox: create, retrieve, list by customer, cancel now or at period end.

Each answer is a whole Subscription as the 2024-04-10 document describes it (docs/tools.md).
"""

import calendar
import re
import secrets
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from ..forms import decode_form
from ..messages import SandboxRequest, SandboxResponse
from .stripe_prices import SANDBOX_CURRENCY, price_object

SUBSCRIPTIONS_PATH = "/v1/subscriptions"
_SUBSCRIPTION_PATH = re.compile(r"^/v1/subscriptions/(sub_[A-Za-z0-9]+)$")
LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
LIST_STATUSES = (*LIVE_STATUSES, "canceled", "incomplete_expired", "ended", "all")
# "The reason for cancellation": set by Stripe when a request cancels or schedules the cancellation
# (https://docs.stripe.com/api/subscriptions/object#subscription_object-cancellation_details-reason).
CANCELLATION_REQUESTED = "cancellation_requested"
_ALPHABET = string.ascii_letters + string.digits

ErrorFactory = Callable[..., SandboxResponse]


def _random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def period_end(anchor: int, periods: int) -> int:
    """The end of the `periods`-th monthly period from `anchor` (unix seconds): the same day of the
    month, or the month's last day when it has no such day, as Stripe bills
    (https://docs.stripe.com/billing/subscriptions/billing-cycle: "a subscription that starts on
    January 31 renews on February 28 (or 29), then March 31")."""
    start = datetime.fromtimestamp(anchor, UTC)
    month_index = start.month - 1 + periods
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    return int(start.replace(year=year, month=month, day=day).timestamp())


def _cancellation_details(params: dict[str, Any], reason: str | None) -> dict[str, Any]:
    given = params.get("cancellation_details")
    given = given if isinstance(given, dict) else {}
    return {"comment": given.get("comment") or None, "feedback": given.get("feedback") or None,
            "reason": reason}


class Subscriptions:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self._now = now  # the sandbox clock

    def all(self) -> list[dict[str, Any]]:
        """Every subscription, as of the sandbox clock's now."""
        return [self._settle(subscription) for subscription in self.by_id.values()]

    def handle(self, request: SandboxRequest, error: ErrorFactory) -> SandboxResponse:
        match = _SUBSCRIPTION_PATH.match(request.path)
        if request.path == SUBSCRIPTIONS_PATH and request.method == "GET":
            return self._list(request, error)
        if request.path == SUBSCRIPTIONS_PATH and request.method == "POST":
            return self._create(request, error)
        if match is None:
            return error(404, message=f"Unrecognized request URL ({request.method}: {request.path}).")
        subscription = self.by_id.get(match.group(1))
        if subscription is not None:
            self._settle(subscription)
        if request.method == "GET" and subscription is not None:
            return _ok(subscription)
        if request.method == "DELETE" and subscription is not None and subscription["status"] != "canceled":
            return self._cancel(subscription, request)
        if request.method == "POST" and subscription is not None:
            return self._update(subscription, request, error)
        if request.method in ("GET", "DELETE", "POST"):
            # Stripe treats a canceled subscription like a deleted one when asked to cancel it again.
            return error(404, "resource_missing", f"No such subscription: '{match.group(1)}'", "id")
        return error(404, message=f"Unrecognized request URL ({request.method}: {request.path}).")

    def _create(self, request: SandboxRequest, error: ErrorFactory) -> SandboxResponse:
        """A subscription paid at once by the customer's default card (or in trial), as
        `POST /v1/subscriptions` answers it: https://docs.stripe.com/api/subscriptions/object."""
        params = request.body if isinstance(request.body, dict) else {}
        customer = params.get("customer")
        if not customer:
            return error(400, "parameter_missing", "Missing required param: customer.", "customer")
        items = params.get("items")
        if not isinstance(items, list) or not items:
            return error(400, "parameter_missing", "Missing required param: items.", "items")
        now = int(self._now())
        trial_days = int(params.get("trial_period_days") or 0)
        trial_end = now + trial_days * 86400 if trial_days else None
        # A trial moves the billing cycle anchor to its end; otherwise the cycle starts now.
        anchor = trial_end or now
        current_period_end = trial_end or period_end(anchor, 1)
        sub_id = _random_id("sub_")
        data = []
        for index, item in enumerate(items):
            price = item.get("price") if isinstance(item, dict) else None
            if not isinstance(price, str) or not price.startswith("price_"):
                return error(400, "resource_missing", f"No such price: '{price}'", f"items[{index}][price]")
            data.append({
                "id": _random_id("si_", 14), "object": "subscription_item", "billing_thresholds": None,
                "created": now, "discounts": [],
                "metadata": item.get("metadata") if isinstance(item.get("metadata"), dict) else {},
                "price": price_object(price), "quantity": int(item.get("quantity") or 1),
                "subscription": sub_id, "tax_rates": [],
                # API versions from 2025-03-31 (the one stripe-python pins) carry the period on each
                # item; the 2024-04-10 document the sandbox is held to, on the subscription. Both kept.
                "current_period_start": now, "current_period_end": current_period_end,
            })
        subscription = {
            "id": sub_id, "object": "subscription", "application": None, "application_fee_percent": None,
            "automatic_tax": {"enabled": False, "liability": None},
            "billing_cycle_anchor": anchor, "billing_cycle_anchor_config": None, "billing_thresholds": None,
            "cancel_at": None, "cancel_at_period_end": False, "canceled_at": None,
            "cancellation_details": _cancellation_details({}, None),
            "collection_method": "charge_automatically", "created": now, "currency": SANDBOX_CURRENCY,
            "current_period_end": current_period_end, "current_period_start": now, "customer": customer,
            "days_until_due": None, "default_payment_method": None, "default_source": None,
            "default_tax_rates": [], "description": None, "discount": None, "discounts": [],
            "ended_at": None,
            "items": {"object": "list", "data": data, "has_more": False, "total_count": len(data),
                      "url": f"/v1/subscription_items?subscription={sub_id}"},
            # Stripe invoices the first period (a zero-amount invoice for a trial) on creation.
            "latest_invoice": _random_id("in_"), "livemode": False,
            "metadata": params.get("metadata") if isinstance(params.get("metadata"), dict) else {},
            "next_pending_invoice_item_invoice": None, "on_behalf_of": None, "pause_collection": None,
            "payment_settings": {"payment_method_options": None, "payment_method_types": None,
                                 "save_default_payment_method": "off"},
            "pending_invoice_item_interval": None, "pending_setup_intent": None, "pending_update": None,
            "schedule": None, "start_date": now, "status": "trialing" if trial_days else "active",
            "test_clock": None, "transfer_data": None, "trial_end": trial_end,
            "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
            "trial_start": now if trial_days else None,
        }
        self.by_id[sub_id] = subscription
        return _ok(subscription)

    def _settle(self, subscription: dict[str, Any]) -> dict[str, Any]:
        """Bring the subscription to the sandbox clock's now, as Stripe's billing does: a cancellation
        scheduled for a time now past has ended it; otherwise each period that ended renewed it (paid
        at once by the default card), and a trial that ended became active."""
        now = int(self._now())
        if subscription["status"] == "canceled":
            return subscription
        cancel_at = subscription["cancel_at"]
        while subscription["current_period_end"] <= now and (
            cancel_at is None or subscription["current_period_end"] < cancel_at
        ):
            start = subscription["current_period_end"]
            anchor = subscription["billing_cycle_anchor"]
            periods = 1
            while period_end(anchor, periods) <= start:
                periods += 1
            self._set_period(subscription, start, period_end(anchor, periods))
            subscription["status"] = "active"
            subscription["latest_invoice"] = _random_id("in_")
        if cancel_at is not None and cancel_at <= now:
            subscription.update(status="canceled", ended_at=cancel_at)
        return subscription

    @staticmethod
    def _set_period(subscription: dict[str, Any], start: int, end: int) -> None:
        subscription.update(current_period_start=start, current_period_end=end)
        for item in subscription["items"]["data"]:
            item.update(current_period_start=start, current_period_end=end)

    def _list(self, request: SandboxRequest, error: ErrorFactory) -> SandboxResponse:
        status = _first(request.query, "status")
        if status is not None and status not in LIST_STATUSES:
            return error(400, "", f"Invalid status: must be one of {', '.join(LIST_STATUSES)}", "status")
        limit = _first(request.query, "limit") or "10"
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return error(400, "", "Invalid integer: must be between 1 and 100", "limit")
        customer = _first(request.query, "customer")
        found = [
            subscription for subscription in self.all()
            if (customer is None or subscription["customer"] == customer)
            and _listed(status, subscription["status"])
        ]
        # Newest first, as Stripe lists.
        found.sort(key=lambda subscription: subscription["created"], reverse=True)
        page = found[: int(limit)]
        return _ok({"object": "list", "data": page, "has_more": len(found) > len(page),
                    "url": SUBSCRIPTIONS_PATH})

    def _cancel(self, subscription: dict[str, Any], request: SandboxRequest) -> SandboxResponse:
        """Cancel now (https://docs.stripe.com/api/subscriptions/cancel): ended at once, with
        `cancellation_details` as given (`comment`, `feedback`) and reason `cancellation_requested`."""
        params = request.body if isinstance(request.body, dict) else {}
        # stripe-python sends a DELETE's parameters in the query string (see contract._form_text).
        params = {**decode_form(urlencode([(k, v) for k, vs in request.query.items() for v in vs])), **params}
        now = int(self._now())
        subscription.update(status="canceled", canceled_at=now, ended_at=now, cancel_at_period_end=False,
                            cancellation_details=_cancellation_details(params, CANCELLATION_REQUESTED))
        return _ok(subscription)

    def _update(self, subscription: dict[str, Any], request: SandboxRequest,
                error: ErrorFactory) -> SandboxResponse:
        """`cancel_at_period_end`, `cancellation_details` and `metadata` of
        https://docs.stripe.com/api/subscriptions/update (other parameters change nothing here)."""
        params = request.body if isinstance(request.body, dict) else {}
        if subscription["status"] == "canceled" and set(params) - {"cancellation_details", "metadata"}:
            return error(400, "", "A canceled subscription can only update its cancellation_details and "
                         "metadata.")
        flag = params.get("cancel_at_period_end")
        if flag is not None:
            if flag not in ("true", "false"):
                return error(400, "", "Invalid boolean: " + str(flag), "cancel_at_period_end")
            ending = flag == "true"
            subscription.update(
                cancel_at_period_end=ending,
                cancel_at=subscription["current_period_end"] if ending else None,
                canceled_at=int(self._now()) if ending else None,
                cancellation_details=_cancellation_details(
                    params, CANCELLATION_REQUESTED if ending else None),
            )
        elif isinstance(params.get("cancellation_details"), dict):
            reason = subscription["cancellation_details"]["reason"]
            subscription["cancellation_details"] = _cancellation_details(params, reason)
        if isinstance(params.get("metadata"), dict):
            # Stripe's rule for metadata updates: an empty value unsets the key.
            for key, value in params["metadata"].items():
                if value == "":
                    subscription["metadata"].pop(key, None)
                else:
                    subscription["metadata"][key] = value
        return _ok(subscription)


def _listed(wanted: str | None, status: str) -> bool:
    """Whether the list's `status` parameter takes in a subscription in `status`: none leaves out canceled
    ones; "ended" means canceled or incomplete_expired; "all" takes every one."""
    if wanted is None:
        return status != "canceled"
    if wanted == "ended":
        return status in ("canceled", "incomplete_expired")
    return wanted in ("all", status)


def _ok(body: dict[str, Any]) -> SandboxResponse:
    return SandboxResponse(200, body, {"Request-Id": _random_id("req_", 14)})
