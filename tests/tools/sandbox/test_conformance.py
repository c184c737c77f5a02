"""The sandbox holds every exchange to the providers' published OpenAPI documents: conforming requests
reach the provider, each kind of violation is rejected in that provider's own error shape, and an
answer that breaks the document is a loud 500."""

import base64
import json
from email.message import Message
from typing import Any
from urllib.parse import urlencode

import pytest

from tools.sandbox.app import Sandbox
from tools.sandbox.messages import SandboxRequest, SandboxResponse, parse_body

AUTH = {
    "hubspot": "Bearer pat-na1-test-token",
    "zendesk": "Basic " + base64.b64encode(b"agent@example.com/token:zd-secret").decode(),
    "resend": "Bearer re_test_key",
    "stripe": "Bearer sk_test_sandbox123",
}
FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def sandbox(held: Sandbox) -> Sandbox:
    """Here, the in-process sandbox (tests/tools/sandbox/conftest.py)."""
    return held


def call(
    sandbox: Sandbox,
    provider: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> SandboxResponse:
    message = Message()
    message["Authorization"] = AUTH[provider]
    if isinstance(body, (dict, list)) and provider != "stripe":
        raw, message["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif isinstance(body, (dict, list)):
        raw, message["Content-Type"] = urlencode(body).encode(), FORM
    elif isinstance(body, str):
        raw, message["Content-Type"] = body.encode(), FORM if provider == "stripe" else "application/json"
    else:
        raw = b""
    for name, value in (headers or {}).items():
        message[name] = value
    request = SandboxRequest(method, path, query or {}, message, raw, "http://127.0.0.1:9")
    parse_body(request)
    return sandbox.dispatch(request).response


def upsert_input(email: str = "ada@example.com", **properties: Any) -> dict:
    return {"id": email, "idProperty": "email", "properties": {"lifecyclestage": "lead", **properties}}


def ticket(**changes: Any) -> dict:
    fields = {
        "subject": "Cannot log in",
        "comment": {"body": "Password rejected"},
        "requester": {"email": "ada@example.com", "name": "Ada"},
        "priority": "normal",
        "external_id": "SR-1",
        "tags": ["launchready"],
    }
    return {"ticket": {key: value for key, value in {**fields, **changes}.items() if value is not ...}}


def email(**changes: Any) -> dict:
    fields = {
        "from": "Launch Ready <no-reply@example.com>",
        "to": ["ada@example.com"],
        "subject": "We got your request",
        "html": "<p>Hi</p>",
    }
    return {key: value for key, value in {**fields, **changes}.items() if value is not ...}


CHECKOUT = (
    "mode=subscription&line_items[0][price]=price_123&line_items[0][quantity]=1"
    "&success_url=https://app.example.com/ok&cancel_url=https://app.example.com/no"
    "&client_reference_id=u1&metadata[uid]=u1&subscription_data[metadata][uid]=u1"
    "&allow_promotion_codes=true"
)


# ---- conforming requests reach the provider ------------------------------------------------------


def test_conforming_requests_pass_for_every_provider(sandbox: Sandbox) -> None:
    upsert = call(
        sandbox, "hubspot", "POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [upsert_input()]}
    )
    assert upsert.status == 200, upsert.body
    created = call(sandbox, "zendesk", "POST", "/api/v2/tickets.json", ticket())
    assert created.status == 201, created.body
    shown = call(sandbox, "zendesk", "GET", f"/api/v2/tickets/{created.body['ticket']['id']}.json")
    assert shown.status == 200, shown.body
    sent = call(sandbox, "resend", "POST", "/emails", email())
    assert sent.status == 200, sent.body
    fetched = call(sandbox, "resend", "GET", f"/emails/{sent.body['id']}")
    assert fetched.status == 200, fetched.body
    session = call(sandbox, "stripe", "POST", "/v1/checkout/sessions", CHECKOUT)
    assert session.status == 200, session.body
    again = call(
        sandbox,
        "stripe",
        "GET",
        f"/v1/checkout/sessions/{session.body['id']}",
        query={"expand[]": ["line_items"]},
    )
    assert again.status == 200, again.body


def test_the_dated_hubspot_path_is_checked_against_its_own_document(sandbox: Sandbox) -> None:
    hubspot = next(p for p in sandbox.providers if p.name == "hubspot")
    conformance = sandbox.conformance
    good = call_request("POST", "/crm/objects/2026-09/contacts/batch/upsert", {"inputs": [upsert_input()]})
    assert conformance.reject(hubspot, good) is None
    bad = call_request("POST", "/crm/objects/2026-09/contacts/batch/upsert", {"inputs": [{"id": "a@b.co"}]})
    rejected = conformance.reject(hubspot, bad)
    assert rejected is not None and rejected.status == 400
    assert rejected.body["category"] == "VALIDATION_ERROR" and "properties" in rejected.body["message"]
    gdpr = call_request(
        "POST",
        "/crm/objects/2026-09/contacts/gdpr-delete",
        {"objectId": "ada@example.com", "idProperty": "email"},
    )
    assert conformance.reject(hubspot, gdpr) is None
    assert (
        conformance.reject(
            hubspot,
            call_request("POST", "/crm/objects/2026-09/contacts/gdpr-delete", {"idProperty": "email"}),
        )
        is not None
    )


def call_request(method: str, path: str, body: Any) -> SandboxRequest:
    message = Message()
    message["Authorization"] = AUTH["hubspot"]
    message["Content-Type"] = "application/json"
    request = SandboxRequest(method, path, {}, message, json.dumps(body).encode(), "http://127.0.0.1:9")
    parse_body(request)
    return request


# ---- each kind of violation, per provider --------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "param"),
    [
        (CHECKOUT + "&colour=blue", 400, "parameter_unknown", "colour"),
        (CHECKOUT + "&line_items[0][colour]=blue", 400, "parameter_unknown", "line_items[0][colour]"),
        (CHECKOUT.replace("[quantity]=1", "[quantity]=one"), 400, None, "line_items[0][quantity]"),
        (CHECKOUT.replace("mode=subscription", "mode=rental"), 400, None, "mode"),
        (
            CHECKOUT.replace("allow_promotion_codes=true", "allow_promotion_codes=maybe"),
            400,
            None,
            "allow_promotion_codes",
        ),
        (
            CHECKOUT + "&line_items[1][adjustable_quantity][maximum]=3",
            400,
            "parameter_missing",
            "line_items[1][adjustable_quantity][enabled]",
        ),
    ],
)
def test_stripe_rejects_params_its_spec_does_not_allow(
    sandbox: Sandbox, body: str, status: int, code: str | None, param: str
) -> None:
    answer = call(sandbox, "stripe", "POST", "/v1/checkout/sessions", body)
    assert answer.status == status
    error = answer.body["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error.get("code") == code
    assert answer.headers["Stripe-Should-Retry"] == "false"
    assert sandbox.state()["checkout_sessions"] == []


def test_stripe_rejects_unknown_query_params_and_routes(sandbox: Sandbox) -> None:
    listed = call(
        sandbox, "stripe", "GET", "/v1/subscriptions", query={"customer": ["cus_1"], "colour": ["x"]}
    )
    assert listed.status == 400 and listed.body["error"]["param"] == "colour"
    limit = call(sandbox, "stripe", "GET", "/v1/checkout/sessions", query={"limit": ["lots"]})
    assert limit.status == 400 and limit.body["error"]["param"] == "limit"
    for method, path in (("POST", "/v1/charges/nope"), ("PUT", "/v1/checkout/sessions")):
        answer = call(sandbox, "stripe", method, path, "")
        assert answer.status == 404
        assert answer.body["error"]["message"].startswith("Unrecognized request URL")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "inputs"),
        ({"inputs": [{"idProperty": "email", "properties": {}}]}, "id"),
        ({"inputs": [{"id": "ada@example.com", "idProperty": "email"}]}, "properties"),
        ({"inputs": [upsert_input(signup_count=3)]}, "signup_count"),
        ("{not json", "deserialize"),
    ],
)
def test_hubspot_rejects_bodies_its_spec_does_not_allow(sandbox: Sandbox, body: Any, fragment: str) -> None:
    answer = call(sandbox, "hubspot", "POST", "/crm/v3/objects/contacts/batch/upsert", body)
    assert answer.status == 400
    assert answer.body["category"] == "VALIDATION_ERROR" and answer.body["correlationId"]
    assert fragment in answer.body["message"]
    assert sandbox.state()["contacts"] == []


