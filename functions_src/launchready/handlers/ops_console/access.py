"""Who may use the ops console, and CSRF protection of its state-changing requests.

An operator holds a Firebase ID token of this project with the custom claim `ops: true` (from the
`__session` cookie or a bearer header): no token or an invalid one is a 401, a token without the claim a
403; every POST is same-origin with a form token bound to the session (docs/architecture.md, "Ops console").
"""

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import flask
from firebase_admin import auth

from launchready.platform.clients import firebase_app

SESSION_COOKIE = "__session"
OPS_CLAIM = "ops"


class Denied(Exception):
    """401 (not signed in) or 403 (signed in without the ops role); the body says nothing more."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Operator:
    uid: str
    email: str
    token: str

    @property
    def csrf_token(self) -> str:
        return csrf_token_for(self.token)


def bearer_token(request: flask.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return request.cookies.get(SESSION_COOKIE) or None


def verify(token: str | None) -> dict[str, Any]:
    """The token's claims, or Denied(401)."""
    if not token:
        raise Denied(401, "not signed in")
    try:
        claims = auth.verify_id_token(token, app=firebase_app(), check_revoked=True)
    except (
        ValueError,
        auth.InvalidIdTokenError,
        auth.RevokedIdTokenError,
        auth.UserDisabledError,
        auth.UserNotFoundError,
        auth.CertificateFetchError,
    ) as exc:
        raise Denied(401, "invalid or expired ID token") from exc
    # Against the Auth emulator firebase-admin skips the signature and with it the expiry check.
    if float(claims.get("exp", 0)) <= time.time():
        raise Denied(401, "invalid or expired ID token")
    return claims


def require_operator(request: flask.Request) -> Operator:
    token = bearer_token(request)
    claims = verify(token)
    if claims.get(OPS_CLAIM) is not True:
        raise Denied(403, "the account has no ops role")
    return Operator(uid=str(claims["uid"]), email=str(claims.get("email", "")), token=str(token))


def csrf_token_for(session_token: str) -> str:
    # Unguessable without the HttpOnly session token, which a cross-site page can neither read nor send.
    return hashlib.sha256(b"launchready-ops-csrf\n" + session_token.encode()).hexdigest()


def check_csrf(request: flask.Request, operator: Operator) -> None:
    """Raise Denied(403) unless the POST comes from a page of this console."""
    check_origin(request)
    sent = request.form.get("csrf_token", "")
    if not hmac.compare_digest(sent, operator.csrf_token):
        raise Denied(403, "missing or wrong form token")


def check_origin(request: flask.Request) -> None:
    """The sign-in POST has no session yet: the Origin check alone guards it (login CSRF)."""
    origin_host = urlsplit(request.headers.get("Origin") or request.headers.get("Referer") or "").netloc
    allowed = {
        request.host,
        *(h.strip() for h in request.headers.get("X-Forwarded-Host", "").split(",") if h),
    }
    if not origin_host or origin_host not in allowed:
        raise Denied(403, "cross-origin request refused")


def mask_email(email: str | None) -> str:
    """`ada.lovelace@example.com` -> `a***@example.com`: enough to tell customers apart in a list."""
    if not email or "@" not in email:
        return email or ""
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"
