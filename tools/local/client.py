"""Talking to a running local stack the way the app, Stripe and a developer do: Auth emulator sign-up,
Firestore REST writes under the security rules with the user's ID token, Stripe-signed webhooks, the
provider sandbox's recorded state, and polling until something has happened.

Used by `python -m tools.local demo` and by the end-to-end tests (tests/e2e).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import requests

T = TypeVar("T")
# The Auth emulator accepts any API key; the Identity Toolkit API requires one to be present.
EMULATOR_API_KEY = "local-api-key"
STRIPE_API_VERSION = "2025-08-27.basil"


class WaitTimeout(AssertionError):
    pass


class NotChecked(Exception):
    """An outcome this target cannot read (e.g. a provider's API without credentials): reported as not
    checked, never as passed. The message says what is missing."""


def wait_until(
    check: Callable[[], T | None], *, timeout: float = 30, interval: float = 0.25, what: str = "condition"
) -> T:
    """Poll `check` until it returns something truthy; that value is returned. The last exception
    raised by `check` (if any) is kept in the timeout message."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = check()
            if value:
                return value
        except (requests.RequestException, KeyError, ValueError, AssertionError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise WaitTimeout(f"timed out after {timeout:.0f} s waiting for {what}{detail}")
        time.sleep(interval)


def load_endpoints(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"{path} not found: is the stack running? Start it with `make up`.") from None


# ---- Stripe ------------------------------------------------------------------------------------


def stripe_signature(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends: HMAC-SHA256 of "<timestamp>.<payload>" with the
    endpoint's whsec_ secret."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def stripe_event(
    event_type: str, data_object: dict[str, Any], *, event_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    """An event in the shape Stripe delivers it (API version pinned on the endpoint)."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(12),
        "object": "event",
        "api_version": STRIPE_API_VERSION,
        "created": int(time.time()) if created is None else created,
        "data": {"object": data_object},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": event_type,
    }


def checkout_session_completed(
    session_id: str, uid: str, email: str, customer: str, subscription: str
) -> dict[str, Any]:
    """The Checkout Session of a paid subscription checkout, as in checkout.session.completed."""
    return {
        "id": session_id,
        "object": "checkout.session",
        "mode": "subscription",
        "status": "complete",
        "payment_status": "paid",
        "client_reference_id": uid,
        "customer": customer,
        "customer_details": {"email": email},
        "customer_email": None,
        "subscription": subscription,
        "amount_total": 1900,
        "currency": "usd",
        "livemode": False,
        "metadata": {"uid": uid},
    }


def failed_invoice(
    invoice_id: str, customer: str, subscription: str, email: str, price_id: str
) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "customer_email": email,
        "billing_reason": "subscription_cycle",
        "status": "open",
        "paid": False,
        "attempt_count": 1,
        "amount_due": 1900,
        "amount_paid": 0,
        "currency": "usd",
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": subscription}},
        "subscription": subscription,
        "lines": {
            "object": "list",
            "data": [
                {
                    "object": "line_item",
                    "amount": 1900,
                    "currency": "usd",
                    # The line a subscription item generated (API 2025-03-31.basil and later).
                    "parent": {
                        "type": "subscription_item_details",
                        "subscription_item_details": {
                            "subscription": subscription,
                            "proration": False,
                            "invoice_item": None,
                        },
                    },
                    "period": {"start": now, "end": now + 30 * 86400},
                    "pricing": {"type": "price_details", "price_details": {"price": price_id}},
                }
            ],
        },
        "next_payment_attempt": now + 3 * 86400,
    }


@dataclass(frozen=True)
class AuthUser:
    uid: str
    email: str
    password: str
    id_token: str
    refresh_token: str


class PasswordAccounts:
    """Email and password accounts through the Identity Toolkit REST API, as the app's Auth SDK uses it
    (https://firebase.google.com/docs/reference/rest/auth): sign-up, sign-in, and the account's own
    record with its custom claims (`accounts:lookup` with the user's ID token). `base` is
    https://identitytoolkit.googleapis.com or the Auth emulator's http://<host>/identitytoolkit.googleapis.com;
    `api_key` the project's web API key."""

    def __init__(self, base: str, api_key: str, http: requests.Session | None = None) -> None:
        self.base = base.rstrip("/")
        self.api_key = api_key
        self.http = http or requests.Session()

    def _post(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.post(
            f"{self.base}/v1/accounts:{method}", params={"key": self.api_key}, json=body, timeout=15
        )
        if response.status_code != 200:
            raise AssertionError(f"accounts:{method} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def sign_up(self, email: str, password: str | None = None, display_name: str | None = None) -> AuthUser:
        password = password or secrets.token_urlsafe(12)
        body = self._post("signUp", {"email": email, "password": password, "returnSecureToken": True})
        user = AuthUser(body["localId"], email, password, body["idToken"], body["refreshToken"])
        if display_name:
            self._post("update", {"idToken": user.id_token, "displayName": display_name,
                                  "returnSecureToken": True})
            return self.sign_in(user)
        return user

    def sign_in(self, user: AuthUser) -> AuthUser:
        """A fresh ID token (custom claims set since the last one appear only in a new token)."""
        body = self._post("signInWithPassword", {"email": user.email, "password": user.password,
                                                 "returnSecureToken": True})
        return AuthUser(user.uid, user.email, user.password, body["idToken"], body["refreshToken"])

    def custom_claims(self, user: AuthUser) -> dict[str, Any]:
        record = self._post("lookup", {"idToken": user.id_token})["users"][0]
        return json.loads(record.get("customAttributes") or "{}")


class JourneyTarget(Protocol):
    """What the founder's journey (tools/local/journey.py) uses of its target: `LocalStack` here,
    `DeployedStack` (tools/ops/deployed.py). A read the target cannot make raises NotChecked."""

    def sign_up(self, *, display_name: str | None = None) -> AuthUser: ...
    def sign_in(self, user: AuthUser) -> AuthUser: ...
    def custom_claims(self, user: AuthUser) -> dict[str, Any]: ...
    def create_profile(self, user: AuthUser, *, display_name: str = "") -> requests.Response: ...
    def get_document(self, path: str, *, as_user: AuthUser | None = None) -> dict[str, Any] | None: ...
    def call(self, function: str, user: AuthUser, body: dict[str, Any]) -> requests.Response: ...
    def post_stripe_event(self, event: dict[str, Any]) -> requests.Response: ...
    def checkout_session(self, session_id: str) -> dict[str, Any] | None: ...
    def pay(self, session_id: str, user: AuthUser) -> dict[str, Any]: ...
    def contact(self, email: str) -> dict[str, Any] | None: ...
    def emails_to(self, address: str) -> list[dict[str, Any]]: ...
    def tickets(self, external_id: str) -> list[dict[str, Any]]: ...
    def provider_call_count(self) -> int: ...


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


def profile_write(
    project_id: str,
    user: AuthUser,
    display_name: str = "",
    locale: str = "en",
    marketing_opt_in: bool = False,
) -> dict[str, Any]:
    """The Firestore REST Write creating users/{uid} as the app does; created_at is the server's clock (a
    REQUEST_TIME transform), as the security rules require."""
    name = f"projects/{project_id}/databases/(default)/documents/users/{user.uid}"
    fields: dict[str, Any] = {
        "email": {"stringValue": user.email},
        "locale": {"stringValue": locale},
        "marketing_opt_in": {"booleanValue": marketing_opt_in},
    }
    if display_name:
        fields["display_name"] = {"stringValue": display_name}
    return {
        "update": {"name": name, "fields": fields},
        "currentDocument": {"exists": False},
        "updateTransforms": [{"fieldPath": "created_at", "setToServerValue": "REQUEST_TIME"}],
    }


def contact_tags(contact: dict[str, Any]) -> set[str]:
    value = contact["properties"].get("launchready_tags") or ""
    return {tag for tag in value.split(";") if tag}


def email_tags(email: dict[str, Any]) -> dict[str, str]:
    return {tag["name"]: tag["value"] for tag in email.get("tags") or []}


def decode_value(value: dict[str, Any]) -> Any:
    """A Firestore REST Value as a plain Python value."""
    kind, inner = next(iter(value.items()))
    if kind == "mapValue":
        return decode_fields(inner.get("fields") or {})
    if kind == "arrayValue":
        return [decode_value(item) for item in inner.get("values") or []]
    if kind == "integerValue":
        return int(inner)
    if kind == "nullValue":
        return None
    return inner  # strings, booleans, doubles, timestamps (RFC 3339 text), references


def decode_fields(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: decode_value(value) for name, value in fields.items()}
