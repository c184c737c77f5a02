"""The providers the sandbox speaks for, each in its own module."""

from ..clock import SandboxClock
from .app_store import AppStore
from .base import Provider
from .google_play import GooglePlay
from .hubspot import HubSpot
from .resend import Resend
from .store import StoreProvider
from .stripe import Stripe
from .zendesk import Zendesk


def all_providers(clock: SandboxClock | None = None) -> list[Provider]:
    """Every provider, sharing one clock."""
    clock = clock or SandboxClock()
    return [HubSpot(clock), Zendesk(clock), Resend(clock), Stripe(clock), AppStore(clock), GooglePlay(clock)]


__all__ = ["AppStore", "GooglePlay", "HubSpot", "Provider", "Resend", "StoreProvider", "Stripe", "Zendesk",
           "all_providers"]
