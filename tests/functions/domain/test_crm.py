"""The CRM contact state of a user (domain/crm.py): tags, lifecycle stage and names, from the profile."""

from typing import Any

import pytest
from launchready.domain import crm


@pytest.mark.parametrize("billing, tags", [
    (None, {"signed_up"}),
    ({"status": "none"}, {"signed_up"}),
    ({"status": "active", "ever_paid": True}, {"signed_up", "customer"}),
    ({"status": "trialing", "ever_paid": True}, {"signed_up", "customer"}),
    # Not a customer before the first payment: a free trial, a subscription discounted to zero.
    ({"status": "trialing", "ever_paid": False}, {"signed_up", "trialing"}),
    ({"status": "active", "ever_paid": False}, {"signed_up"}),
    ({"status": "past_due", "payment_failed": True}, {"signed_up", "payment_failed"}),
    ({"status": "canceled", "refunded": True}, {"signed_up", "canceled", "refunded"}),
    ({"status": "unpaid", "disputed": True}, {"signed_up", "canceled", "disputed"}),
    ({"status": "incomplete"}, {"signed_up"}),
    # Paused (a trial without a payment method, or paused on request) resumes without a new checkout.
    ({"status": "paused", "ever_paid": True}, {"signed_up", "paused"}),
])
def test_tags_are_the_full_set_derived_from_billing(billing: dict[str, Any] | None, tags: set[str]) -> None:
    assert crm.tags_for(billing) == tags


def test_lifecycle_is_customer_once_ever_paid_even_after_canceling() -> None:
    assert crm.lifecycle_for(None) == "lead"
    assert crm.lifecycle_for({"status": "active", "ever_paid": False}) == "lead"
    assert crm.lifecycle_for({"status": "canceled", "ever_paid": True}) == "customer"


def test_contact_state_normalises_email_and_splits_the_display_name() -> None:
    state = crm.contact_state({"email": " Ada@Example.com ", "display_name": "Ada King Lovelace"})
    assert state is not None
    assert (state.email, state.firstname, state.lastname) == ("ada@example.com", "Ada", "King Lovelace")
    assert state.known_names() == {"firstname": "Ada", "lastname": "King Lovelace"}
    cher = crm.contact_state({"email": "a@example.com", "display_name": "Cher"})
    assert cher is not None and cher.lastname == "" and cher.known_names() == {"firstname": "Cher"}
    unnamed = crm.contact_state({"email": "a@example.com"})
    assert unnamed is not None and unnamed.known_names() == {}


@pytest.mark.parametrize("email", [None, "", "   ", "not-an-address"])
def test_a_profile_without_a_usable_email_has_no_contact_state(email: str | None) -> None:
    assert crm.contact_state({"email": email, "display_name": "Ada"}) is None