def test_hubspot_unknown_route_is_a_404(sandbox: Sandbox) -> None:
    answer = call(sandbox, "hubspot", "POST", "/crm/v3/objects/contacts/batch/merge-all", {"inputs": []})
    assert answer.status == 404 and answer.body["category"] == "OBJECT_NOT_FOUND"


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        (ticket(comment=...), "comment", "BlankValue"),
        (ticket(priority="asap"), "priority", "InvalidValue"),
        (ticket(tags="launchready"), "tags", "InvalidValue"),
        (ticket(requester={"name": "No email"}), "email", "BlankValue"),
        ({"request": {}}, "ticket", "BlankValue"),
    ],
)
def test_zendesk_rejects_tickets_its_spec_does_not_allow(
    sandbox: Sandbox, body: dict, field: str, error: str
) -> None:
    answer = call(sandbox, "zendesk", "POST", "/api/v2/tickets.json", body)
    assert answer.status == 422
    assert answer.body["error"] == "RecordInvalid"
    assert answer.body["details"][field][0]["error"] == error
    assert sandbox.state()["tickets"] == []


def test_zendesk_bad_json_unknown_routes_and_ids(sandbox: Sandbox) -> None:
    assert call(sandbox, "zendesk", "POST", "/api/v2/tickets.json", "{oops").status == 400
    for method, path in (
        ("GET", "/api/v2/tickets/abc.json"),
        ("DELETE", "/api/v2/tickets.json"),
        ("GET", "/api/v2/macros.json"),
    ):
        answer = call(sandbox, "zendesk", method, path)
        assert answer.status == 404 and answer.body["error"] == "InvalidEndpoint"


