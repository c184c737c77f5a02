"""Runtime settings from the environment. Secrets arrive as Secret Manager-backed env vars."""

import functools
import os
from dataclasses import dataclass


class MissingSetting(RuntimeError):
    pass


@dataclass(frozen=True)
class Settings:
    project_id: str
    environment: str
    hubspot_base_url: str
    zendesk_base_url: str
    resend_base_url: str
    stripe_api_base: str
    ops_email: str
    email_from: str
    app_url: str
    stripe_price_id: str
    provider_timeout_seconds: float


@functools.cache
def settings() -> Settings:
    env = os.environ.get
    return Settings(
        project_id=env("GOOGLE_CLOUD_PROJECT") or env("GCLOUD_PROJECT") or "demo-launchready",
        environment=env("LAUNCHREADY_ENV", "local"),
        hubspot_base_url=env("HUBSPOT_BASE_URL", "https://api.hubapi.com").rstrip("/"),
        # Zendesk has no global host: each account lives at https://<subdomain>.zendesk.com.
        zendesk_base_url=env("ZENDESK_BASE_URL", "").rstrip("/"),
        resend_base_url=env("RESEND_BASE_URL", "https://api.resend.com").rstrip("/"),
        stripe_api_base=env("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/"),
        ops_email=env("OPS_EMAIL", "ops@example.com"),
        email_from=env("EMAIL_FROM", "Launch Ready <no-reply@example.com>"),
        app_url=env("APP_URL", "http://127.0.0.1:8080").rstrip("/"),
        stripe_price_id=env("STRIPE_PRICE_ID", ""),
        provider_timeout_seconds=float(env("PROVIDER_TIMEOUT_SECONDS", "5")),
    )


def secret(name: str) -> str:
    """A secret env var; a clear error (not a KeyError deep in a handler) when it is unset."""
    value = os.environ.get(name, "")
    if not value:
        raise MissingSetting(f"{name} is not set (Secret Manager-backed environment variable)")
    return value
