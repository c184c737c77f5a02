"""The sandbox's Stripe prices: every `price_...` id a request names exists, as a monthly recurring
per-unit price of SANDBOX_UNIT_AMOUNT SANDBOX_CURRENCY (real prices come from the Stripe dashboard per
environment). `price_object` is the Price as Stripe embeds it in a subscription item
(https://docs.stripe.com/api/prices/object; schema `price` of specs/stripe.json, 2026-05-27.dahlia:
`recurring` has had no `aggregate_usage` since 2025-03-31.basil)."""

import hashlib
from typing import Any

SANDBOX_UNIT_AMOUNT = 1900  # in the currency's smallest unit (cents)
SANDBOX_CURRENCY = "usd"
# Every sandbox price appears to have been created at this time (2024-01-01T00:00:00Z).
PRICES_CREATED = 1704067200


def product_id(price_id: str) -> str:
    """The same product for the same price on every call (`prod_` and 14 characters, like Stripe's)."""
    return "prod_" + hashlib.sha256(price_id.encode()).hexdigest()[:14]


def price_object(price_id: str, livemode: bool = False) -> dict[str, Any]:
    return {
        "id": price_id,
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": PRICES_CREATED,
        "currency": SANDBOX_CURRENCY,
        "custom_unit_amount": None,
        "livemode": livemode,
        "lookup_key": None,
        "metadata": {},
        "nickname": None,
        "product": product_id(price_id),
        "recurring": {"interval": "month", "interval_count": 1, "meter": None, "usage_type": "licensed"},
        "tax_behavior": "unspecified",
        "tiers_mode": None,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": SANDBOX_UNIT_AMOUNT,
        "unit_amount_decimal": str(SANDBOX_UNIT_AMOUNT),
    }
