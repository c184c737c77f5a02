"""Custom claims: the billing worker owns only the `pro` claim and must keep every other claim
(roles set by an admin tool, feature flags ...) exactly as it finds it.

Custom claims reach the app in the next ID token; the app refreshes its token when it sees
`entitlements.pro` change on its users/{uid} document.
"""

from collections.abc import Mapping
from typing import Any

from firebase_admin import auth

from launchready.platform import log
from launchready.platform.clients import firebase_app
from launchready.platform.errors import PermanentError

PRO_CLAIM = "pro"


def merged_claims(existing: Mapping[str, Any] | None, **changes: Any) -> dict[str, Any]:
    """`existing` with `changes` applied; a change to None removes that claim."""
    claims = dict(existing or {})
    for name, value in changes.items():
        if value is None:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


def set_pro_claim(uid: str, pro: bool) -> dict[str, Any]:
    """Set (pro=True) or clear (pro=False) the `pro` claim, keeping all other claims.
    Returns a storable summary for the ledger. Raises PermanentError (code `claims_rejected`) when the
    merged claims break Firebase's rules: more than 1000 bytes of JSON (error `auth/claims-too-large`,
    https://firebase.google.com/docs/auth/admin/errors) or a reserved claim name."""
    app = firebase_app()
    try:
        user = auth.get_user(uid, app=app)
    except auth.UserNotFoundError:
        # The account was deleted after paying; there is no token left to carry the claim.
        log.warning("no auth user for billing claims", uid=uid)
        return {"pro": pro, "changed": False, "skipped": "auth_user_not_found"}
    existing = dict(user.custom_claims or {})
    claims = merged_claims(existing, **{PRO_CLAIM: True if pro else None})
    if claims == existing:
        return {"pro": pro, "changed": False}
    try:
        auth.set_custom_user_claims(uid, claims, app=app)
    except ValueError as exc:
        # firebase-admin validates before any call (`_auth_utils.validate_custom_claims`): the payload
        # must stay within 1000 characters and use no reserved name; the same claims fail every retry.
        raise PermanentError("claims_rejected", f"custom claims of {uid}: {exc}",
                             provider="firebase_auth") from exc
    log.info("pro claim granted" if pro else "pro claim revoked", uid=uid)
    return {"pro": pro, "changed": True}
