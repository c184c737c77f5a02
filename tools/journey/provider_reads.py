"""Read-only calls to HubSpot, Zendesk and Resend that show the journey's outcomes on a deployed stack.

Each call has the shape of the provider's published document; no credential -> `NotChecked` (docs/tools.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

from tools.journey.target import NotChecked

HUBSPOT_API = "https://api.hubapi.com"
STRIPE_API = "https://api.stripe.com"
RESEND_API = "https://api.resend.com"
HUBSPOT_SEARCH_PATH = "/crm/objects/2026-09/contacts/search"  # the version the adapter writes with
CONTACT_PROPERTIES = ["email", "lifecyclestage", "launchready_tags"]
RESEND_PAGE = 100  # the list's maximum page size
RESEND_MAX_PAGES = 20  # 2,000 emails back at most: the run's emails are the newest
TIMEOUT_SECONDS = 15


class ProviderReadError(RuntimeError):
    """A provider answered a read with something other than 200; the message names the call."""


@dataclass(frozen=True)
class ProviderCredentials:
    """The environment's provider secrets (names as in Secret Manager) and base URLs. Kept out of repr."""

    secrets: Mapping[str, str] = field(repr=False)
    zendesk_base_url: str = ""
    hubspot_base_url: str = HUBSPOT_API
    resend_base_url: str = RESEND_API
    stripe_base_url: str = STRIPE_API


class ProviderReads:
    def __init__(self, credentials: ProviderCredentials, http: requests.Session | None = None) -> None:
        self.credentials = credentials
        self.http = http or requests.Session()

    def _secret(self, name: str, provider: str) -> str:
        value = self.credentials.secrets.get(name)
        if not value:
            raise NotChecked(f"no {name} (environment or Secret Manager) to read {provider} with")
        return value

    def contact(self, email: str) -> dict[str, Any] | None:
        """The HubSpot contact with this email (`{"id", "properties", "updatedAt", ...}`), or None."""
        token = self._secret("HUBSPOT_TOKEN", "HubSpot")
        body = {
            "filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}],
            "properties": CONTACT_PROPERTIES,
            "sorts": [],
            "limit": 2,
            "after": "0",
        }
        answer = self._json(
            "HubSpot contact search",
            self.http.post(
                f"{self.credentials.hubspot_base_url.rstrip('/')}{HUBSPOT_SEARCH_PATH}",
                json=body,
                headers={"Authorization": f"Bearer {token}"},
                timeout=TIMEOUT_SECONDS,
            ),
        )
        results = answer.get("results") or []
        if len(results) > 1:
            raise ProviderReadError(f"HubSpot holds {len(results)} contacts with the email {email}")
        return results[0] if results else None

    def tickets(self, external_id: str) -> list[dict[str, Any]]:
        """Zendesk tickets whose external_id is `external_id`."""
        if not self.credentials.zendesk_base_url:
            raise NotChecked("no launchready:zendeskBaseUrl for this stack to read Zendesk")
        email, token = self._secret("ZENDESK_EMAIL", "Zendesk"), self._secret("ZENDESK_API_TOKEN", "Zendesk")
        auth = (f"{email}/token", token)  # Zendesk's API token scheme, as the adapter authenticates
        answer = self._json(
            "Zendesk ticket list",
            self.http.get(
                f"{self.credentials.zendesk_base_url.rstrip('/')}/api/v2/tickets.json",
                params={"external_id": external_id},
                auth=auth,
                timeout=TIMEOUT_SECONDS,
            ),
        )
        return list(answer.get("tickets") or [])

    def emails_to(self, address: str, since: datetime) -> list[dict[str, Any]]:
        """Resend emails to `address` created at or after `since` (aware), newest first."""
        key = self._secret("RESEND_API_KEY", "Resend")
        found: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": RESEND_PAGE}
        for _ in range(RESEND_MAX_PAGES):
            answer = self._json(
                "Resend email list",
                self.http.get(
                    f"{self.credentials.resend_base_url.rstrip('/')}/emails",
                    params=params,
                    headers={"Authorization": f"Bearer {key}"},
                    timeout=TIMEOUT_SECONDS,
                ),
            )
            page = list(answer.get("data") or [])
            found += [email for email in page if address in (email.get("to") or [])]
            if not answer.get("has_more") or not page or created_at(page[-1]) < since:
                break
            params["after"] = page[-1]["id"]
        return [email for email in found if created_at(email) >= since]

    @staticmethod
    def _json(what: str, response: requests.Response) -> dict[str, Any]:
        if response.status_code != 200:
            raise ProviderReadError(f"{what} answered {response.status_code}: {response.text[:300]}")
        return response.json()


def created_at(email: Mapping[str, Any]) -> datetime:
    """Resend's `created_at` ("2023-04-03 22:13:42.674981+00") as an aware datetime."""
    text = str(email.get("created_at") or "")
    if text.endswith("+00"):
        text += ":00"
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
