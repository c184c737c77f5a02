"""A local stand-in for the provider APIs (HubSpot, Zendesk, Resend, Stripe Checkout) that speaks
their real paths, auth and error shapes, holds every exchange to the providers' published OpenAPI
documents (specs/), records every request and can inject failures."""

from .server import SandboxServer, start_sandbox

__all__ = ["SandboxServer", "start_sandbox"]
