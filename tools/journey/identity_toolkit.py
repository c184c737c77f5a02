"""Email and password accounts through the Identity Toolkit REST API (Auth emulator or the real service).

The calls the app's Auth SDK makes (https://firebase.google.com/docs/reference/rest/auth), nothing more."""

from __future__ import annotations

import json
import secrets
from typing import Any

import requests

from .target import AuthUser


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

