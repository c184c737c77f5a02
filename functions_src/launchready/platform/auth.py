"""Firebase ID token verification for the app-facing endpoints (emulator-aware through
FIREBASE_AUTH_EMULATOR_HOST, which firebase-admin honours)."""

import time
from dataclasses import dataclass

import flask
from firebase_admin import auth

from launchready.platform.clients import firebase_app
from launchready.platform.web import HttpError


@dataclass(frozen=True)
class User:
    uid: str
    email: str
    name: str


def require_user(request: flask.Request) -> User:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HttpError(
            401, "missing_id_token", "send the Firebase ID token as 'Authorization: Bearer <token>'"
        )
    try:
        # check_revoked also confirms the account still exists and is enabled.
        claims = auth.verify_id_token(token.strip(), app=firebase_app(), check_revoked=True)
    except (auth.RevokedIdTokenError, auth.UserDisabledError) as exc:
        raise HttpError(401, "revoked_id_token", str(exc)) from exc
    except (ValueError, auth.InvalidIdTokenError, auth.UserNotFoundError, auth.CertificateFetchError) as exc:
        raise HttpError(401, "invalid_id_token", "the ID token is invalid or expired") from exc
    # Against the Auth emulator firebase-admin skips the signature and with it the expiry check;
    # checking `exp` here keeps local behaviour the same as the cloud's.
    if float(claims.get("exp", 0)) <= time.time():
        raise HttpError(401, "invalid_id_token", "the ID token is invalid or expired")
    return User(uid=claims["uid"], email=claims.get("email", ""), name=claims.get("name", ""))