@pytest.mark.parametrize(
    ("body", "status", "name"),
    [
        (email(to=...), 422, "missing_required_field"),
        (email(subject=...), 422, "missing_required_field"),
        (email(to=42), 422, "validation_error"),
        (email(to=[]), 422, "validation_error"),
        (email(tags="welcome"), 422, "validation_error"),
    ],
)
def test_resend_rejects_emails_its_spec_does_not_allow(
    sandbox: Sandbox, body: dict, status: int, name: str
) -> None:
    answer = call(sandbox, "resend", "POST", "/emails", body)
    assert (answer.status, answer.body["name"]) == (status, name)
    assert answer.body["statusCode"] == status
    assert sandbox.state()["emails"] == []


def test_resend_wrong_method_and_route(sandbox: Sandbox) -> None:
    assert call(sandbox, "resend", "PUT", "/emails", email()).status == 405
    assert call(sandbox, "resend", "POST", "/emails/abc/forward", email()).status == 404


def test_a_rejected_request_is_recorded_with_its_answer(sandbox: Sandbox) -> None:
    call(sandbox, "resend", "POST", "/emails", email(to=...))
    entry = sandbox.requests.entries("resend")[-1]
    assert entry["status"] == 422


# ---- answers are held to the documents too -------------------------------------------------------


BROKEN_ANSWERS = [
    (
        "stripe",
        "POST",
        "/v1/checkout/sessions",
        CHECKOUT,
        SandboxResponse(200, {"object": "checkout.session"}),
    ),
    (
        "hubspot",
        "POST",
        "/crm/v3/objects/contacts/batch/upsert",
        {"inputs": [upsert_input()]},
        SandboxResponse(200, {"status": "COMPLETE", "startedAt": "2026-01-01T00:00:00Z"}),
    ),
    ("zendesk", "POST", "/api/v2/tickets.json", ticket(), SandboxResponse(201, {"ticket": {"id": "one"}})),
    ("resend", "POST", "/emails", email(), SandboxResponse(200, {"id": 7})),
    (
        "stripe",
        "POST",
        "/v1/checkout/sessions",
        CHECKOUT,
        SandboxResponse(402, {"message": "no error object"}),
    ),
    (
        "stripe",
        "POST",
        "/v1/subscriptions",
        "customer=cus_A&items[0][price]=price_1",
        SandboxResponse(200, {"id": "sub_1", "object": "subscription", "status": "active"}),
    ),
    # The document's 204 "No content": a body there breaks it.
    (
        "hubspot",
        "POST",
        "/crm/objects/2026-09/contacts/gdpr-delete",
        {"objectId": "ada@example.com", "idProperty": "email"},
        SandboxResponse(204, {"status": "deleted"}),
    ),
]


@pytest.mark.parametrize(("provider", "method", "path", "body", "broken"), BROKEN_ANSWERS)
def test_an_answer_that_breaks_the_spec_is_a_loud_500(
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    provider: str,
    method: str,
    path: str,
    body: Any,
    broken: SandboxResponse,
) -> None:
    handler = next(p for p in sandbox.providers if p.name == provider)
    monkeypatch.setattr(handler, "handle", lambda request: broken)
    answer = call(sandbox, provider, method, path, body)
    assert answer.status == 500
    assert "sandbox_contract_violation" in json.dumps(answer.body) and answer.body["problems"]
    assert f"SANDBOX BUG: {provider} answer" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("provider", "method", "path", "body"),
    [
        ("stripe", "POST", "/v1/checkout/sessions", CHECKOUT),
        ("hubspot", "POST", "/crm/v3/objects/contacts/batch/upsert", {"inputs": [upsert_input()]}),
        ("zendesk", "POST", "/api/v2/tickets.json", ticket()),
    ],
)
@pytest.mark.parametrize("status", [400, 429, 500, 503])
def test_injected_error_answers_conform_to_the_spec(
    sandbox: Sandbox, provider: str, method: str, path: str, body: Any, status: int
) -> None:
    sandbox.faults.add({"provider": provider, "mode": "status", "status": status})
    answer = call(sandbox, provider, method, path, body)
    assert answer.status == status, answer.body


