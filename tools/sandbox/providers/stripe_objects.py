"""Stripe's objects as the API sends them to stripe-python 16.1.0 (2026-10-28.endive): pure dict builders.

Each has every field the endive SDK types declare present, in the document's shapes (docs/tools.md).
"""

import calendar
import secrets
import string
from datetime import UTC, datetime
from typing import Any

from .stripe_prices import SANDBOX_CURRENCY, price_object

_ALPHABET = string.ascii_letters + string.digits
# The Dashboard's placeholder for the card every sandbox payment uses (test card 4242 4242 4242 4242).
CARD = {
    "brand": "visa",
    "last4": "4242",
    "exp_month": 12,
    "exp_year": 2034,
    "country": "US",
    "funding": "credit",
    "network": "visa",
}


def new_id(prefix: str, length: int = 24) -> str:
    """`prefix` and `length` random letters and digits, like Stripe's ids."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


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


def customer(
    customer_id: str, *, created: int, livemode: bool, email: str | None = None, name: str | None = None
) -> dict[str, Any]:
    return {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": None,
        "customer_account": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": email,
        "invoice_prefix": customer_id.removeprefix("cus_")[:8].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": livemode,
        "metadata": {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }


def subscription_item(
    subscription_id: str,
    price_id: str,
    *,
    quantity: int,
    created: int,
    start: int,
    end: int,
    livemode: bool,
    metadata: dict[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id("si_", 14),
        "object": "subscription_item",
        "billing_thresholds": None,
        "created": created,
        "current_period_end": end,
        "current_period_start": start,
        "current_trial": None,
        "discounts": [],
        "metadata": metadata or {},
        "price": price_object(price_id, livemode),
        "quantity": quantity,
        "subscription": subscription_id,
        "tax_rates": [],
    }


def subscription(
    subscription_id: str,
    *,
    customer_id: str,
    items: list[dict[str, Any]],
    created: int,
    livemode: bool,
    trial_end: int | None,
    metadata: dict[str, str],
) -> dict[str, Any]:
    """A new subscription, charged automatically, in flexible billing mode (the default for
    subscriptions created through the API since 2025-09-30.clover:
    https://docs.stripe.com/changelog/clover/2025-09-30/billing-mode-default-flexible)."""
    return {
        "id": subscription_id,
        "object": "subscription",
        "application": None,
        "application_fee_percent": None,
        "automatic_tax": {"disabled_reason": None, "enabled": False, "liability": None},
        "billing_cycle_anchor": trial_end or created,
        "billing_cycle_anchor_config": None,
        "billing_mode": {
            "flexible": {"proration_discounts": "included"},
            "type": "flexible",
            "updated_at": created,
        },
        "billing_schedules": [],
        "billing_thresholds": None,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": None,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": SANDBOX_CURRENCY,
        "customer": customer_id,
        "customer_account": None,
        "days_until_due": None,
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": None,
        "discounts": [],
        "ended_at": None,
        "invoice_settings": {"account_tax_ids": None, "issuer": {"type": "self"}},
        "items": {
            "object": "list",
            "data": items,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={subscription_id}",
        },
        "latest_invoice": None,
        "livemode": livemode,
        "managed_payments": None,
        "metadata": metadata,
        "next_pending_invoice_item_invoice": None,
        "on_behalf_of": None,
        "pause_collection": None,
        "payment_settings": {
            "payment_method_options": None,
            "payment_method_types": None,
            "save_default_payment_method": "off",
        },
        "pending_invoice_item_interval": None,
        "pending_setup_intent": None,
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": "trialing" if trial_end else "active",
        "test_clock": None,
        "transfer_data": None,
        "trial_end": trial_end,
        "trial_settings": {"end_behavior": {"missing_payment_method": "create_invoice"}},
        "trial_start": created if trial_end else None,
    }


def line_item(
    invoice_id: str,
    *,
    amount: int,
    description: str,
    start: int,
    end: int,
    livemode: bool,
    price_id: str | None = None,
    quantity: int = 1,
    subscription_id: str | None = None,
    subscription_item_id: str | None = None,
) -> dict[str, Any]:
    """One invoice line: a subscription item's period (`parent.type` subscription_item_details) or a
    one-off amount (no parent, no pricing)."""
    parent = None
    if subscription_item_id:
        parent = {
            "type": "subscription_item_details",
            "invoice_item_details": None,
            "subscription_item_details": {
                "invoice_item": None,
                "proration": False,
                "proration_details": {"credited_items": None},
                "subscription": subscription_id,
                "subscription_item": subscription_item_id,
            },
        }
    pricing = None
    if price_id:
        pricing = {
            "type": "price_details",
            "unit_amount_decimal": str(amount // max(quantity, 1)),
            "price_details": {"price": price_id, "product": price_object(price_id)["product"]},
        }
    return {
        "id": new_id("il_", 24),
        "object": "line_item",
        "amount": amount,
        "currency": SANDBOX_CURRENCY,
        "description": description,
        "discount_amounts": [],
        "discountable": True,
        "discounts": [],
        "invoice": invoice_id,
        "livemode": livemode,
        "metadata": {},
        "parent": parent,
        "period": {"end": end, "start": start},
        "pretax_credit_amounts": [],
        "pricing": pricing,
        "quantity": quantity,
        "quantity_decimal": str(quantity),
        "subscription": subscription_id,
        "subtotal": amount,
        "taxes": [],
    }


def invoice(
    invoice_id: str,
    *,
    customer: dict[str, Any],
    lines: list[dict[str, Any]],
    created: int,
    billing_reason: str,
    livemode: bool,
    period: tuple[int, int],
    subscription_id: str | None = None,
    description: str | None = None,
) -> dict[str, Any]:
    """A finalized invoice, still open (the caller pays it or records the failed attempt); the number is
    the customer's invoice prefix and sequence. `payments` is not here: the API includes it only when
    asked (`expand[]=payments`)."""
    total = sum(line["amount"] for line in lines)
    number = f"{customer['invoice_prefix']}-{customer['next_invoice_sequence']:04d}"
    customer["next_invoice_sequence"] += 1
    parent = None
    if subscription_id:
        parent = {
            "type": "subscription_details",
            "quote_details": None,
            "subscription_details": {"metadata": {}, "subscription": subscription_id},
        }
    return {
        "id": invoice_id,
        "object": "invoice",
        "account_country": "US",
        "account_name": "Launch Ready sandbox",
        "account_tax_ids": None,
        "amount_due": total,
        "amount_overpaid": 0,
        "amount_paid": 0,
        "amount_paid_off_stripe": 0,
        "amount_remaining": total,
        "amount_shipping": 0,
        "application": None,
        "attempt_count": 0,
        "attempted": False,
        "auto_advance": False,
        "automatic_tax": {
            "disabled_reason": None,
            "enabled": False,
            "liability": None,
            "provider": None,
            "status": None,
        },
        "automatically_finalizes_at": None,
        "billing_reason": billing_reason,
        "collection_method": "charge_automatically",
        "created": created,
        "currency": SANDBOX_CURRENCY,
        "custom_fields": None,
        "customer": customer["id"],
        "customer_account": None,
        "customer_address": None,
        "customer_email": customer["email"],
        "customer_name": customer["name"],
        "customer_phone": None,
        "customer_shipping": None,
        "customer_tax_exempt": "none",
        "customer_tax_ids": [],
        "default_payment_method": None,
        "default_source": None,
        "default_tax_rates": [],
        "description": description,
        "discounts": [],
        "due_date": None,
        "effective_at": created,
        "ending_balance": 0,
        "footer": None,
        "from_invoice": None,
        "hosted_invoice_url": None,
        "invoice_pdf": None,
        "issuer": {"type": "self"},
        "last_finalization_error": None,
        "latest_revision": None,
        "lines": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/invoices/{invoice_id}/lines",
        },
        "livemode": livemode,
        "metadata": {},
        "next_payment_attempt": None,
        "number": number,
        "on_behalf_of": None,
        "parent": parent,
        "payment_settings": {
            "default_mandate": None,
            "payment_method_options": None,
            "payment_method_types": None,
        },
        "period_end": period[1],
        "period_start": period[0],
        "post_payment_credit_notes_amount": 0,
        "pre_payment_credit_notes_amount": 0,
        "receipt_number": None,
        "rendering": None,
        "shipping_cost": None,
        "shipping_details": None,
        "starting_balance": 0,
        "statement_descriptor": None,
        "status": "open",
        "status_transitions": {
            "finalized_at": created,
            "marked_uncollectible_at": None,
            "paid_at": None,
            "voided_at": None,
        },
        "subtotal": total,
        "subtotal_excluding_tax": total,
        "test_clock": None,
        "total": total,
        "total_discount_amounts": [],
        "total_excluding_tax": total,
        "total_pretax_credit_amounts": [],
        "total_taxes": [],
        "webhooks_delivered_at": created,
    }


def invoice_payment(
    invoice_id: str, payment_intent_id: str, *, amount: int, created: int, livemode: bool
) -> dict[str, Any]:
    """The invoice's payment through a PaymentIntent, `open` until it succeeds
    (https://docs.stripe.com/api/invoice-payment/object)."""
    return {
        "id": new_id("inpay_", 24),
        "object": "invoice_payment",
        "amount_paid": None,
        "amount_requested": amount,
        "created": created,
        "currency": SANDBOX_CURRENCY,
        "invoice": invoice_id,
        "is_default": True,
        "livemode": livemode,
        "payment": {"type": "payment_intent", "payment_intent": payment_intent_id},
        "status": "open",
        "status_transitions": {"canceled_at": None, "paid_at": None},
    }


def charge(
    *,
    customer: dict[str, Any],
    amount: int,
    created: int,
    livemode: bool,
    description: str | None,
    payment_intent_id: str,
    succeeded: bool,
) -> dict[str, Any]:
    """A card charge for `amount`; a declined one carries Stripe's `card_declined` failure
    (https://docs.stripe.com/declines/codes)."""
    charge_id = new_id("ch_", 24)
    outcome = {
        "advice_code": None,
        "network_advice_code": None,
        "network_decline_code": None,
        "network_status": "approved_by_network",
        "reason": None,
        "risk_level": "normal",
        "risk_score": 20,
        "seller_message": "Payment complete.",
        "type": "authorized",
    }
    if not succeeded:
        outcome.update(
            network_status="declined_by_network",
            reason="generic_decline",
            type="issuer_declined",
            seller_message="The bank did not return any further details with this decline.",
        )
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if succeeded else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": None,
        "balance_transaction": new_id("txn_", 24) if succeeded else None,
        "billing_details": {
            "address": {
                "city": None,
                "country": None,
                "line1": None,
                "line2": None,
                "postal_code": None,
                "state": None,
            },
            "email": customer["email"],
            "name": customer["name"],
            "phone": None,
            "tax_id": None,
        },
        "calculated_statement_descriptor": "LAUNCHREADY",
        "captured": succeeded,
        "created": created,
        "currency": SANDBOX_CURRENCY,
        "customer": customer["id"],
        "description": description,
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": None if succeeded else "card_declined",
        "failure_message": None if succeeded else "Your card was declined.",
        "fraud_details": {},
        "livemode": livemode,
        "metadata": {},
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": succeeded,
        "payment_intent": payment_intent_id,
        "payment_method": new_id("pm_", 24),
        "payment_method_details": {
            "type": "card",
            "card": {
                **CARD,
                "amount_authorized": amount if succeeded else None,
                "authorization_code": None,
                "checks": {
                    "address_line1_check": None,
                    "address_postal_code_check": None,
                    "cvc_check": "pass",
                },
                "fingerprint": customer["id"][-16:],
                "installments": None,
                "mandate": None,
                "network_token": {"used": False},
                "network_transaction_id": None,
                "regulated_status": "unregulated",
                "three_d_secure": None,
                "wallet": None,
            },
        },
        "receipt_email": customer["email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": None,
        "source_transfer": None,
        "statement_descriptor": None,
        "statement_descriptor_suffix": None,
        "status": "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": None,
    }
