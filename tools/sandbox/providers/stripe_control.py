"""Control endpoints under /_sandbox/stripe/: change the sandbox Stripe account as its Dashboard, its
billing or the customer would.

Each change is recorded as Stripe's events, sent to the webhook only with `deliver: true` (docs/tools.md).
"""

import re
from collections.abc import Callable
from typing import Any

from ..messages import SandboxRequest, SandboxResponse
from .stripe_billing import Billing
from .stripe_events import EventLog, Origin
from .stripe_lists import StripeRequestError

PREFIX = "/_sandbox/stripe/"
_SUBSCRIPTION = re.compile(
    r"^/_sandbox/stripe/subscriptions/(sub_[A-Za-z0-9]+)/(cancel|pause|resume|past_due)$"
)
_INVOICE_PAY = re.compile(r"^/_sandbox/stripe/invoices/(in_[A-Za-z0-9]+)/pay$")
_DELIVER = re.compile(r"^/_sandbox/stripe/events/(evt_[A-Za-z0-9]+)/deliver$")


class StripeControl:
    def __init__(self, billing: Billing, events: EventLog) -> None:
        self.billing = billing
        self.events = events

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST":
            return _answer(405, "method_not_allowed", f"{request.path} takes POST")
        body = request.body if isinstance(request.body, dict) else {}
        deliver = body.get("deliver", False)
        if not isinstance(deliver, bool):
            return _answer(400, "invalid_request", "deliver must be true or false")
        origin = Origin(delivery="force" if deliver else "none")
        self.billing.settle()
        self.events.flush()  # what the clock did before this change goes out as usual
        try:
            change = self._change(request.path, body, origin)
        except StripeRequestError as exc:
            return _answer(exc.status, exc.code or "invalid_request", exc.message)
        if change is None:
            return _answer(404, "not_found", f"no route POST {request.path}")
        return change

    def _change(self, path: str, body: dict[str, Any], origin: Origin) -> SandboxResponse | None:
        subscription = _SUBSCRIPTION.match(path)
        if subscription:
            found = self._held(self.billing.subscriptions, subscription.group(1), "subscription")
            action: Callable[[dict[str, Any], Origin], dict[str, Any]] = {
                "cancel": self.billing.cancel,
                "pause": self.billing.pause,
                "resume": self.billing.resume,
                "past_due": self.billing.fail_renewal,
            }[subscription.group(2)]
            return self._recorded(lambda: action(found, origin))
        paying = _INVOICE_PAY.match(path)
        if paying:
            invoice = self._held(self.billing.invoices, paying.group(1), "invoice")
            return self._recorded(lambda: self.billing.pay(invoice, origin))
        if path == PREFIX + "invoices":
            return self._recorded(lambda: self._one_off_invoice(body, origin))
        if path == PREFIX + "refunds":
            return self._recorded(lambda: self.billing.refund(self._charge_to_refund(body), origin))
        delivering = _DELIVER.match(path)
        if delivering:
            event_id = delivering.group(1)
            if event_id not in {event["id"] for event in self.events.all()}:
                raise StripeRequestError(f"No such event: '{event_id}'", "id", "resource_missing", 404)
            status, answer = self.events.deliver(event_id)
            return SandboxResponse(
                200, {"object": None, "events": [event_id], "deliveries": {event_id: [status, answer]}}
            )
        return None

    def _recorded(self, change: Callable[[], dict[str, Any]]) -> SandboxResponse:
        """Make the change; answer with the changed object, the events it recorded and their deliveries."""
        before = len(self.events.all())
        changed = change()
        recorded = [event["id"] for event in self.events.all()[before:]]
        deliveries = self.events.flush()
        return SandboxResponse(
            200,
            {
                "object": changed,
                "events": recorded,
                "deliveries": {key: list(value) for key, value in deliveries.items()},
            },
        )

    @staticmethod
    def _held(store: dict[str, dict[str, Any]], object_id: str, kind: str) -> dict[str, Any]:
        found = store.get(object_id)
        if found is None:
            raise StripeRequestError(f"No such {kind}: '{object_id}'", "id", "resource_missing", 404)
        return found

    def _one_off_invoice(self, body: dict[str, Any], origin: Origin) -> dict[str, Any]:
        customer_id, amount = body.get("customer"), body.get("amount")
        livemode = body.get("livemode", False)
        if not isinstance(customer_id, str) or not customer_id.startswith("cus_"):
            raise StripeRequestError("customer must be a cus_ id", "customer")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 1:
            raise StripeRequestError("amount must be a positive integer (cents)", "amount")
        if not isinstance(livemode, bool):
            raise StripeRequestError("livemode must be true or false", "livemode")
        customer = self.billing.named_customer(customer_id, livemode)
        return self.billing.one_off_invoice(
            customer, amount, str(body.get("description") or "One-off charge"), origin
        )

    def _charge_to_refund(self, body: dict[str, Any]) -> dict[str, Any]:
        if isinstance(body.get("charge"), str):
            return self._held(self.billing.charges, body["charge"], "charge")
        if isinstance(body.get("invoice"), str):
            invoice = self._held(self.billing.invoices, body["invoice"], "invoice")
            charge = self.billing.charge_of(invoice)
            if charge is None:
                raise StripeRequestError(
                    f"Invoice {invoice['id']} has no successful payment to refund.", "invoice"
                )
            return charge
        raise StripeRequestError('expected {"charge": "ch_..."} or {"invoice": "in_..."}', "charge")


def _answer(status: int, error: str, message: str) -> SandboxResponse:
    return SandboxResponse(status, {"error": error, "message": message})