def test_stripe_subscription_cancel_and_update_are_checked_against_the_spec(sandbox: Sandbox) -> None:
    stripe = next(p for p in sandbox.providers if p.name == "stripe")

    def form(method: str, path: str, body: str) -> SandboxRequest:
        message = Message()
        message["Authorization"] = AUTH["stripe"]
        message["Content-Type"] = FORM
        return SandboxRequest(method, path, {}, message, body.encode(), "http://127.0.0.1:9")

    path = "/v1/subscriptions/sub_123"
    assert sandbox.conformance.reject(stripe, form("DELETE", path, "invoice_now=false&prorate=false")) is None
    assert sandbox.conformance.reject(stripe, form("POST", path, "cancel_at_period_end=true")) is None
    bad_cancel = sandbox.conformance.reject(stripe, form("DELETE", path, "at_period_end=true"))
    assert bad_cancel is not None and bad_cancel.body["error"]["param"] == "at_period_end"
    bad_update = sandbox.conformance.reject(stripe, form("POST", path, "cancel_at_period_end=soon"))
    assert bad_update is not None and bad_update.body["error"]["param"] == "cancel_at_period_end"


def test_every_subscription_answer_conforms_to_the_spec(sandbox: Sandbox) -> None:
    """Create (paid and in trial), retrieve, list in each status filter, schedule and unschedule the
    cancellation, cancel: each answer is a 200 (an answer breaking the `subscription` schema is a 500)."""
    def ok(method: str, path: str, body: str = "", query: dict[str, list[str]] | None = None) -> Any:
        answer = call(sandbox, "stripe", method, path, body or None, query=query)
        assert answer.status == 200, answer.body
        return answer.body

    paid = ok("POST", "/v1/subscriptions", "customer=cus_A&items[0][price]=price_1&items[0][quantity]=2")
    trial = ok("POST", "/v1/subscriptions", "customer=cus_A&items[0][price]=price_1&trial_period_days=7")
    assert paid["items"]["data"][0]["price"]["product"].startswith("prod_")
    assert trial["trial_start"] == trial["items"]["data"][0]["current_period_start"]
    assert trial["status"] == "trialing"
    ok("GET", f"/v1/subscriptions/{paid['id']}")
    ok("POST", f"/v1/subscriptions/{trial['id']}",
       "cancel_at_period_end=true&cancellation_details[comment]=bye")
    ok("POST", f"/v1/subscriptions/{trial['id']}", "cancel_at_period_end=false")
    ok("DELETE", f"/v1/subscriptions/{paid['id']}", "cancellation_details[feedback]=unused")
    ok("POST", f"/v1/subscriptions/{paid['id']}", "metadata[note]=closed")
    for status in (None, "all", "ended", "canceled", "active", "trialing"):
        query = {"customer": ["cus_A"], **({"status": [status]} if status else {})}
        listed = ok("GET", "/v1/subscriptions", query=query)
        assert listed["data"] or status == "active"


@pytest.mark.parametrize("path", [
    "/crm/v3/objects/contacts/gdpr-delete",
    "/crm/objects/2026-03/contacts/gdpr-delete",
    "/crm/objects/2026-09/contacts/gdpr-delete",
])
def test_gdpr_delete_answers_204_without_a_body(sandbox: Sandbox, path: str) -> None:
    answer = call(sandbox, "hubspot", "POST", path, {"objectId": "ada@example.com", "idProperty": "email"})
    assert (answer.status, answer.encoded()) == (204, b"")


def test_a_stripe_delete_is_checked_on_its_query_string(sandbox: Sandbox) -> None:
    """stripe-python sends a DELETE's parameters in the query string; they are held to the operation's
    body parameters, as Stripe reads them."""
    created = call(sandbox, "stripe", "POST", "/v1/subscriptions", "customer=cus_A&items[0][price]=price_1")
    path = f"/v1/subscriptions/{created.body['id']}"
    unknown = call(sandbox, "stripe", "DELETE", path, query={"at_period_end": ["true"]})
    assert unknown.status == 400 and unknown.body["error"]["param"] == "at_period_end"
    bad = call(sandbox, "stripe", "DELETE", path, query={"cancellation_details[feedback]": ["bored"]})
    assert bad.status == 400 and bad.body["error"]["param"] == "cancellation_details[feedback]"
    canceled = call(sandbox, "stripe", "DELETE", path, query={"cancellation_details[feedback]": ["unused"]})
    assert canceled.status == 200 and canceled.body["cancellation_details"]["feedback"] == "unused"
