"""`make smoke` against a deployed stack: refused in production and with live-mode keys, URLs resolved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.ops import smoke
from tools.ops.smoke import SmokeRefused, public_urls, refuse_unsafe

ROOT = Path(__file__).resolve().parents[3]


def test_a_production_stack_is_refused_unless_allowed() -> None:
    with pytest.raises(SmokeRefused, match="prod is a production environment"):
        refuse_unsafe("prod", ROOT, allow_production=False, environ={})
    assert refuse_unsafe("prod", ROOT, allow_production=True, environ={}) == "production"
    assert refuse_unsafe("staging", ROOT, allow_production=False, environ={}) == "staging"


@pytest.mark.parametrize("key", ["sk_live_51Habcdef", "rk_live_51Habcdef"])
def test_a_live_mode_stripe_key_is_refused_even_when_production_is_allowed(key: str) -> None:
    with pytest.raises(SmokeRefused, match="STRIPE_API_KEY holds a live-mode Stripe key"):
        refuse_unsafe("staging", ROOT, allow_production=True, environ={"STRIPE_API_KEY": key})


def test_urls_come_from_the_base_url_and_the_catalog_paths() -> None:
    urls = public_urls("staging", "https://api-staging.example.com/")
    assert urls["stripe_webhook"] == "https://api-staging.example.com/v1/stripe/webhook"
    # A prefix route is reached at its directory (the ops console at /ops/).
    assert urls["ops_console"] == "https://api-staging.example.com/ops/"
    assert set(urls) == {"stripe_webhook", "create_checkout", "support_request", "ops_console"}


def test_urls_come_from_the_stack_outputs() -> None:
    asked: list[list[str]] = []

    def run(argv: list[str]) -> str:
        asked.append(argv)
        return json.dumps(
            {"publicEndpoints": {"stripe_webhook": "https://api-qa.example.com/v1/stripe/webhook"}}
        )

    assert public_urls("qa", None, run) == {"stripe_webhook": "https://api-qa.example.com/v1/stripe/webhook"}
    assert asked == [["pulumi", "stack", "output", "--json", "--stack", "qa"]]
    with pytest.raises(SmokeRefused, match="no publicEndpoints output"):
        public_urls("qa", None, lambda _argv: "{}")


def test_refusals_exit_2_before_any_request(capsys: pytest.CaptureFixture[str]) -> None:
    assert smoke.main(["--stack", "prod", "--base-url", "https://api.example.com"]) == smoke.EXIT_REFUSED
    assert "refused: prod is a production environment" in capsys.readouterr().err


def test_the_deployed_target_says_it_is_not_built(capsys: pytest.CaptureFixture[str]) -> None:
    status = smoke.main(["--stack", "staging", "--base-url", "https://api-staging.example.com"])
    assert status == smoke.EXIT_UNAVAILABLE
    assert "not built yet" in capsys.readouterr().err
