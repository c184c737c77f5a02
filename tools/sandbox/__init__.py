"""A local stand-in for the provider APIs (HubSpot, Zendesk, Resend, Stripe Checkout, the App Store and
Google Play) that speaks their real paths, auth and error shapes, holds every exchange to the providers'
published contracts (OpenAPI documents in specs/, Apple's library models, Google's discovery document),
records every request and can inject failures."""

from .server import SandboxServer, start_sandbox

__all__ = ["SandboxServer", "start_sandbox"]
