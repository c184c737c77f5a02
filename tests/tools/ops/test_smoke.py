"""`make smoke` against a deployed stack: refused in production and with live-mode keys, URLs resolved,
the webhook secret and web API key found (never printed), unreadable outcomes reported as not checked.

The journey itself on the deployed code path runs against `make up` in tests/e2e/test_local_stack.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.stack_config import StackConfig
from tools.exit_codes import ExitCode
from tools.journey.deployed_stack import DeployedStack, DeployedTarget
from tools.journey.steps import Journey, Step, run_steps
from tools.journey.target import NotChecked
from tools.ops import smoke
from tools.ops.smoke import SmokeRefused, SmokeUnavailable, deployed_target, public_urls, refuse_unsafe
from tools.project_files import read_catalog

ROOT = Path(__file__).resolve().parents[3]


def test_a_production_stack_is_refused_unless_allowed() -> None:
    with pytest.raises(SmokeRefused, match="prod is a production environment"):
        refuse_unsafe("prod", ROOT, allow_production=False, environ={})
    assert refuse_unsafe("prod", ROOT, allow_production=True, environ={}).environment == "production"
    assert refuse_unsafe("staging", ROOT, allow_production=False, environ={}).environment == "staging"


@pytest.mark.parametrize("key", ["sk_live_51Habcdef", "rk_live_51Habcdef"])
def test_a_live_mode_stripe_key_is_refused_even_when_production_is_allowed(key: str) -> None:
    with pytest.raises(SmokeRefused, match="STRIPE_API_KEY holds a live-mode Stripe key"):
        refuse_unsafe("staging", ROOT, allow_production=True, environ={"STRIPE_API_KEY": key})


def test_urls_come_from_the_base_url_and_the_catalog_paths() -> None:
    urls = public_urls("staging", "https://api-staging.example.com/")
    assert urls["stripe_webhook"] == "https://api-staging.example.com/v1/stripe/webhook"
    # A prefix route is reached at its directory (the ops console at /ops/).
    assert urls["ops_console"] == "https://api-staging.example.com/ops/"
    assert set(urls) == {spec.name for spec in read_catalog().public_http}
    assert {"stripe_webhook", "create_checkout", "support_request", "ops_console"} <= set(urls)


def test_urls_come_from_the_stack_outputs() -> None:
    asked: list[list[str]] = []

    def run(argv: list[str]) -> str:
        asked.append(argv)
        return json.dumps(
            {"publicEndpoints": {"stripe_webhook": "https://api-qa.example.com/v1/stripe/webhook"}}
        )

    assert public_urls("qa", None, run) == {"stripe_webhook": "https://api-qa.example.com/v1/stripe/webhook"}
    assert asked == [["pulumi", "stack", "output", "--json", "--stack", "qa"]]
    with pytest.raises(SmokeUnavailable, match="no publicEndpoints output"):
        public_urls("qa", None, lambda _argv: "{}")


def test_no_pulumi_cli_and_no_base_url_is_the_environment_not_the_input(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(smoke.shutil, "which", lambda _name: None)
    monkeypatch.setattr(smoke, "refuse_unsafe", lambda *_args: None)

    assert smoke.run(stack="staging") == ExitCode.ENVIRONMENT
    assert "unavailable: no --base-url and no Pulumi CLI" in capsys.readouterr().err


def test_refusals_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.run(stack="prod", base_url="https://api.example.com") == ExitCode.USAGE
    assert "refused: prod is a production environment" in capsys.readouterr().err


URLS = {
    "stripe_webhook": "https://api-staging.example.com/v1/stripe/webhook",
    "create_checkout": "https://api-staging.example.com/v1/checkout",
    "support_request": "https://api-staging.example.com/v1/support",
}
WEB_API_KEY = "AIza" + "x" * 35


def staging(**overrides: object) -> StackConfig:
    config = refuse_unsafe("staging", ROOT, allow_production=False, environ={})
    return config.model_copy(update=overrides)


def no_secret_manager(name: str) -> str:
    raise PermissionError(f"denied: {name}")


def test_the_webhook_secret_comes_from_the_environment_else_secret_manager() -> None:
    config = staging(firebase_web_api_key=WEB_API_KEY)
    from_env = deployed_target(config, URLS, {"STRIPE_WEBHOOK_SECRET": "whsec_env"}, no_secret_manager)
    assert from_env.webhook_secret == "whsec_env"
    asked: list[str] = []

    def access(name: str) -> str:
        asked.append(name)
        if name.endswith("/STRIPE_WEBHOOK_SECRET/versions/latest"):
            return "whsec_stored"
        raise PermissionError(name)

    assert deployed_target(config, URLS, {}, access).webhook_secret == "whsec_stored"
    assert asked[0] == "projects/launch-ready-staging/secrets/STRIPE_WEBHOOK_SECRET/versions/latest"


def test_provider_secrets_come_from_the_environment_else_secret_manager_and_gaps_are_named() -> None:
    config = staging(firebase_web_api_key=WEB_API_KEY)
    stored = {"HUBSPOT_TOKEN": "pat-stored", "RESEND_API_KEY": "re_stored",
              "STRIPE_API_KEY": "sk_test_stored"}

    def access(name: str) -> str:
        secret = name.split("/")[3]
        if secret in stored:
            return stored[secret]
        raise PermissionError(name)

    said: list[str] = []
    env = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "ZENDESK_EMAIL": "agent@example.com"}
    target = deployed_target(config, URLS, env, access, say=said.append)
    assert target.providers is not None
    assert dict(target.providers.secrets) == {
        "HUBSPOT_TOKEN": "pat-stored", "RESEND_API_KEY": "re_stored", "ZENDESK_EMAIL": "agent@example.com"}
    assert target.stripe_api_key == "sk_test_stored"
    assert target.providers.zendesk_base_url == config.zendesk_base_url
    assert said == ["provider reads without: ZENDESK_API_TOKEN (PermissionError) "
                    "(those outcomes will be listed as not checked)"]
    assert "pat-stored" not in repr(target) and "re_stored" not in repr(target)


def test_an_environment_whose_stripe_key_is_live_mode_is_refused() -> None:
    def access(name: str) -> str:
        if name.endswith("/STRIPE_API_KEY/versions/latest"):
            return "rk_live_" + "x" * 24
        raise PermissionError(name)

    with pytest.raises(SmokeRefused, match="live-mode key") as caught:
        deployed_target(staging(firebase_web_api_key=WEB_API_KEY), URLS, {"STRIPE_WEBHOOK_SECRET": "whsec_x"},
                        access)
    assert "rk_live_" not in str(caught.value)


def test_the_test_user_gets_a_labelled_resend_test_inbox() -> None:
    target = DeployedTarget("p", URLS, WEB_API_KEY, "whsec_x")
    first, second = target.test_address(), target.test_address()
    assert first.startswith("delivered+smoke-") and first.endswith("@resend.dev") and first != second
    own = DeployedTarget("p", URLS, WEB_API_KEY, "whsec_x", test_inbox="qa@staging.example.org")
    assert own.test_address().startswith("qa+smoke-")
    for bad in ("qa+x@example.org", "no-at-sign", "qa@localhost"):
        with pytest.raises(ValueError, match="test inbox"):
            DeployedTarget("p", URLS, WEB_API_KEY, "whsec_x", test_inbox=bad)


def test_an_unreadable_secret_is_unavailable_and_no_secret_is_shown() -> None:
    config = staging(firebase_web_api_key=WEB_API_KEY)
    with pytest.raises(SmokeUnavailable, match="could not be read \\(PermissionError\\)"):
        deployed_target(config, URLS, {}, no_secret_manager)
    with pytest.raises(SmokeRefused, match="not a whsec_ signing secret") as caught:
        deployed_target(config, URLS, {"STRIPE_WEBHOOK_SECRET": "sk_test_wrongthing"}, no_secret_manager)
    assert "sk_test_wrongthing" not in str(caught.value)
    target = deployed_target(config, URLS, {"STRIPE_WEBHOOK_SECRET": "whsec_hidden"}, no_secret_manager)
    assert "whsec_hidden" not in repr(target) and WEB_API_KEY not in repr(target)


def test_a_stack_without_a_web_api_key_cannot_be_smoked() -> None:
    with pytest.raises(SmokeUnavailable, match="launchready:firebaseWebApiKey"):
        deployed_target(staging(), URLS, {"STRIPE_WEBHOOK_SECRET": "whsec_x"}, no_secret_manager)
    env = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "FIREBASE_WEB_API_KEY": WEB_API_KEY}
    assert deployed_target(staging(), URLS, env, no_secret_manager).web_api_key == WEB_API_KEY


def test_a_non_test_mode_stripe_key_and_missing_urls_are_refused() -> None:
    config = staging(firebase_web_api_key=WEB_API_KEY)
    env = {"STRIPE_WEBHOOK_SECRET": "whsec_x", "STRIPE_API_KEY": "pk_test_publishable"}
    with pytest.raises(SmokeRefused, match="not a test-mode key"):
        deployed_target(config, URLS, env, no_secret_manager)
    del env["STRIPE_API_KEY"]
    with pytest.raises(SmokeRefused, match="no public URL for support_request"):
        deployed_target(config, {k: v for k, v in URLS.items() if k != "support_request"}, env)


def test_missing_secret_is_an_environment_problem_after_the_checks(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("FIREBASE_WEB_API_KEY", WEB_API_KEY)
    monkeypatch.setattr(smoke, "_access_secret", no_secret_manager)
    monkeypatch.setattr(smoke, "unreachable", lambda urls: [])  # the entry points answer their health check
    status = smoke.run(stack="staging", base_url="https://api-staging.example.com")
    assert status == ExitCode.ENVIRONMENT
    assert "unavailable: no STRIPE_WEBHOOK_SECRET in the environment" in capsys.readouterr().err


def test_provider_reads_of_a_deployed_stack_are_not_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "launch-ready-staging")
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # no request is made below
    target = DeployedTarget("launch-ready-staging", URLS, WEB_API_KEY, "whsec_x")
    stack = DeployedStack(target, {})
    try:
        for read in (
            lambda: stack.contact("a@example.com"),
            lambda: stack.emails_to("a@example.com"),
            lambda: stack.tickets("SR-ABC123"),
            stack.provider_call_count,
            lambda: stack.checkout_session("cs_test_x"),  # no STRIPE_API_KEY
        ):
            with pytest.raises(NotChecked):
                read()
    finally:
        stack.close()


def test_a_run_with_unchecked_outcomes_is_not_a_pass() -> None:
    journey = Journey(stack=None)  # type: ignore[arg-type]  # the steps below do not touch it

    def partly() -> str:
        journey.readable("the Zendesk ticket", lambda: (_ for _ in ()).throw(NotChecked("no credentials")))
        return "reference SR-ABC123"

    lines: list[str] = []
    assert run_steps(
        journey, [Step("checked", lambda: "ok", "-"), Step("partly", partly, "-")], None, lines.append
    ) == ExitCode.NOT_ALL_CHECKED
    output = "\n".join(lines)
    assert "○ not checked: the Zendesk ticket: no credentials" in output
    assert "not a full pass" in output and "All steps passed" not in output
    lines.clear()
    assert run_steps(Journey(stack=None), [Step("checked", lambda: "ok", "-")], None, lines.append) == 0  # type: ignore[arg-type]
    assert lines[-1].startswith("\nAll steps passed")


def test_a_signer_service_account_is_passed_to_the_admin_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "STRIPE_WEBHOOK_SECRET": "whsec_x",
        "FIREBASE_SERVICE_ACCOUNT_ID": "smoke@p.iam.gserviceaccount.com",
    }
    target = deployed_target(staging(firebase_web_api_key=WEB_API_KEY), URLS, env, no_secret_manager)
    assert target.signer_service_account == "smoke@p.iam.gserviceaccount.com"
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", "127.0.0.1:9")  # no request is made below
    stack = DeployedStack(target, {})
    try:
        assert stack._app.options.get("serviceAccountId") == "smoke@p.iam.gserviceaccount.com"  # pyright: ignore[reportPrivateUsage]
    finally:
        stack.close()


def test_without_deployer_credentials_only_what_the_user_and_the_providers_see_is_read() -> None:
    target = DeployedTarget("launch-ready-staging", URLS, WEB_API_KEY, "whsec_x", deployer=False)
    stack = DeployedStack(target, {})
    try:
        assert stack._app is None and stack._db is None  # pyright: ignore[reportPrivateUsage]
        with pytest.raises(NotChecked, match="deployer"):
            stack.get_document("events/stripe:evt_1")
        with pytest.raises(NotChecked, match="notifications records"):
            stack.emails_to("delivered+smoke-1@resend.dev")
    finally:
        stack.close()


def test_smoke_without_application_default_credentials_says_so(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smoke, "deployer_credentials", lambda: False)
    monkeypatch.setattr(smoke, "_access_secret", no_secret_manager)
    monkeypatch.setattr(smoke, "unreachable", lambda urls: [])
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    monkeypatch.setenv("FIREBASE_WEB_API_KEY", WEB_API_KEY)
    lines: list[str] = []
    status = smoke.run(stack="staging", base_url="https://api-staging.example.com", out=lines.append)
    assert status == ExitCode.ENVIRONMENT
    assert any(line.startswith("no deployer credentials (Application Default Credentials)") for line in lines)


def test_every_bad_input_is_refused_at_once_before_anything_is_read(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smoke, "_access_secret", lambda name: pytest.fail(f"read {name}"))
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "notwhsec")
    monkeypatch.setenv("STRIPE_API_KEY", " sk_live_x")
    status = smoke.run(stack=" ", base_url="notaurl", test_inbox="ops@example.com")
    assert status == ExitCode.USAGE
    err = capsys.readouterr().err
    refusals = [line for line in err.splitlines() if line.startswith("refused: ")]
    assert len(refusals) == 5, refusals
    assert "STACK is empty" in refusals[0] and "BASE_URL 'notaurl'" in refusals[1]
    assert "example.com, which Resend refuses (422)" in refusals[2]
    assert "STRIPE_API_KEY holds a live-mode Stripe key" in refusals[3]
    assert "STRIPE_WEBHOOK_SECRET in the environment is not a whsec_" in refusals[4]
    assert "notwhsec" not in err and "sk_live_x" not in err


@pytest.mark.parametrize("inbox", [
    "bad", "a+b@example.org", "qa@test.com", "two words@x.org", "a@@resend.dev", "a@resend.dev@x.io", "a@.",
    "a@x..", "a@-.-", "delivered@resend.dev,evil@x.io", "a\n@x.org", "qa@example.com.", "qa@mail.example.com",
])
def test_a_test_inbox_that_is_not_a_plain_address_resend_accepts_is_bad_input(inbox: str) -> None:
    assert smoke.input_problems("staging", None, inbox, {})
    good = smoke.input_problems("staging", "https://api-staging.example.com/", "qa@staging.example.org", {})
    assert good == []


@pytest.mark.parametrize("base_url", [
    "http://[::1", "http://127.0.0.1:99999", "http://127.0.0.1:abc", "http://127.0.0.1 x", "ftp://x.org",
    "https://user:secret@api.example.org", "https://api.example.org/?q=1",
])
def test_a_base_url_that_is_not_a_plain_public_url_is_bad_input(base_url: str) -> None:
    [problem] = smoke.input_problems("staging", base_url, "delivered@resend.dev", {})
    assert "secret" not in problem  # a credential in the URL is never echoed


@pytest.mark.parametrize("value", [" sk_live_x", "pk_live_x", "rk_live_abc"])
def test_live_mode_keys_are_refused_however_they_are_written(value: str) -> None:
    with pytest.raises(SmokeRefused, match="live-mode Stripe key"):
        refuse_unsafe("staging", ROOT, False, {"SOME_KEY": value})


def test_a_target_that_does_not_answer_its_health_check_is_unavailable_before_any_step(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(smoke, "deployer_credentials", lambda: True)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", "whsec_x")
    monkeypatch.setenv("FIREBASE_WEB_API_KEY", WEB_API_KEY)
    monkeypatch.setattr(smoke, "_access_secret", no_secret_manager)
    lines: list[str] = []
    status = smoke.run(stack="staging", base_url="http://127.0.0.1:9", out=lines.append)
    assert status == ExitCode.ENVIRONMENT
    err = capsys.readouterr().err
    assert "unavailable: no health answer from " in err and "create_checkout: ConnectionError" in err
    assert not any(line.startswith("1. ") for line in lines)  # no step ran


def test_a_local_smoke_without_a_running_stack_is_unavailable(tmp_path: Path) -> None:
    lines: list[str] = []
    status = smoke.run(endpoints=tmp_path / "endpoints.json", out=lines.append)
    assert status == ExitCode.ENVIRONMENT
    assert "is the stack running?" in lines[0]


def test_a_query_string_credential_is_redacted_from_a_step_error() -> None:
    journey = Journey(stack=None)  # type: ignore[arg-type]

    def fails() -> str:
        raise ConnectionError("https://identitytoolkit.googleapis.com/v1/accounts:signUp?key=AIzaX failed")

    lines: list[str] = []
    assert run_steps(journey, [Step("sign-up", fails, "-")], None, lines.append) == 1
    assert "AIzaX" not in "\n".join(lines) and "key=[redacted]" in "\n".join(lines)
