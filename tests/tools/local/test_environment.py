"""The local functions' environment: the sandbox and generated secrets by default, the caller's
provider URLs, credentials and webhook secret when set (real test accounts, `stripe listen`)."""

from pathlib import Path

from tools.local import environment
from tools.local.layout import build_layout
from tools.project_files import read_catalog

CATALOG = read_catalog()
SANDBOX = "http://127.0.0.1:8603"


def functions_env(tmp_path: Path, caller: dict[str, str], name: str) -> dict[str, str]:
    layout = build_layout(CATALOG, state_dir=tmp_path, port_base=8600)
    shared = environment.shared_environment(layout, SANDBOX, caller)
    secrets = environment.local_secrets(environment.webhook_secret(layout, caller), caller)
    return environment.function_environment(CATALOG, CATALOG.function(name), layout, shared, secrets, caller)


def test_by_default_every_provider_is_the_sandbox_and_the_webhook_secret_is_kept(tmp_path: Path) -> None:
    env = functions_env(tmp_path, {}, "stripe_webhook")
    assert all(env[name] == SANDBOX for name in environment.PROVIDER_BASE_URLS)
    assert env["STRIPE_WEBHOOK_SECRET"].startswith("whsec_")
    # Generated once: a restart verifies webhooks signed before it.
    restarted = functions_env(tmp_path, {}, "stripe_webhook")
    assert restarted["STRIPE_WEBHOOK_SECRET"] == env["STRIPE_WEBHOOK_SECRET"]


def test_the_callers_provider_urls_credentials_and_webhook_secret_win(tmp_path: Path) -> None:
    caller = {"HUBSPOT_BASE_URL": "https://api.hubapi.com", "HUBSPOT_TOKEN": "pat-real",
              "STRIPE_WEBHOOK_SECRET": "whsec_from_stripe_listen"}
    crm = functions_env(tmp_path, caller, "crm_worker")
    assert crm["HUBSPOT_BASE_URL"] == "https://api.hubapi.com" and crm["HUBSPOT_TOKEN"] == "pat-real"
    assert crm["ZENDESK_BASE_URL"] == SANDBOX
    webhook = functions_env(tmp_path, caller, "stripe_webhook")
    assert webhook["STRIPE_WEBHOOK_SECRET"] == "whsec_from_stripe_listen"


def test_a_function_gets_only_the_secrets_the_catalog_grants_it(tmp_path: Path) -> None:
    env = functions_env(tmp_path, {"HUBSPOT_TOKEN": "pat-real"}, "email_worker")
    assert "RESEND_API_KEY" in env
    assert not {"HUBSPOT_TOKEN", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET"} & set(env)
