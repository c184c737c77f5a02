"""The environment of each local function process: the cloud's, with emulators and sandbox in place.

A variable set by the caller wins; a function gets only the secrets the catalog grants it (docs/tools.md).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping

from components.catalog import Catalog, FunctionSpec
from components.function_env import catalog_environment
from tools.project_files import ROOT

from .layout import Layout

FUNCTIONS_SOURCE = ROOT / "functions_src"

PROVIDER_BASE_URLS = ("HUBSPOT_BASE_URL", "ZENDESK_BASE_URL", "RESEND_BASE_URL", "STRIPE_API_BASE")

# Credentials in the providers' real formats; the sandbox checks the format, nothing else.
FAKE_SECRETS = {
    "STRIPE_API_KEY": "sk_test_local_launchready",
    "HUBSPOT_TOKEN": "pat-local-launchready",
    "ZENDESK_EMAIL": "support@launchready.local",
    "ZENDESK_API_TOKEN": "local-zendesk-token",
    "RESEND_API_KEY": "re_local_launchready",
}

LOCAL_SETTINGS = {
    "LAUNCHREADY_ENV": "local",
    "OPS_EMAIL": "ops@launchready.local",
    "EMAIL_FROM": "Launch Ready <no-reply@launchready.local>",
    "APP_URL": "http://127.0.0.1:3000",
    "STRIPE_PRICE_ID": "price_local_pro",
    "PROVIDER_TIMEOUT_SECONDS": "5",
}


def webhook_secret(layout: Layout, caller_env: Mapping[str, str]) -> str:
    """The caller's STRIPE_WEBHOOK_SECRET (e.g. the one `stripe listen` prints), else a local one that
    is generated once and kept in the state directory so webhooks signed earlier still verify."""
    if caller_env.get("STRIPE_WEBHOOK_SECRET"):
        return caller_env["STRIPE_WEBHOOK_SECRET"]
    path = layout.webhook_secret_path
    if path.exists():
        stored = path.read_text().strip()
        if stored.startswith("whsec_"):
            return stored
    value = "whsec_" + secrets.token_hex(24)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def shared_environment(layout: Layout, sandbox_url: str, caller_env: Mapping[str, str]) -> dict[str, str]:
    """Settings every function sees (no secrets): project, emulator hosts, provider base URLs."""
    env = {
        "GOOGLE_CLOUD_PROJECT": layout.project_id,
        "GCLOUD_PROJECT": layout.project_id,
        "FIRESTORE_EMULATOR_HOST": layout.host(layout.firestore_port),
        "PUBSUB_EMULATOR_HOST": layout.host(layout.pubsub_port),
        "FIREBASE_AUTH_EMULATOR_HOST": layout.host(layout.auth_port),
        "PYTHONUNBUFFERED": "1",
    }
    for name, value in LOCAL_SETTINGS.items():
        env[name] = caller_env.get(name) or value
    for name in PROVIDER_BASE_URLS:
        env[name] = caller_env.get(name) or sandbox_url
    # The ops console lists the sandbox's recorded provider calls (local only).
    env["LAUNCHREADY_SANDBOX_URL"] = sandbox_url
    return env


def local_secrets(stripe_webhook_secret: str, caller_env: Mapping[str, str]) -> dict[str, str]:
    values = {name: caller_env.get(name) or fake for name, fake in FAKE_SECRETS.items()}
    values["STRIPE_WEBHOOK_SECRET"] = stripe_webhook_secret
    return values


def function_environment(
    catalog: Catalog,
    spec: FunctionSpec,
    layout: Layout,
    shared: Mapping[str, str],
    secret_values: Mapping[str, str],
    caller_env: Mapping[str, str],
) -> dict[str, str]:
    """The full environment of one function process."""
    # Start from the caller's environment (PATH, locale) without any secret the catalog knows of, so a
    # function that forgot to declare a secret fails here as it would in the cloud.
    known_secrets = set(secret_values)
    env = {name: value for name, value in caller_env.items() if name not in known_secrets}
    env.update(shared)
    env.update(catalog_environment(catalog, spec))
    env.update(spec.env)
    for name in spec.secrets:
        if name not in secret_values:
            raise SystemExit(
                f"catalog function {spec.name} needs secret {name}, which has no local value; "
                f"set {name} in the environment"
            )
        env[name] = secret_values[name]
    port = layout.function_ports[spec.name]
    env.update(
        {
            # What Cloud Run / Cloud Functions set for the process.
            "K_SERVICE": spec.resource_name,
            "K_REVISION": f"{spec.resource_name}-local",
            "FUNCTION_TARGET": spec.entry_point,
            "PORT": str(port),
            # functions-framework's gunicorn: request timeout and threads as the catalog's limits.
            "CLOUD_RUN_TIMEOUT_SECONDS": str(spec.limits.timeout_seconds),
            "THREADS": str(spec.limits.concurrency),
            "WORKERS": "1",
            "PYTHONPATH": str(FUNCTIONS_SOURCE),
        }
    )
    return env

