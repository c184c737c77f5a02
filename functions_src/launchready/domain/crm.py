"""A user's CRM contact state (lifecycle stage, complete tag set, names) derived from `users/{uid}`.

Pure functions of the user document: the same document always gives the same state, so a sync that
arrives late, twice or out of order converges on the same contact.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CUSTOMER_STATUSES = frozenset({"active", "trialing"})
CANCELED_STATUSES = frozenset({"canceled", "unpaid"})
# Added to the contact of a deleted account (user_deleted's CRM update).
ACCOUNT_DELETED_TAG = "account_deleted"


@dataclass(frozen=True)
class ContactState:
    email: str
    lifecycle_stage: str
    tags: frozenset[str]
    firstname: str = ""
    lastname: str = ""

    def known_names(self) -> dict[str, str]:
        """firstname / lastname when known: an empty value would clear what sales typed into the CRM."""
        return {name: value for name, value in (("firstname", self.firstname), ("lastname", self.lastname))
                if value}


def tags_for(billing: Mapping[str, Any] | None) -> frozenset[str]:
    """The complete tag set of a user, from the `billing` map billing_worker maintains."""
    billing = billing or {}
    status = billing.get("status") or "none"
    tags = {"signed_up"}
    # A customer is someone who has paid (billing_state.proves_payment), as for the lifecycle stage:
    # a free trial or a subscription discounted to zero is not one yet.
    if status in CUSTOMER_STATUSES and billing.get("ever_paid"):
        tags.add("customer")
    elif status == "trialing":
        tags.add("trialing")
    if billing.get("payment_failed"):
        tags.add("payment_failed")
    if status in CANCELED_STATUSES:
        tags.add("canceled")
    elif status == "paused":
        tags.add("paused")
    if billing.get("refunded"):
        tags.add("refunded")
    if billing.get("disputed"):
        tags.add("disputed")
    return frozenset(tags)


def lifecycle_for(billing: Mapping[str, Any] | None) -> str:
    # `ever_paid` never goes back to false, so the stage never moves backwards (HubSpot resists that).
    return "customer" if (billing or {}).get("ever_paid") else "lead"


def split_name(display_name: str | None) -> tuple[str, str]:
    """First word as the firstname, the rest as lastname (a single word is a first name)."""
    parts = (display_name or "").split(maxsplit=1)
    return (parts[0] if parts else "", parts[1] if len(parts) > 1 else "")


def contact_email(user: Mapping[str, Any]) -> str | None:
    """The profile's email address as the CRM keys it (trimmed, lower case); None without a usable one."""
    email = str(user.get("email") or "").strip().lower()
    return email if "@" in email else None


def contact_state(user: Mapping[str, Any]) -> ContactState | None:
    """The contact state of a `users/{uid}` document; None when it has no usable email address."""
    email = contact_email(user)
    if email is None:
        return None
    billing = user.get("billing")
    firstname, lastname = split_name(user.get("display_name"))
    return ContactState(email=email, lifecycle_stage=lifecycle_for(billing), tags=tags_for(billing),
                        firstname=firstname, lastname=lastname)
