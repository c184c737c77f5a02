"""Firestore REST shapes the journey uses: the app's profile write, and documents as plain values.

The profile write is the app's own (security rules decide); nothing here talks to a server."""

from __future__ import annotations

from typing import Any

from .target import AuthUser


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
