"""Stripe Subscriptions in the sandbox: create, retrieve, list by customer, cancel now
(`DELETE /v1/subscriptions/{id}`) and cancel at period end (`POST /v1/subscriptions/{id}` with
`cancel_at_period_end=true`), as https://docs.stripe.com/api/subscriptions describes them.

What real Stripe does that account deletion must cope with, and this models:
- the list leaves canceled subscriptions out unless `status=all`
  (https://docs.stripe.com/api/subscriptions/list#list_subscriptions-status);
- cancelling an already canceled subscription answers 404 "No such subscription" (stripe/stripe-go#1887);
- updating a canceled one answers 400 "A canceled subscription can only update its cancellation_details
  and metadata." (BasedHardware/omi#11289).
The Stripe provider routes `/v1/subscriptions` here and applies Stripe's idempotency to the POSTs; times
come from the sandbox clock.
"""

import re
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

from ..messages import SandboxRequest, SandboxResponse

SUBSCRIPTIONS_PATH = "/v1/subscriptions"
_SUBSCRIPTION_PATH = re.compile(r"^/v1/subscriptions/(sub_[A-Za-z0-9]+)$")
PERIOD_SECONDS = 30 * 24 * 3600
LIVE_STATUSES = ("active", "trialing", "past_due", "unpaid", "incomplete", "paused")
LIST_STATUSES = (*LIVE_STATUSES, "canceled", "incomplete_expired", "ended", "all")
_ALPHABET = string.ascii_letters + string.digits

ErrorFactory = Callable[..., SandboxResponse]


def _random_id(prefix: str, length: int = 24) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


class Subscriptions:
    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self._now = now  # the sandbox clock

    def handle(self, request: SandboxRequest, error: ErrorFactory) -> SandboxResponse:
        match = _SUBSCRIPTION_PATH.match(request.path)
        if request.path == SUBSCRIPTIONS_PATH and request.method == "GET":
            return self._list(request, error)
        if request.path == SUBSCRIPTIONS_PATH and request.method == "POST":
            return self._create(request, error)
        if match is None:
            return error(404, message=f"Unrecognized request URL ({request.method}: {request.path}).")
        subscription = self.by_id.get(match.group(1))
        if request.method == "GET" and subscription is not None:
            return _ok(subscription)
        if request.method == "DELETE" and subscription is not None and subscription["status"] != "canceled":
            return self._cancel(subscription)
        if request.method == "POST" and subscription is not None:
            return self._update(subscription, request, error)
        if request.method in ("GET", "DELETE", "POST"):
            # Stripe treats a canceled subscription like a deleted one when asked to cancel it again.
            return error(404, "resource_missing", f"No such subscription: '{match.group(1)}'", "id")
        return error(404, message=f"Unrecognized request URL ({request.method}: {request.path}).")

    def _create(self, request: SandboxRequest, error: ErrorFactory) -> SandboxResponse:
        params = request.body if isinstance(request.body, dict) else {}
        customer = params.get("customer")
        if not customer:
            return error(400, "parameter_missing", "Missing required param: customer.", "customer")
        items = params.get("items")
        if not isinstance(items, list) or not items:
            return error(400, "parameter_missing", "Missing required param: items.", "items")
        now = int(self._now())
        trial_days = int(params.get("trial_period_days") or 0)
        period_end = now + (trial_days * 86400 if trial_days else PERIOD_SECONDS)
        sub_id = _random_id("sub_")
        data = []
        for index, item in enumerate(items):
            price = item.get("price") if isinstance(item, dict) else None
            if not isinstance(price, str) or not price.startswith("price_"):
                return error(400, "resource_missing", f"No such price: '{price}'", f"items[{index}][price]")
            data.append({"id": _random_id("si_", 14), "object": "subscription_item", "subscription": sub_id,
                         "price": {"id": price, "object": "price"},
                         "quantity": int(item.get("quantity") or 1), "created": now,
                         "current_period_start": now, "current_period_end": period_end})
        subscription = {
            "id": sub_id, "object": "subscription", "customer": customer, "created": now,
            "status": "trialing" if trial_days else "active", "cancel_at_period_end": False,
            "cancel_at": None, "canceled_at": None, "ended_at": None,
            "trial_end": period_end if trial_days else None,
            "items": {"object": "list", "data": data, "has_more": False,
                      "url": f"/v1/subscription_items?subscription={sub_id}"},
            "metadata": params.get("metadata") or {}, "livemode": False,
        }
        self.by_id[sub_id] = subscription
        return _ok(subscription)

    def _list(self, request: SandboxRequest, error: ErrorFactory) -> SandboxResponse:
        status = _first(request.query, "status")
        if status is not None and status not in LIST_STATUSES:
            return error(400, "", f"Invalid status: must be one of {', '.join(LIST_STATUSES)}", "status")
        limit = _first(request.query, "limit") or "10"
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            return error(400, "", "Invalid integer: must be between 1 and 100", "limit")
        customer = _first(request.query, "customer")
        found = [
            subscription for subscription in self.by_id.values()
            if (customer is None or subscription["customer"] == customer)
            and (status == "all" or subscription["status"] == status
                 or (status is None and subscription["status"] != "canceled"))
        ]
        # Newest first, as Stripe lists.
        found.sort(key=lambda subscription: subscription["created"], reverse=True)
        page = found[: int(limit)]
        return _ok({"object": "list", "data": page, "has_more": len(found) > len(page),
                    "url": SUBSCRIPTIONS_PATH})

    def _cancel(self, subscription: dict[str, Any]) -> SandboxResponse:
        now = int(self._now())
        subscription.update(status="canceled", canceled_at=now, ended_at=now, cancel_at_period_end=False)
        return _ok(subscription)

    def _update(self, subscription: dict[str, Any], request: SandboxRequest,
                error: ErrorFactory) -> SandboxResponse:
        params = request.body if isinstance(request.body, dict) else {}
        if subscription["status"] == "canceled" and set(params) - {"cancellation_details", "metadata"}:
            return error(400, "", "A canceled subscription can only update its cancellation_details and "
                         "metadata.")
        flag = params.get("cancel_at_period_end")
        if flag is not None:
            if flag not in ("true", "false"):
                return error(400, "", "Invalid boolean: " + str(flag), "cancel_at_period_end")
            subscription["cancel_at_period_end"] = flag == "true"
            period_end = min(item["current_period_end"] for item in subscription["items"]["data"])
            subscription["cancel_at"] = period_end if flag == "true" else None
            subscription["canceled_at"] = int(self._now()) if flag == "true" else None
        if isinstance(params.get("metadata"), dict):
            subscription["metadata"].update(params["metadata"])
        return _ok(subscription)


def _ok(body: dict[str, Any]) -> SandboxResponse:
    return SandboxResponse(200, body, {"Request-Id": _random_id("req_", 14)})
