"""The providers the sandbox speaks for, each in its own module."""

from .base import Provider
from .hubspot import HubSpot
from .resend import Resend
from .stripe import Stripe
from .zendesk import Zendesk


def all_providers() -> list[Provider]:
    return [HubSpot(), Zendesk(), Resend(), Stripe()]


__all__ = ["HubSpot", "Provider", "Resend", "Stripe", "Zendesk", "all_providers"]
