"""The local stack that `make up` runs, as a journey target: the emulators, the functions and the sandbox.

Built from .local/endpoints.json; talks to the stack the way the app, Stripe and a developer do.
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path
from typing import Any

import requests

from tools.exit_codes import ExitCode

from .firestore_rest import decode_fields, profile_write
from .identity_toolkit import PasswordAccounts
from .stripe_events import stripe_signature
from .target import AuthUser

# The Auth emulator accepts any API key; the Identity Toolkit API requires one to be present.
EMULATOR_API_KEY = "local-api-key"


def load_endpoints(path: Path) -> dict[str, Any]:
    """The running stack's endpoints.json; exits ENVIRONMENT, saying so, when the stack is not running."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        print(f"{path} not found: is the stack running? Start it with `make up`.", file=sys.stderr)
        raise SystemExit(ExitCode.ENVIRONMENT) from None


class LocalStack:
    """A running stack, from its endpoints.json."""

    def __init__(self, endpoints: dict[str, Any]) -> None:
        self.endpoints = endpoints
        self.http = requests.Session()

    @property
    def project_id(self) -> str:
        return self.endpoints["project_id"]

    def url(self, function: str) -> str:
        return self.endpoints["functions"][function]["url"]

    @property
    def sandbox_url(self) -> str:
        return self.endpoints["sandbox_url"]

    # ---- Stripe webhooks ----

    def post_stripe_event(
        self, event: dict[str, Any], *, secret: str | None = None, timestamp: int | None = None
    ) -> requests.Response:
        payload = json.dumps(event, separators=(",", ":")).encode()
        signature = stripe_signature(payload, secret or self.endpoints["stripe_webhook_secret"], timestamp)
        return self.http.post(
            self.url("stripe_webhook"),
            data=payload,
            timeout=30,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": signature,
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )

    # ---- Auth emulator ----

    @property
    def accounts(self) -> PasswordAccounts:
        base = f"http://{self.endpoints['emulators']['auth']}/identitytoolkit.googleapis.com"
        return PasswordAccounts(base, EMULATOR_API_KEY, self.http)

    def sign_up(
        self, email: str | None = None, password: str | None = None, display_name: str | None = None
    ) -> AuthUser:
        email = email or f"founder-{uuid.uuid4().hex[:10]}@example.com"
        return self.accounts.sign_up(email, password, display_name)

    def sign_in(self, user: AuthUser) -> AuthUser:
        """A fresh ID token (custom claims set since the last one appear only in a new token)."""
        return self.accounts.sign_in(user)

    def custom_claims(self, user: AuthUser) -> dict[str, Any]:
        return self.accounts.custom_claims(user)

    # ---- Firestore (REST, as the app's SDK does) ----

    def _documents(self) -> str:
        return (
            f"http://{self.endpoints['emulators']['firestore']}/v1/projects/{self.project_id}"
            "/databases/(default)/documents"
        )

    def create_profile(
        self, user: AuthUser, *, display_name: str = "", locale: str = "en", marketing_opt_in: bool = False
    ) -> requests.Response:
        """Create users/{uid} with the user's ID token, so the security rules decide."""
        write = profile_write(self.project_id, user, display_name, locale, marketing_opt_in)
        return self.http.post(
            f"{self._documents()}:commit",
            json={"writes": [write]},
            timeout=10,
            headers={"Authorization": f"Bearer {user.id_token}"},
        )

    def get_document(self, path: str, *, as_user: AuthUser | None = None) -> dict[str, Any] | None:
        """A document as plain values; with as_user the rules apply, otherwise it is read as the
        server (the emulator's "owner" token bypasses the rules, like the Admin SDK)."""
        token = as_user.id_token if as_user else "owner"
        response = self.http.get(
            f"{self._documents()}/{path}", timeout=10, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return decode_fields(response.json().get("fields") or {})

    def list_documents(self, collection: str) -> list[dict[str, Any]]:
        response = self.http.get(
            f"{self._documents()}/{collection}",
            params={"pageSize": 300},
            timeout=10,
            headers={"Authorization": "Bearer owner"},
        )
        response.raise_for_status()
        return [
            decode_fields(doc.get("fields") or {}) | {"_name": doc["name"].rsplit("/", 1)[-1]}
            for doc in response.json().get("documents") or []
        ]

    # ---- app-facing functions ----

    def call(self, function: str, user: AuthUser, body: dict[str, Any]) -> requests.Response:
        return self.http.post(
            self.url(function), json=body, timeout=30, headers={"Authorization": f"Bearer {user.id_token}"}
        )

    # ---- the payment and the providers' records (the sandbox here; test-mode APIs on a deployed stack) ----

    def checkout_session(self, session_id: str) -> dict[str, Any] | None:
        """The Checkout Session as the Stripe sandbox holds it, None when it holds none."""
        sessions = [s for s in self.sandbox_state().get("checkout_sessions", []) if s["id"] == session_id]
        return sessions[0] if sessions else None

    def pay(self, session_id: str, user: AuthUser) -> dict[str, Any]:
        """The user pays on the sandbox's checkout page: its button completes the session and sends the
        signed checkout.session.completed to the webhook, as Stripe does. Returns {event,
        webhook_status, webhook_answer}."""
        paid = self.http.post(
            f"{self.sandbox_url}/c/pay/{session_id}", headers={"Accept": "application/json"}, timeout=30
        )
        if paid.status_code != 200:
            raise AssertionError(f"the sandbox pay page answered {paid.status_code}: {paid.text[:200]}")
        return paid.json()

    def provider_call_count(self) -> int:
        """How many provider API calls were made so far (every provider)."""
        return len(self.sandbox_requests())

    # ---- provider sandbox ----

    def sandbox_state(self) -> dict[str, Any]:
        response = self.http.get(f"{self.sandbox_url}/_sandbox/state", timeout=10)
        response.raise_for_status()
        return response.json()

    def sandbox_requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        params = {"provider": provider} if provider else None
        response = self.http.get(f"{self.sandbox_url}/_sandbox/requests", params=params, timeout=10)
        response.raise_for_status()
        body = response.json()
        return body["requests"] if isinstance(body, dict) else body

    def contact(self, email: str) -> dict[str, Any] | None:
        for contact in self.sandbox_state().get("contacts", []):
            if contact["properties"].get("email") == email.lower():
                return contact
        return None

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        return [email for email in self.sandbox_state().get("emails", []) if address in email.get("to", [])]

    def tickets(self, external_id: str) -> list[dict[str, Any]]:
        return [
            ticket
            for ticket in self.sandbox_state().get("tickets", [])
            if ticket.get("external_id") == external_id
        ]

