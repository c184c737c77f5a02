"""The sandbox Stripe's API over its billing and events, as stripe-python 16.1.0 calls it.

Every list is newest first; a request sees only the objects of its key's mode (endpoints: docs/tools.md).
"""

import copy
import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..messages import SandboxRequest, SandboxResponse
from .stripe_billing import Billing
from .stripe_events import EventLog, Origin
from .stripe_lists import StripeRequestError, expand, in_range, no_such, page, query_of

_ITEM = re.compile(r"^/v1/(subscriptions|customers|invoices|charges|events)/([A-Za-z0-9_]+)$")
_COLLECTION = re.compile(r"^/v1/(subscriptions|customers|invoices|events)$")
SUBSCRIPTION_STATUSES = (
    "active",
    "all",
    "canceled",
    "ended",
    "incomplete",
    "incomplete_expired",
    "past_due",
    "paused",
    "trialing",
    "unpaid",
)
MAX_EVENT_TYPES = 20


@dataclass(frozen=True)
class Call:
    """One API request as the sandbox's Stripe sees it: the key's mode and what the request's changes
    are recorded as (its Request-Id and idempotency key)."""

    livemode: bool
    origin: Origin
    base_url: str

    def ok(self, body: Any) -> SandboxResponse:
        """A 200 with a copy of `body` (the stored object keeps changing; the answer does not)."""
        return SandboxResponse(200, copy.deepcopy(body), {"Request-Id": self.origin.request_id or ""})


