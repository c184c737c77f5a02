"""Tombstones of deleted accounts: `deleted_users/{uid}`.

A missing `users/{uid}` profile means one of two things. Right after sign-up the app may not have
written it yet, and an event for that user must be retried until it appears. After the account was
deleted it will never appear again, and an event for it must be acknowledged and recorded instead of
retried into the dead-letter topic. `user_deleted` writes the tombstone first thing, so the two can be
told apart; it holds no personal data (uid, when, the Stripe customers that stay in the billing ledger).
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
