"""Runtime settings, all from the environment: stack settings, Secret Manager-backed secrets, and
what the function needs from the function catalog (set by the Pulumi program and the local runner from
components/data/catalog.json, through components/function_env.py). The code reads no file of its own.

A catalog setting or secret that is not set is an error (MissingSetting), never a guessed default.
"""

import functools
import os
from dataclasses import dataclass
from datetime import timedelta

# The catalog's facts a function receives; components/function_env.py writes the same names.
TIMEOUT_SECONDS = "LAUNCHREADY_TIMEOUT_SECONDS"  # the function's own timeout
PUBLISHES = "LAUNCHREADY_PUBLISHES"  # the topics it may publish to, comma-separated
MAX_DELIVERY_ATTEMPTS = "LAUNCHREADY_MAX_DELIVERY_ATTEMPTS"  # of its push subscription
MAX_BACKOFF_SECONDS = "LAUNCHREADY_MAX_BACKOFF_SECONDS"  # the longest gap between two redeliveries
FUNCTIONS = "LAUNCHREADY_FUNCTIONS"  # every function's name, comma-separated (the ops console)


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


def _catalog_setting(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise MissingSetting(f"{name} is not set (a catalog setting: components/function_env.py)")
    return value


def _names(name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in _catalog_setting(name).split(",") if part.strip())


def in_flight() -> timedelta:
    """How long an attempt of this function may still be running: twice its timeout. A repeat that finds
    the work claimed more recently than this backs off; past it, the earlier attempt has died."""
    return timedelta(seconds=2 * int(_catalog_setting(TIMEOUT_SECONDS)))


def publishes() -> tuple[str, ...]:
    """The topics this function may publish to (and is granted roles/pubsub.publisher on)."""
    return _names(PUBLISHES)


def max_delivery_attempts() -> int:
    """The delivery attempt after which Pub/Sub moves this worker's message to `<topic>-dlq`."""
    return int(_catalog_setting(MAX_DELIVERY_ATTEMPTS))


def max_backoff_seconds() -> float:
    """The longest wait Pub/Sub (or Eventarc) puts between two deliveries of this function's messages."""
    return float(_catalog_setting(MAX_BACKOFF_SECONDS))


def function_names() -> tuple[str, ...]:
    """The name of every function of the stack (the ops console lists each)."""
    return _names(FUNCTIONS)