class StripeApi:
    def __init__(self, billing: Billing, events: EventLog) -> None:
        self.billing = billing
        self.events = events

    def owns(self, path: str) -> bool:
        return bool(_ITEM.match(path) or _COLLECTION.match(path))

    def handle(self, request: SandboxRequest, call: Call) -> SandboxResponse:
        """Raises StripeRequestError for what Stripe refuses."""
        query = query_of(request)
        collection, item = _COLLECTION.match(request.path), _ITEM.match(request.path)
        if collection and request.method == "GET":
            listed = getattr(self, f"_list_{collection.group(1)}")(query, call)
            return call.ok(self._expanded(listed, query, call))
        if collection and request.method == "POST" and collection.group(1) == "subscriptions":
            return call.ok(self._expanded(self._create_subscription(_params(request), call), query, call))
        if item and request.method == "GET":
            return call.ok(
                self._expanded(self.find(item.group(1), item.group(2), call.livemode), query, call)
            )
        if item and item.group(1) == "subscriptions" and request.method in ("POST", "DELETE"):
            subscription = self.find("subscriptions", item.group(2), call.livemode)
            if request.method == "DELETE":
                changed = self.billing.cancel(
                    subscription, call.origin, _params(request).get("cancellation_details")
                )
            else:
                changed = self.billing.update(subscription, _params(request), call.origin)
            return call.ok(self._expanded(changed, query, call))
        raise StripeRequestError(f"Unrecognized request URL ({request.method}: {request.path}).", status=404)

    # ---- lookups and expansion -----------------------------------------------------------------

    def find(self, collection: str, object_id: str, livemode: bool) -> dict[str, Any]:
        """The object, or a StripeRequestError 404 as Stripe words it."""
        kind = {
            "subscriptions": "subscription",
            "customers": "customer",
            "invoices": "invoice",
            "charges": "charge",
            "events": "event",
        }[collection]
        found: dict[str, Any] | None
        if collection == "events":
            found = self.events.find(object_id, livemode)
        else:
            found = getattr(self.billing, kind)(object_id, livemode)
        if found is None:
            raise no_such(kind, object_id)
        return found

    def _lookup(self, livemode: bool) -> Callable[[str], dict[str, Any] | None]:
        def lookup(object_id: str) -> dict[str, Any] | None:
            prefix = object_id.split("_", 1)[0]
            kind = {"cus": "customer", "sub": "subscription", "in": "invoice", "ch": "charge"}.get(prefix)
            return getattr(self.billing, kind)(object_id, livemode) if kind else None

        return lookup

    def _includable(self, owner: dict[str, Any], name: str) -> dict[str, Any] | None:
        if owner.get("object") == "invoice" and name == "payments":
            return self.billing.payments_of(owner["id"])
        return None

    def _expanded(self, body: dict[str, Any], query: dict[str, Any], call: Call) -> dict[str, Any]:
        if "expand" not in query:
            return body
        return expand(copy.deepcopy(body), query["expand"], self._lookup(call.livemode), self._includable)

    # ---- lists ---------------------------------------------------------------------------------

    def _list_subscriptions(self, query: dict[str, Any], call: Call) -> dict[str, Any]:
        status = query.get("status")
        if status is not None and status not in SUBSCRIPTION_STATUSES:
            raise StripeRequestError(
                f"Invalid status: must be one of {', '.join(SUBSCRIPTION_STATUSES)}", "status"
            )
        found = [
            s
            for s in self.billing.subscriptions.values()
            if s["livemode"] == call.livemode
            and query.get("customer") in (None, s["customer"])
            and _listed(status, s["status"])
            and in_range(s["created"], query.get("created"))
            and in_range(
                min(i["current_period_end"] for i in s["items"]["data"]), query.get("current_period_end")
            )
            and in_range(
                max(i["current_period_start"] for i in s["items"]["data"]), query.get("current_period_start")
            )
            and query.get("price") in (None, *(i["price"]["id"] for i in s["items"]["data"]))
            and query.get("collection_method") in (None, s["collection_method"])
            and _none_of(query, "test_clock", "customer_account")
        ]
        return page(_newest_first(found), query, "/v1/subscriptions", "subscription")

    def _list_customers(self, query: dict[str, Any], call: Call) -> dict[str, Any]:
        found = [
            c
            for c in self.billing.customers.values()
            if c["livemode"] == call.livemode
            and query.get("email") in (None, c["email"])
            and in_range(c["created"], query.get("created"))
            and _none_of(query, "test_clock")
        ]
        return page(_newest_first(found), query, "/v1/customers", "customer")

    def _list_invoices(self, query: dict[str, Any], call: Call) -> dict[str, Any]:
        def subscription_of(invoice: dict[str, Any]) -> str | None:
            return ((invoice["parent"] or {}).get("subscription_details") or {}).get("subscription")

        found = [
            i
            for i in self.billing.invoices.values()
            if i["livemode"] == call.livemode
            and query.get("customer") in (None, i["customer"])
            and query.get("subscription") in (None, subscription_of(i))
            and query.get("status") in (None, i["status"])
            and query.get("collection_method") in (None, i["collection_method"])
            and in_range(i["created"], query.get("created"))
            and in_range(i["due_date"], query.get("due_date"))
            and _none_of(query, "customer_account")
        ]
        return page(_newest_first(found), query, "/v1/invoices", "invoice")

    def _list_events(self, query: dict[str, Any], call: Call) -> dict[str, Any]:
        single, several = query.get("type"), query.get("types")
        if single is not None and several is not None:
            raise StripeRequestError("You may pass either type or types, but not both.", "types")
        types = several if isinstance(several, list) else [several] if several else []
        if len(types) > MAX_EVENT_TYPES:
            raise StripeRequestError(f"You may pass at most {MAX_EVENT_TYPES} types.", "types")
        delivered = query.get("delivery_success")
        found = [
            e
            for e in self.events.listed(call.livemode)
            if (single is None or fnmatch.fnmatchcase(e["type"], single))
            and (not types or e["type"] in types)
            and in_range(e["created"], query.get("created"))
            and delivered in (None, "true" if e["pending_webhooks"] == 0 else "false")
        ]
        return page(found, query, "/v1/events", "event")

    # ---- writes --------------------------------------------------------------------------------

    def _create_subscription(self, params: dict[str, Any], call: Call) -> dict[str, Any]:
        """A subscription paid at once by the customer's default card, or in trial
        (https://docs.stripe.com/api/subscriptions/create)."""
        customer_id = params.get("customer")
        if not customer_id:
            raise StripeRequestError("Missing required param: customer.", "customer", "parameter_missing")
        items = params.get("items")
        if not isinstance(items, list) or not items:
            raise StripeRequestError("Missing required param: items.", "items", "parameter_missing")
        wanted = []
        for index, item in enumerate(items):
            price = item.get("price") if isinstance(item, dict) else None
            if not isinstance(price, str) or not price.startswith("price_"):
                raise StripeRequestError(
                    f"No such price: '{price}'", f"items[{index}][price]", "resource_missing"
                )
            metadata = item.get("metadata") if isinstance(item.get("metadata"), dict) else {}
            wanted.append((price, int(item.get("quantity") or 1), metadata))
        customer = self.billing.named_customer(str(customer_id), call.livemode)
        metadata = params.get("metadata") if isinstance(params.get("metadata"), dict) else {}
        return self.billing.subscribe(
            customer,
            wanted,
            call.origin,
            metadata=metadata,
            trial_days=int(params.get("trial_period_days") or 0),
        )


def _params(request: SandboxRequest) -> dict[str, Any]:
    """The request's parameters: the form body, and for a DELETE its query string (stripe-python sends a
    DELETE's parameters there: stripe/_api_requestor.py)."""
    params = request.body if isinstance(request.body, dict) else {}
    return {**query_of(request), **params} if request.method == "DELETE" else params


def _listed(wanted: str | None, status: str) -> bool:
    """Whether the list's `status` takes in a subscription in `status`: none leaves out canceled ones;
    `ended` means canceled or incomplete_expired; `all` takes every one."""
    if wanted is None:
        return status != "canceled"
    if wanted == "ended":
        return status in ("canceled", "incomplete_expired")
    return wanted in ("all", status)


def _none_of(query: dict[str, Any], *names: str) -> bool:
    """The sandbox has no test clocks and no Accounts v2 customers: a filter by one matches nothing."""
    return all(query.get(name) is None for name in names)


def _newest_first(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Newest first; of two created in the same second, the later made first."""
    ordered = sorted(enumerate(found), key=lambda pair: (pair[1]["created"], pair[0]), reverse=True)
    return [item for _, item in ordered]
