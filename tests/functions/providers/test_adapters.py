"""The HubSpot, Zendesk and Resend adapters against the provider sandbox on 127.0.0.1 (real HTTP)."""

import base64
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import stripe
from launchready.platform import log
from launchready.platform.config import MissingSetting, settings
from launchready.platform.errors import PermanentError, QuotaExhausted, TransientError
from launchready.providers import hubspot, resend, zendesk
from launchready.providers.http import Failure, ProviderApi, Rule, classify, retry_after_seconds
from launchready.providers.hubspot import Contact

from tests.functions.helpers import BASE_URL_SETTINGS, Sandbox
from tools.sandbox.recorder import credential_digest

pytestmark = pytest.mark.runs_as("crm_worker", "support_worker", "email_worker")

TIMEOUT_SECONDS = 0.4
CORRELATION_ID = "corr-providers-0001"


@pytest.fixture
def sandbox(provider_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """The sandbox with every adapter pointed at it."""
    return provider_sandbox(
        *BASE_URL_SETTINGS,
        PROVIDER_TIMEOUT_SECONDS=str(TIMEOUT_SECONDS),
        EMAIL_FROM="Launch Ready <no-reply@example.com>",
        HUBSPOT_TOKEN="pat-na1-test-token",
        ZENDESK_EMAIL="agent@example.com",
        ZENDESK_API_TOKEN="zd-test-token",
        RESEND_API_KEY="re_test_key",
    )


def make_ticket(key: str = "support/SR-7F3K2Q", subject: str = "Cannot log in", **overrides: str) -> int:
    arguments = {
        "reference": "SR-7F3K2Q",
        "subject": subject,
        "body": "The app says my password is wrong.",
        "requester_email": "ada@example.com",
        "requester_name": "Ada Lovelace",
        "category": "Account access",
        "priority": "normal",
        "idempotency_key": key,
        "correlation_id": CORRELATION_ID,
        **overrides,
    }
    return zendesk.create_ticket(**arguments)


def send(key: str = "ack/SR-7F3K2Q", subject: str = "We got your request", **overrides: object) -> str:
    arguments: dict = {
        "to": "ada@example.com",
        "subject": subject,
        "html": "<p>Reference SR-7F3K2Q</p>",
        "text": "Reference SR-7F3K2Q",
        "idempotency_key": key,
        "correlation_id": CORRELATION_ID,
        "tags": {"kind": "support_ack"},
        **overrides,
    }
    return resend.send_email(**arguments)


def upsert(*contacts: Contact) -> list[str]:
    return hubspot.upsert_contacts(contacts, correlation_id=CORRELATION_ID)


ADA = Contact(
    email="Ada@Example.com",
    tags=frozenset({"signed_up", "customer"}),
    lifecycle_stage="customer",
    properties={"firstname": "Ada"},
)


# --- HubSpot ---------------------------------------------------------------------------------------


def test_hubspot_upsert_sends_the_real_request_and_returns_ids(sandbox: Sandbox) -> None:
    ids = upsert(ADA)
    contact = sandbox.state()["contacts"][0]
    assert ids == [contact["id"]]
    entry = sandbox.recorded("hubspot")[0]
    # HubSpot's date-based version 2026-09, not the /crm/v3/ path it stops supporting in September 2027.
    assert entry["method"] == "POST" and entry["path"] == "/crm/objects/2026-09/contacts/batch/upsert"
    assert entry["headers"]["Authorization"] == "Bearer [redacted]"
    assert entry["credential_sha256"] == credential_digest("Bearer pat-na1-test-token")
    assert entry["correlation_id"] == CORRELATION_ID
    assert entry["body"] == {
        "inputs": [
            {
                "idProperty": "email",
                "id": "ada@example.com",
                "properties": {
                    "firstname": "Ada",
                    "launchready_tags": "customer;signed_up",
                    "lifecyclestage": "customer",
                },
            }
        ]
    }


def test_hubspot_tags_are_the_full_set_every_time(sandbox: Sandbox) -> None:
    first = upsert(ADA)
    second = upsert(Contact(email="ada@example.com", tags=frozenset({"signed_up"}), lifecycle_stage="lead"))
    assert first == second  # same contact, updated in place
    properties = sandbox.state()["contacts"][0]["properties"]
    assert properties["launchready_tags"] == "signed_up"  # "customer" is gone, not merged back in
    assert properties["lifecyclestage"] == "customer"  # HubSpot only moves a lifecycle stage forward
    upsert(Contact(email="ada@example.com", tags=frozenset()))
    assert sandbox.state()["contacts"][0]["properties"]["launchready_tags"] == ""


def test_hubspot_accepts_plain_mappings_from_messages(sandbox: Sandbox) -> None:
    ids = hubspot.upsert_contacts(
        [{"email": "grace@example.com", "tags": ["signed_up"], "lifecycle_stage": "lead"}],
        correlation_id=CORRELATION_ID,
    )
    assert len(ids) == 1
    assert sandbox.state()["contacts"][0]["properties"]["email"] == "grace@example.com"


def test_hubspot_batches_are_split_at_hubspots_limit(sandbox: Sandbox) -> None:
    contacts = [Contact(email=f"user{n}@example.com") for n in range(hubspot.BATCH_LIMIT + 20)]
    ids = upsert(*contacts)
    assert len(set(ids)) == len(contacts)
    batch_sizes = [len(entry["body"]["inputs"]) for entry in sandbox.recorded("hubspot")]
    assert batch_sizes == [hubspot.BATCH_LIMIT, 20]


def test_hubspot_per_input_errors_of_a_207_are_permanent(sandbox: Sandbox) -> None:
    # "bad@example" passes the adapter's sanity check but not HubSpot's email validation.
    with pytest.raises(PermanentError) as failure:
        upsert(Contact(email="ok@example.com"), Contact(email="bad@example"))
    assert failure.value.provider == "hubspot"
    assert (failure.value.status, failure.value.code) == (207, "VALIDATION_ERROR")
    assert "1 of 2" in failure.value.detail
    # The valid input was applied; a redelivery upserts it again harmlessly.
    assert [c["properties"]["email"] for c in sandbox.state()["contacts"]] == ["ok@example.com"]


def test_hubspot_whole_batch_rejection_is_permanent(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError) as failure:
        upsert(Contact(email="bad@example"))
    assert (failure.value.status, failure.value.code) == (400, "VALIDATION_ERROR")


def test_hubspot_refuses_invalid_input_before_calling(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        upsert(Contact(email="ada@example.com", lifecycle_stage="vip"))
    with pytest.raises(ValueError):
        upsert(Contact(email="ada@example.com", tags=frozenset({"a;b"})))
    with pytest.raises(ValueError):
        upsert(Contact(email="ada@example.com"), Contact(email="ADA@example.com"))
    assert sandbox.recorded("hubspot") == []


def test_hubspot_missing_token_is_a_configuration_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HUBSPOT_TOKEN")
    with pytest.raises(MissingSetting):
        upsert(ADA)
    assert sandbox.recorded("hubspot") == []


# --- Zendesk ---------------------------------------------------------------------------------------


def test_zendesk_creates_a_ticket_with_the_real_request(sandbox: Sandbox) -> None:
    ticket_id = make_ticket()
    ticket = sandbox.state()["tickets"][0]
    assert ticket_id == ticket["id"]
    assert ticket["external_id"] == "SR-7F3K2Q"
    entry = sandbox.recorded("zendesk")[0]
    assert entry["path"] == "/api/v2/tickets.json"
    assert entry["status"] == 201 and entry["headers"]["Authorization"] == "Basic [redacted]"
    basic = base64.b64encode(b"agent@example.com/token:zd-test-token").decode()
    assert entry["credential_sha256"] == credential_digest(f"Basic {basic}")
    assert entry["idempotency_key"] == "support/SR-7F3K2Q"
    assert entry["correlation_id"] == CORRELATION_ID
    assert entry["body"] == {
        "ticket": {
            "subject": "Cannot log in",
            "comment": {"body": "The app says my password is wrong."},
            "requester": {"email": "ada@example.com", "name": "Ada Lovelace"},
            "external_id": "SR-7F3K2Q",
            "priority": "normal",
            "tags": ["launchready", "category_account_access"],
        }
    }


def test_zendesk_repeat_with_the_same_key_returns_the_original_ticket(sandbox: Sandbox) -> None:
    assert make_ticket() == make_ticket()
    assert len(sandbox.state()["tickets"]) == 1
    assert [entry["replayed"] for entry in sandbox.recorded("zendesk")] == [False, True]


def test_zendesk_same_key_different_body_is_permanent(sandbox: Sandbox) -> None:
    make_ticket()
    with pytest.raises(PermanentError) as failure:
        make_ticket(subject="Another problem")
    assert (failure.value.status, failure.value.code) == (400, "IdempotentRequestError")


def test_zendesk_validation_error_is_permanent_with_details(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError) as failure:
        make_ticket(requester_email="not-an-email")
    assert (failure.value.status, failure.value.code) == (422, "RecordInvalid")
    assert "requester" in failure.value.detail


def test_zendesk_lost_response_then_redelivery_makes_one_ticket(sandbox: Sandbox) -> None:
    sandbox.fault(provider="zendesk", mode="lost_response", seconds=TIMEOUT_SECONDS * 4)
    with pytest.raises(TransientError):
        make_ticket()
    assert len(sandbox.state()["tickets"]) == 1  # applied although the caller saw a timeout
    ticket_id = make_ticket()  # what Pub/Sub redelivery does
    assert [t["id"] for t in sandbox.state()["tickets"]] == [ticket_id]


def test_zendesk_without_base_url_is_a_configuration_error(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ZENDESK_BASE_URL", "")
    settings.cache_clear()
    with pytest.raises(MissingSetting):
        make_ticket()


# --- Resend ----------------------------------------------------------------------------------------


def test_resend_sends_the_real_request_and_returns_the_id(sandbox: Sandbox) -> None:
    email_id = send()
    assert sandbox.state()["emails"][0]["id"] == email_id
    entry = sandbox.recorded("resend")[0]
    assert entry["path"] == "/emails"
    assert entry["headers"]["Authorization"] == "Bearer [redacted]"
    assert entry["credential_sha256"] == credential_digest("Bearer re_test_key")
    assert entry["idempotency_key"] == "ack/SR-7F3K2Q"
    assert entry["correlation_id"] == CORRELATION_ID
    assert entry["body"] == {
        "from": "Launch Ready <no-reply@example.com>",
        "to": ["ada@example.com"],
        "subject": "We got your request",
        "html": "<p>Reference SR-7F3K2Q</p>",
        "text": "Reference SR-7F3K2Q",
        "tags": [{"name": "kind", "value": "support_ack"}],
    }


def test_resend_repeat_with_the_same_key_returns_the_same_id(sandbox: Sandbox) -> None:
    assert send() == send()
    assert len(sandbox.state()["emails"]) == 1


def test_resend_same_key_different_body_is_permanent(sandbox: Sandbox) -> None:
    send()
    with pytest.raises(PermanentError) as failure:
        send(subject="Something else")
    assert (failure.value.status, failure.value.code) == (409, "invalid_idempotent_request")


def test_resend_concurrent_idempotent_request_is_transient(sandbox: Sandbox) -> None:
    sandbox.fault(provider="resend", mode="status", status=409, code="concurrent_idempotent_requests")
    with pytest.raises(TransientError):
        send()
    assert sandbox.state()["emails"] == []


def test_resend_validation_error_is_permanent(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMAIL_FROM", "not an address")
    settings.cache_clear()
    with pytest.raises(PermanentError) as failure:
        send()
    assert (failure.value.status, failure.value.code) == (422, "validation_error")


def test_resend_lost_response_then_redelivery_sends_one_email(sandbox: Sandbox) -> None:
    sandbox.fault(provider="resend", mode="lost_response", seconds=TIMEOUT_SECONDS * 4)
    with pytest.raises(TransientError):
        send()
    email_id = send()
    assert [email["id"] for email in sandbox.state()["emails"]] == [email_id]


def test_resend_refuses_tags_resend_would_reject(sandbox: Sandbox) -> None:
    with pytest.raises(ValueError):
        send(tags={"kind": "has space"})
    assert sandbox.recorded("resend") == []


# --- failure mapping shared by all adapters ----------------------------------------------------------

CALLS = {
    "hubspot": lambda: upsert(ADA),
    "zendesk": lambda: make_ticket(),
    "resend": lambda: send(),
}


@pytest.mark.parametrize("provider", sorted(CALLS))
@pytest.mark.parametrize("status", [429, 500, 502, 503])
def test_rate_limits_and_server_errors_are_transient(sandbox: Sandbox, provider: str, status: int) -> None:
    sandbox.fault(provider=provider, mode="status", status=status)
    with pytest.raises(TransientError) as failure:
        CALLS[provider]()
    assert str(status) in str(failure.value)
    assert all(not rows for rows in sandbox.state().values())  # nothing applied
    assert len(sandbox.recorded(provider)) == 1  # no retry inside the adapter: redelivery is the retry


@pytest.mark.parametrize("provider", sorted(CALLS))
@pytest.mark.parametrize("status", [400, 422])
def test_client_errors_are_permanent_with_the_providers_code(
    sandbox: Sandbox, provider: str, status: int
) -> None:
    code = {"hubspot": "VALIDATION_ERROR", "zendesk": "RecordInvalid", "resend": "validation_error"}[provider]
    sandbox.fault(provider=provider, mode="status", status=status, code=code, message="field is invalid")
    with pytest.raises(PermanentError) as failure:
        CALLS[provider]()
    assert (failure.value.provider, failure.value.status, failure.value.code) == (provider, status, code)
    assert "field is invalid" in failure.value.detail


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_a_slow_provider_is_a_transient_timeout(sandbox: Sandbox, provider: str) -> None:
    sandbox.fault(provider=provider, mode="delay", seconds=TIMEOUT_SECONDS * 5)
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out"):
        CALLS[provider]()
    assert time.monotonic() - started < TIMEOUT_SECONDS * 3  # gave up at the timeout, once
    assert len(sandbox.recorded(provider)) == 1


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_an_unreachable_provider_is_transient(
    sandbox: Sandbox, provider: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    monkeypatch.setenv(f"{provider.upper()}_BASE_URL", closed)
    settings.cache_clear()
    with pytest.raises(TransientError, match="connection failed"):
        CALLS[provider]()


@pytest.mark.parametrize("provider", sorted(CALLS))
def test_missing_credentials_are_permanent_401s(sandbox: Sandbox, provider: str) -> None:
    # The sandbox checks auth like the provider does: prove each adapter's 401 maps to PermanentError.
    api = {"hubspot": hubspot._API, "zendesk": zendesk._API, "resend": resend._API}[provider]
    path = {"hubspot": hubspot.UPSERT_PATH, "zendesk": zendesk.TICKETS_PATH, "resend": resend.EMAILS_PATH}[
        provider
    ]
    with pytest.raises(PermanentError) as failure:
        api.post(sandbox.url, path, json_body={}, correlation_id=CORRELATION_ID)
    assert failure.value.status == 401


def test_a_2xx_answer_that_is_not_json_is_transient(sandbox: Sandbox) -> None:
    # The sandbox's hosted checkout page answers 200 text/html, like a misrouted proxy might.
    session = stripe.StripeClient(
        "sk_test_x", base_addresses={"api": sandbox.url}
    ).v1.checkout.sessions.create(params={"mode": "setup"})
    api = ProviderApi("stripe", lambda body: ("", ""))
    with pytest.raises(TransientError, match="not a JSON object"):
        api.request("GET", sandbox.url, f"/c/pay/{session.id}")


def test_correlation_id_comes_from_the_bound_log_context(sandbox: Sandbox) -> None:
    with log.bound(correlation_id="corr-from-context-01"):
        resend.send_email(to="ada@example.com", subject="s", html="<p>h</p>", text="h", idempotency_key="k1")
    resend.send_email(to="ada@example.com", subject="s", html="<p>h</p>", text="h", idempotency_key="k2")
    first, second = sandbox.recorded("resend")
    assert first["correlation_id"] == "corr-from-context-01"
    assert second["correlation_id"] and second["correlation_id"] != "corr-from-context-01"


# --- each provider's failure classes, as its docs define them ------------------------------------------

FAULT_CLASSES = [
    # provider, fault, expected error, expected retry_after (None: no wait given)
    ("hubspot", {"status": 423, "code": "LOCKED"}, TransientError, 2.0),
    ("hubspot", {"status": 477, "retry_after": 90}, TransientError, 90.0),
    ("hubspot", {"status": 477}, QuotaExhausted, 3600.0),  # hours: beyond what redelivery bridges
    ("hubspot", {"status": 429, "code": "TEN_SECONDLY_ROLLING"}, TransientError, None),
    ("hubspot", {"status": 429, "code": "DAILY"}, QuotaExhausted, 3600.0),
    ("hubspot", {"status": 524}, TransientError, None),
    ("hubspot", {"status": 403, "code": "MISSING_SCOPES"}, PermanentError, None),
    ("zendesk", {"status": 429, "retry_after": 42}, TransientError, 42.0),
    ("zendesk", {"status": 503, "retry_after": 30}, TransientError, 30.0),
    ("zendesk", {"status": 409}, TransientError, None),
    ("zendesk", {"status": 403}, PermanentError, None),
    ("resend", {"status": 429, "code": "rate_limit_exceeded"}, TransientError, 1.0),
    ("resend", {"status": 429, "code": "daily_quota_exceeded"}, QuotaExhausted, 3600.0),
    ("resend", {"status": 429, "code": "monthly_quota_exceeded"}, QuotaExhausted, 3600.0),
    ("resend", {"status": 409, "code": "concurrent_idempotent_requests"}, TransientError, None),
    ("resend", {"status": 409, "code": "invalid_idempotent_request"}, PermanentError, None),
    ("resend", {"status": 403, "code": "invalid_api_key"}, PermanentError, None),
]


@pytest.mark.parametrize(("provider", "fault", "error", "retry_after"), FAULT_CLASSES,
                         ids=[f"{p}-{f['status']}-{f.get('code', '')}" for p, f, _, _ in FAULT_CLASSES])
def test_each_provider_failure_maps_to_its_documented_class(
    sandbox: Sandbox, provider: str, fault: dict, error: type[Exception], retry_after: float | None
) -> None:
    sandbox.fault(provider=provider, mode="status", **fault)
    with pytest.raises(error) as failure:
        CALLS[provider]()
    assert type(failure.value) is error
    if isinstance(failure.value, TransientError):
        assert failure.value.retry_after == retry_after
        assert failure.value.provider == provider and failure.value.status == fault["status"]


@pytest.mark.parametrize("module", [hubspot, zendesk, resend])
def test_every_failure_table_row_cites_the_providers_own_docs(module) -> None:
    site = {"hubspot": "https://developers.hubspot.com/", "zendesk": "https://developer.zendesk.com/",
            "resend": "https://resend.com/docs/"}[module.__name__.rsplit(".", 1)[-1]]
    assert module.FAILURES and all(rule.doc.startswith(site) for rule in module.FAILURES.values())
    assert module._API.failures is module.FAILURES


def test_an_unlisted_status_falls_back_on_http_semantics() -> None:
    assert classify({}, 599, "").failure == Failure.TRANSIENT
    assert classify({}, 429, "").failure == Failure.TRANSIENT
    assert classify({}, 418, "").failure == Failure.PERMANENT
    table = {409: Rule(Failure.TRANSIENT, "a"), "x": Rule(Failure.PERMANENT, "b"),
             "409:y": Rule(Failure.QUOTA, "c")}
    assert [classify(table, 409, code).doc for code in ("", "x", "y")] == ["a", "b", "c"]


def test_retry_after_reads_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("120") == 120.0
    assert retry_after_seconds("Mon, 30 Nov 2026 12:01:30 GMT", now=now) == 90.0
    assert retry_after_seconds("Mon, 30 Nov 2026 11:00:00 GMT", now=now) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_zendesk_finds_a_ticket_by_our_reference(sandbox: Sandbox) -> None:
    assert zendesk.find_ticket(reference="SR-7F3K2Q") is None
    ticket_id = make_ticket()
    make_ticket(key="other", reference="SR-OTHER1")
    assert zendesk.find_ticket(reference="SR-7F3K2Q", correlation_id=CORRELATION_ID) == ticket_id
    lookup = sandbox.recorded("zendesk")[-1]
    assert (lookup["method"], lookup["query"]) == ("GET", {"external_id": ["SR-7F3K2Q"]})


def test_resend_answers_409_to_a_request_whose_key_is_in_flight(sandbox: Sandbox) -> None:
    sandbox.fault(provider="resend", mode="delay", seconds=TIMEOUT_SECONDS * 4)
    with pytest.raises(TransientError, match="timed out"):
        send()  # still "running" at Resend after we gave up on it
    with pytest.raises(TransientError, match="concurrent_idempotent_requests"):
        send()
    assert sandbox.state()["emails"] == []


def test_hubspot_rejects_properties_and_options_the_portal_does_not_define(sandbox: Sandbox) -> None:
    with pytest.raises(PermanentError, match="PROPERTY_DOESNT_EXIST"):
        upsert(Contact(email="ada@example.com", properties={"favourite_colour": "blue"}))
    with pytest.raises(PermanentError, match="INVALID_OPTION"):
        upsert(Contact(email="ada@example.com", tags=frozenset({"vip"})))
    assert sandbox.state()["contacts"] == []
