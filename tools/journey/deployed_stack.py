"""A deployed environment as a journey target: the `JourneyTarget` interface on the real services.

An outcome it cannot read (no credential for a provider) raises `NotChecked`, never passes (docs/tools.md).
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from components.config_types import EmailAddress, conforms
from tools.journey.firestore_rest import decode_fields, profile_write
from tools.journey.identity_toolkit import PasswordAccounts
from tools.journey.provider_reads import STRIPE_API, ProviderCredentials, ProviderReads
from tools.journey.stripe_events import checkout_session_completed, stripe_event, stripe_signature
from tools.journey.target import AuthUser, NotChecked

IDENTITY_TOOLKIT = "https://identitytoolkit.googleapis.com"
FIRESTORE_REST = "https://firestore.googleapis.com"
# Stripe's test-mode secret and restricted keys (https://docs.stripe.com/keys#test-live-modes).
TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
# The functions the journey calls at their public URLs.
JOURNEY_FUNCTIONS = ("create_checkout", "support_request", "stripe_webhook")
# Resend's test inbox that reports every email delivered; labels after "+" keep runs apart.
DEFAULT_TEST_INBOX = "delivered@resend.dev"
RESEND_REFUSED_DOMAINS = ("example.com", "test.com")
# Provider records older than the run (less this margin for clock skew) are not the run's.
CLOCK_SKEW = timedelta(minutes=5)
# The email worker's record of each email sent (launchready/handlers/email_worker.py).
NOTIFICATIONS = "notifications"


@dataclass(frozen=True)
class DeployedTarget:
    """Where and how to reach one deployed environment. Secrets are kept out of the repr."""

    project_id: str
    urls: Mapping[str, str]  # function name -> public URL
    web_api_key: str = field(repr=False)
    webhook_secret: str = field(repr=False)
    stripe_api_key: str | None = field(default=None, repr=False)  # test mode only
    providers: ProviderCredentials | None = None  # None: provider records are not read
    test_inbox: str = DEFAULT_TEST_INBOX
    # A service account whose key signs the custom token through IAM signBlob, for deployer credentials
    # that cannot sign themselves (a user's ADC): the Admin SDK's `serviceAccountId` option
    # (https://firebase.google.com/docs/auth/admin/create-custom-tokens#using_a_service_account_id).
    signer_service_account: str | None = None
    # False: no deployer credentials. The test user signs up with a password through the web API key
    # (as the app does) and reads its own claims; Firestore is read only as the user.
    deployer: bool = True

    def __post_init__(self) -> None:
        missing = [name for name in JOURNEY_FUNCTIONS if name not in self.urls]
        if missing:
            raise ValueError(f"no public URL for {', '.join(missing)}")
        if not self.webhook_secret.startswith("whsec_"):
            raise ValueError("the Stripe webhook secret is not a whsec_ signing secret")
        if self.stripe_api_key is not None and not self.stripe_api_key.startswith(TEST_KEY_PREFIXES):
            raise ValueError("STRIPE_API_KEY is not a test-mode key (sk_test_, rk_test_)")
        problem = test_inbox_problem(self.test_inbox)
        if problem:
            raise ValueError(problem)

    def test_address(self) -> str:
        """A new address at the test inbox: `<local>+smoke-<id>@<domain>`."""
        local, _, domain = self.test_inbox.partition("@")
        return f"{local}+smoke-{uuid.uuid4().hex[:10]}@{domain}"


def test_inbox_problem(inbox: str) -> str | None:
    """Why `inbox` cannot be the test user's mailbox, or None. A plain address: a dot-atom local part
    without a +label (RFC 5322 3.4.1) at a host name of letter-digit-hyphen labels (RFC 1035 2.3.1) with an
    alphabetic top-level label. Resend answers 422 to example.com and test.com addresses
    (https://resend.com/docs/knowledge-base/what-email-addresses-to-use-for-testing); example.com's
    subdomains are reserved too (RFC 2606) and refused alike."""
    if not conforms(EmailAddress, inbox) or "+" in inbox.rpartition("@")[0]:
        return f"the test inbox {inbox!r} is not a plain address without a +label (e.g. {DEFAULT_TEST_INBOX})"
    domain = inbox.rpartition("@")[2].lower()
    if any(domain == refused or domain.endswith(f".{refused}") for refused in RESEND_REFUSED_DOMAINS):
        refused = f"the test inbox {inbox!r} is at {domain}, which Resend refuses (422)"
        return f"{refused}: use {DEFAULT_TEST_INBOX}"
    return None


class DeployedStack:
    """The journey's target on a deployed environment (see the module docstring)."""

    def __init__(self, target: DeployedTarget, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        self.target = target
        self.http = requests.Session()
        auth_host = env.get("FIREBASE_AUTH_EMULATOR_HOST")
        self._identity_base = (
            f"http://{auth_host}/identitytoolkit.googleapis.com" if auth_host else IDENTITY_TOOLKIT
        )
        firestore_host = env.get("FIRESTORE_EMULATOR_HOST")
        self._firestore_base = f"http://{firestore_host}" if firestore_host else FIRESTORE_REST
        self._accounts = PasswordAccounts(self._identity_base, target.web_api_key, self.http)
        self._app: Any = None
        self._db: Any = None
        if target.deployer:
            import firebase_admin
            from google.cloud import firestore

            # An app of its own, so a default app of the caller's is neither needed nor disturbed.
            options = {"projectId": target.project_id}
            if target.signer_service_account:
                options["serviceAccountId"] = target.signer_service_account
            self._app = firebase_admin.initialize_app(options=options, name=f"smoke-{uuid.uuid4().hex[:8]}")
            self._db = firestore.Client(project=target.project_id)
        self._providers = ProviderReads(target.providers, self.http) if target.providers else None
        self._since = datetime.now(UTC) - CLOCK_SKEW

    # ---- Auth ----

    def sign_up(self, *, display_name: str | None = None) -> AuthUser:
        email = self.target.test_address()
        if self._app is None:
            return self._accounts.sign_up(email, display_name=display_name)
        from firebase_admin import auth

        record = auth.create_user(email=email, display_name=display_name, app=self._app)
        return self._exchange(record.uid, email)

    def sign_in(self, user: AuthUser) -> AuthUser:
        """A fresh ID token (custom claims set since the last one appear only in a new token)."""
        if self._app is None:
            return self._accounts.sign_in(user)
        return self._exchange(user.uid, user.email)

    def _exchange(self, uid: str, email: str) -> AuthUser:
        from firebase_admin import auth

        token = auth.create_custom_token(uid, app=self._app).decode()
        response = self.http.post(
            f"{self._identity_base}/v1/accounts:signInWithCustomToken",
            params={"key": self.target.web_api_key},
            json={"token": token, "returnSecureToken": True},
            timeout=15,
        )
        if response.status_code != 200:
            raise AssertionError(
                f"signInWithCustomToken answered {response.status_code}: {response.text[:300]}"
            )
        body = response.json()
        return AuthUser(uid, email, "", body["idToken"], body["refreshToken"])

    def custom_claims(self, user: AuthUser) -> dict[str, Any]:
        if self._app is None:
            return self._accounts.custom_claims(user)  # the account's own record
        from firebase_admin import auth

        return dict(auth.get_user(user.uid, app=self._app).custom_claims or {})

    # ---- Firestore ----

    def _documents(self) -> str:
        project = self.target.project_id
        return f"{self._firestore_base}/v1/projects/{project}/databases/(default)/documents"

    def create_profile(self, user: AuthUser, *, display_name: str = "") -> requests.Response:
        write = profile_write(self.target.project_id, user, display_name)
        return self.http.post(
            f"{self._documents()}:commit",
            json={"writes": [write]},
            timeout=15,
            headers={"Authorization": f"Bearer {user.id_token}"},
        )

    def get_document(self, path: str, *, as_user: AuthUser | None = None) -> dict[str, Any] | None:
        """As the user (REST, under the rules) or as the deployer (the Firestore client)."""
        if as_user is None:
            if self._db is None:
                raise NotChecked(f"{path} is read as the deployer, and there are no deployer credentials")
            snapshot = self._db.document(path).get()
            return snapshot.to_dict() if snapshot.exists else None
        response = self.http.get(
            f"{self._documents()}/{path}", timeout=15, headers={"Authorization": f"Bearer {as_user.id_token}"}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return decode_fields(response.json().get("fields") or {})

    # ---- the public functions and Stripe ----

    def call(self, function: str, user: AuthUser, body: dict[str, Any]) -> requests.Response:
        return self.http.post(
            self.target.urls[function],
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {user.id_token}"},
        )

    def post_stripe_event(self, event: dict[str, Any]) -> requests.Response:
        payload = json.dumps(event, separators=(",", ":")).encode()
        return self.http.post(
            self.target.urls["stripe_webhook"],
            data=payload,
            timeout=30,
            headers={
                "Content-Type": "application/json; charset=utf-8",
                "Stripe-Signature": stripe_signature(payload, self.target.webhook_secret),
                "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
            },
        )

    def pay(self, session_id: str, user: AuthUser) -> dict[str, Any]:
        """The session completed and paid: the signed test-mode checkout.session.completed, delivered."""
        session = checkout_session_completed(
            session_id, user.uid, user.email, "cus_" + secrets.token_hex(7), "sub_" + secrets.token_hex(12)
        )
        event = stripe_event("checkout.session.completed", session)
        response = self.post_stripe_event(event)
        try:
            answer: Any = response.json()
        except ValueError:
            answer = response.text[:300]
        return {"event": event, "webhook_status": response.status_code, "webhook_answer": answer}

    def checkout_session(self, session_id: str) -> dict[str, Any] | None:
        """https://docs.stripe.com/api/checkout/sessions/retrieve, with the test-mode key."""
        if not self.target.stripe_api_key:
            raise NotChecked("no test-mode STRIPE_API_KEY in the environment to read it from Stripe")
        base = self.target.providers.stripe_base_url if self.target.providers else STRIPE_API
        response = self.http.get(
            f"{base.rstrip('/')}/v1/checkout/sessions/{session_id}",
            auth=(self.target.stripe_api_key, ""),
            timeout=15,
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.json()

    # ---- the providers' records ----

    def _reads(self, provider: str) -> ProviderReads:
        if self._providers is None:
            raise NotChecked(f"{provider} is not read: no provider credentials were given")
        return self._providers

    def contact(self, email: str) -> dict[str, Any] | None:
        return self._reads("HubSpot").contact(email)

    def tickets(self, external_id: str) -> list[dict[str, Any]]:
        return self._reads("Zendesk").tickets(external_id)

    def emails_to(self, address: str) -> list[dict[str, Any]]:
        """Resend's emails to `address` since the run began, each with the tags of the pipeline's
        record of the same subject (`[{"name", "value"}]`, as the email was sent)."""
        if self._db is None:
            raise NotChecked("Resend's list carries no tags: telling the emails apart needs the pipeline's "
                             "notifications records, read with deployer credentials")
        emails = self._reads("Resend").emails_to(address, self._since)
        recorded = self._db.collection(NOTIFICATIONS).where(filter=_to(address)).stream()
        records = [doc.to_dict() or {} for doc in recorded]
        tags_by_subject = {str(data.get("subject")): data.get("tags") or {} for data in records}

        def labelled(email: dict[str, Any]) -> dict[str, Any]:
            tags = tags_by_subject.get(str(email.get("subject")), {})
            return {**email, "tags": [{"name": name, "value": value} for name, value in sorted(tags.items())]}

        return [labelled(email) for email in emails]

    def provider_call_count(self) -> int:
        raise NotChecked("only the local provider sandbox records every provider call")

    def close(self) -> None:
        if self._app is not None:
            import firebase_admin

            firebase_admin.delete_app(self._app)
            self._db.close()
        self.http.close()



def _to(address: str) -> Any:
    from google.cloud.firestore_v1.base_query import FieldFilter

    return FieldFilter("to", "array_contains", address)
