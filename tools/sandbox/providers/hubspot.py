"""HubSpot CRM v3: contacts batch upsert by email, with HubSpot's answer and error shapes."""

import itertools
import re
import uuid
from typing import Any

from ..messages import SandboxRequest, SandboxResponse
from .base import Provider, bearer_token, iso_now

UPSERT_PATH = "/crm/v3/objects/contacts/batch/upsert"
BATCH_LIMIT = 100
LIFECYCLE_STAGES = frozenset(
    {
        "subscriber",
        "lead",
        "marketingqualifiedlead",
        "salesqualifiedlead",
        "opportunity",
        "customer",
        "evangelist",
        "other",
    }
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CATEGORIES = {
    400: "VALIDATION_ERROR",
    401: "INVALID_AUTHENTICATION",
    403: "MISSING_SCOPES",
    404: "OBJECT_NOT_FOUND",
    409: "CONFLICT",
    429: "RATE_LIMITS",
}


class HubSpot(Provider):
    name = "hubspot"
    path_prefixes = ("/crm/",)

    def reset(self) -> None:
        self._contacts: dict[str, dict[str, Any]] = {}  # by lower-case email
        self._ids = itertools.count(101)

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {"contacts": list(self._contacts.values())}

    def error(self, status: int, code: str = "", message: str = "") -> SandboxResponse:
        category = code or _CATEGORIES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
        body: dict[str, Any] = {
            "status": "error",
            "message": message or _default_message(status),
            "correlationId": str(uuid.uuid4()),
            "category": category,
        }
        headers = {}
        if status == 429:
            body.update(errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING")
            headers["Retry-After"] = "1"
        return SandboxResponse(status, body, headers)

    def authenticate(self, request: SandboxRequest) -> SandboxResponse | None:
        if bearer_token(request):
            return None
        return self.error(
            401,
            message="Authentication credentials not found. This API supports OAuth 2.0 authentication and "
            "you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
        )

    def handle(self, request: SandboxRequest) -> SandboxResponse:
        if request.method != "POST" or request.path.rstrip("/") != UPSERT_PATH:
            return self.error(404, "OBJECT_NOT_FOUND", f"No route for {request.method} {request.path}")
        if request.body_error:
            return self.error(400, message=f"Invalid input JSON on line 1: {request.body_error}")
        inputs = request.body.get("inputs") if isinstance(request.body, dict) else None
        if not isinstance(inputs, list) or not inputs:
            return self.error(400, message="Invalid input JSON: 'inputs' must be a non-empty array")
        if len(inputs) > BATCH_LIMIT:
            return self.error(400, message=f"Batch input limit is {BATCH_LIMIT}, got {len(inputs)}")
        ids = [str(item.get("id", "")).lower() for item in inputs if isinstance(item, dict)]
        duplicates = sorted({email for email in ids if ids.count(email) > 1})
        if duplicates:
            return self.error(
                400, message=f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique"
            )

        started = iso_now()
        results, errors = [], []
        for item in inputs:
            problem = _validate_input(item)
            if problem:
                errors.append(problem)
            else:
                results.append(self._upsert(item["id"].lower(), item.get("properties") or {}))
        if not results:
            # A batch with no valid input fails as a whole, in the Error shape (correlationId etc.).
            first = errors[0]
            failed = self.error(400, first["category"], first["message"])
            failed.body.update(context=first["context"], errors=first["errors"])
            return failed
        body = {"status": "COMPLETE", "results": results, "startedAt": started, "completedAt": iso_now()}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return SandboxResponse(207, body)
        return SandboxResponse(200, body)

    def _upsert(self, email: str, properties: dict[str, Any]) -> dict[str, Any]:
        now = iso_now()
        contact = self._contacts.get(email)
        created = contact is None
        if contact is None:
            contact_id = str(next(self._ids))
            contact = {
                "id": contact_id,
                "properties": {"email": email, "hs_object_id": contact_id, "createdate": now},
                "createdAt": now,
                "archived": False,
            }
            self._contacts[email] = contact
        # A property in the input replaces its stored value; properties not mentioned are kept.
        contact["properties"].update({key: _as_text(value) for key, value in properties.items()})
        contact["properties"]["lastmodifieddate"] = now
        contact["updatedAt"] = now
        return {
            "id": contact["id"],
            "properties": dict(contact["properties"]),
            "createdAt": contact["createdAt"],
            "updatedAt": now,
            "archived": False,
            "new": created,
        }


def _as_text(value: Any) -> str:
    # HubSpot stores every property value as a string (booleans as "true"/"false").
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _validate_input(item: Any) -> dict[str, Any] | None:
    if not isinstance(item, dict):
        return _input_error("Each input must be an object", None)
    email = item.get("id")
    if item.get("idProperty") != "email":
        return _input_error("This sandbox upserts contacts by idProperty 'email' only", email)
    if not isinstance(email, str) or not _EMAIL.match(email):
        return _input_error(f"Email address {email} is invalid", email, "INVALID_EMAIL")
    properties = item.get("properties") or {}
    if not isinstance(properties, dict):
        return _input_error("'properties' must be an object", email)
    stage = properties.get("lifecyclestage")
    if stage not in (None, "") and stage not in LIFECYCLE_STAGES:
        return _input_error(
            f'Property values were not valid: [{{"isValid":false,"message":"{stage} was not one of the '
            f'allowed options","error":"INVALID_OPTION","name":"lifecyclestage"}}]',
            email,
            "INVALID_OPTION",
        )
    return None


def _input_error(message: str, email: Any, sub_category: str = "") -> dict[str, Any]:
    # One entry of a 207's `errors`: the StandardError schema (category, context, errors, links,
    # message, status required); the specific reason is an ErrorDetail's string `subCategory`.
    detail: dict[str, Any] = {"message": message}
    if sub_category:
        detail["subCategory"] = sub_category
    return {
        "status": "error",
        "category": "VALIDATION_ERROR",
        "message": message,
        "context": {"id": [str(email)]},
        "errors": [detail],
        "links": {},
    }


def _default_message(status: int) -> str:
    if status == 429:
        return "You have reached your ten_secondly_rolling limit."
    if status >= 500:
        return "internal error"
    return "Bad request"
