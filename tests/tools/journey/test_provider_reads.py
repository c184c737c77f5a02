"""The smoke test's read-back of HubSpot, Zendesk and Resend (tools/journey/provider_reads.py), against the
provider sandbox over HTTP, which answers these operations only when the requests match the providers'
published documents (tools/sandbox/specs/), and answers in their documented shapes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.tools.sandbox.test_sandbox import (
    HUBSPOT_AUTH,
    RESEND_AUTH,
    add_fault,
    contact_input,
    email_payload,
    hubspot_upsert,
    post_keyed,
    recorded,
    ticket_payload,
)
from tools.journey.provider_reads import ProviderCredentials, ProviderReadError, ProviderReads, created_at
from tools.journey.target import NotChecked

SECRETS = {
    "HUBSPOT_TOKEN": "pat-na1-test-token",
    "ZENDESK_EMAIL": "agent@example.com",
    "ZENDESK_API_TOKEN": "zd-secret",
    "RESEND_API_KEY": "re_test_key",
}
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def reads(url: str, **secrets: str) -> ProviderReads:
    chosen = secrets or SECRETS
    credentials = ProviderCredentials(chosen, zendesk_base_url=url, hubspot_base_url=url, resend_base_url=url)
    return ProviderReads(credentials)


def send_email(url: str, to: str, subject: str) -> str:
    answer = post_keyed(f"{url}/emails", {**email_payload(subject), "to": [to]}, None, RESEND_AUTH)
    assert answer.status_code == 200, answer.text
    return answer.json()["id"]


def test_the_contact_is_found_by_email_with_its_stage_tags_and_update_time(url: str) -> None:
    ada = contact_input("ada@example.com", lifecyclestage="lead", launchready_tags="signed_up")
    hubspot_upsert(url, [ada])
    hubspot_upsert(url, [contact_input("bob@example.com", lifecyclestage="customer")])

    contact = reads(url).contact("Ada@Example.com")

    assert contact is not None
    assert contact["properties"]["lifecyclestage"] == "lead"
    assert contact["properties"]["launchready_tags"] == "signed_up"
    assert contact["updatedAt"] and contact["id"]
    assert reads(url).contact("nobody@example.com") is None
    searches = [call for call in recorded(url, "hubspot") if call["path"].endswith("/search")]
    assert [call["status"] for call in searches] == [200, 200]  # the requests matched HubSpot's document


def test_the_sandbox_search_models_eq_and_in_and_names_what_it_does_not(url: str) -> None:
    hubspot_upsert(url, [contact_input("ada@example.com", lifecyclestage="lead")])
    body = {"filterGroups": [{"filters": [{"propertyName": "lifecyclestage", "operator": "IN",
                                           "values": ["lead", "customer"]}]}],
            "properties": ["lifecyclestage"], "sorts": [], "limit": 10, "after": "0"}
    path = f"{url}/crm/objects/2026-09/contacts/search"

    found = requests.post(path, json=body, headers=HUBSPOT_AUTH, timeout=5).json()
    assert found["total"] == 1 and found["results"][0]["properties"]["lifecyclestage"] == "lead"
    body["filterGroups"][0]["filters"][0] = {"propertyName": "createdate", "operator": "GT", "value": "0"}
    refused = requests.post(path, json=body, headers=HUBSPOT_AUTH, timeout=5)
    assert refused.status_code == 400 and "EQ and IN" in refused.json()["message"]
    del body["sorts"]  # required by HubSpot's document: rejected as HubSpot would
    assert requests.post(path, json=body, headers=HUBSPOT_AUTH, timeout=5).status_code == 400


def test_tickets_are_listed_by_external_id(url: str) -> None:
    auth = {"Authorization": "Basic YWdlbnRAZXhhbXBsZS5jb20vdG9rZW46emQtc2VjcmV0"}  # agent@example.com/token
    for external_id in ("SR-AAAAAA", "SR-AAAAAA", "SR-BBBBBB"):
        payload = ticket_payload()
        payload["ticket"]["external_id"] = external_id
        assert post_keyed(f"{url}/api/v2/tickets.json", payload, None, auth).status_code == 201

    assert [ticket["external_id"] for ticket in reads(url).tickets("SR-AAAAAA")] == ["SR-AAAAAA", "SR-AAAAAA"]
    assert reads(url).tickets("SR-CCCCCC") == []


def test_emails_to_an_address_are_read_across_pages_newest_first(
        url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tools.journey.provider_reads.RESEND_PAGE", 2)
    ours = [send_email(url, "delivered+smoke-1@resend.dev", f"mine {n}") for n in range(3)]
    for n in range(4):
        send_email(url, "someone@example.com", f"other {n}")

    emails = reads(url).emails_to("delivered+smoke-1@resend.dev", LONG_AGO)

    assert [email["id"] for email in emails] == ours[::-1]
    pages = [call for call in recorded(url, "resend") if call["method"] == "GET"]
    assert len(pages) == 4 and all(call["status"] == 200 for call in pages)  # 7 emails, 2 a page
    assert reads(url).emails_to("delivered+smoke-1@resend.dev", datetime.now(UTC) + timedelta(hours=1)) == []


def test_the_sandbox_list_pages_both_ways_and_refuses_both_cursors(url: str) -> None:
    ids = [send_email(url, "a@example.com", f"n{n}") for n in range(3)]
    page = requests.get(f"{url}/emails", params={"limit": 1, "after": ids[2]}, headers=RESEND_AUTH, timeout=5)
    assert [email["id"] for email in page.json()["data"]] == [ids[1]] and page.json()["has_more"] is True
    newer = requests.get(f"{url}/emails", params={"before": ids[0]}, headers=RESEND_AUTH, timeout=5).json()
    assert [email["id"] for email in newer["data"]] == [ids[2], ids[1]] and newer["has_more"] is False
    cursors = {"before": ids[0], "after": ids[2]}
    both = requests.get(f"{url}/emails", params=cursors, headers=RESEND_AUTH, timeout=5)
    assert both.status_code == 422
    too_many = requests.get(f"{url}/emails", params={"limit": 101}, headers=RESEND_AUTH, timeout=5)
    assert too_many.status_code == 422  # outside the document's 1..100


def test_a_missing_credential_is_not_checked_and_a_refusal_is_an_error(url: str) -> None:
    without = reads(url, RESEND_API_KEY="re_test_key")
    with pytest.raises(NotChecked, match="HUBSPOT_TOKEN"):
        without.contact("ada@example.com")
    with pytest.raises(NotChecked, match="ZENDESK_EMAIL"):
        without.tickets("SR-AAAAAA")
    no_zendesk = ProviderReads(ProviderCredentials(SECRETS, hubspot_base_url=url, resend_base_url=url))
    with pytest.raises(NotChecked, match="zendeskBaseUrl"):
        no_zendesk.tickets("SR-AAAAAA")
    add_fault(url, provider="hubspot", mode="status", status=401)
    with pytest.raises(ProviderReadError, match="HubSpot contact search answered 401"):
        reads(url).contact("ada@example.com")


def test_resend_timestamps_are_read_in_both_spellings() -> None:
    assert created_at({"created_at": "2023-04-03 22:13:42.674981+00"}) == datetime(
        2023, 4, 3, 22, 13, 42, 674981, tzinfo=UTC)
    assert created_at({"created_at": "2026-12-01 10:00:00+00:00"}).tzinfo is not None
