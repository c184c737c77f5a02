"""Tombstones of deleted accounts: `deleted_users/{uid}`, written first by `user_deleted`.

A missing profile with a tombstone will never appear again (acknowledge the event); one without may
not exist yet (retry). A tombstone holds no personal data.
"""

from typing import Any

from google.cloud import firestore

from launchready.platform.clients import db

DELETED_USERS = "deleted_users"


def tombstone_ref(uid: str) -> firestore.DocumentReference:
    return db().collection(DELETED_USERS).document(uid)


def tombstone(uid: str, transaction: firestore.Transaction | None = None) -> dict[str, Any] | None:
    """The tombstone of a deleted account, or None for an account that was never deleted."""
    snapshot = tombstone_ref(uid).get(transaction=transaction)
    return (snapshot.to_dict() or {}) if snapshot.exists else None


def is_deleted(uid: str) -> bool:
    return tombstone(uid) is not None


def write_tombstone(uid: str, **fields: Any) -> None:
    """Mark `uid` deleted (merging, so a repeat keeps the first `deleted_at`)."""
    ref = tombstone_ref(uid)
    existing = tombstone(uid) or {}
    ref.set({"uid": uid, "deleted_at": existing.get("deleted_at") or firestore.SERVER_TIMESTAMP, **fields},
            merge=True)


def account_deleted(uid: str) -> bool:
    """The account is gone: no profile, and a tombstone (a profile written again means it is in use)."""
    return not db().collection("users").document(uid).get().exists and is_deleted(uid)
