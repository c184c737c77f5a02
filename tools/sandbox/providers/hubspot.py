"""HubSpot CRM contacts: batch upsert by email and search, with HubSpot's answer and error shapes.

The portal behaves like a real one: properties, enumerations and a forward-only lifecycle (docs/tools.md).
"""

import itertools
import json
import re
import uuid
from typing import Any

from ..messages import SandboxRequest, SandboxResponse
from .base import Provider, bearer_token

UPSERT_PATH = "/crm/objects/2026-09/contacts/batch/upsert"
# Operation `post-/crm/objects/2026-09/{objectType}/gdpr-delete` of the same spec collection (and its
# v3 form, https://developers.hubspot.com/docs/api-reference/crm-contacts-v3/basic/post-crm-v3-objects-contacts-gdpr-delete).
_GDPR_DELETE_PATHS = re.compile(
    r"^/crm/(?:objects/(?:2026-03|2026-09)/contacts|v3/objects/contacts)/gdpr-delete$"
)
_UPSERT_PATHS = re.compile(
    r"^/crm/(?:objects/(?:2026-03|2026-09)/contacts|v3/objects/contacts)/batch/upsert$"
)
# Operation `post-/crm/objects/2026-09/{objectType}/search` (CollectionResponseWithTotalSimplePublicObject).
_SEARCH_PATHS = re.compile(r"^/crm/(?:objects/(?:2026-03|2026-09)/contacts|v3/objects/contacts)/search$")
# Returned with every object, asked for or not (HubSpot's search guide, whose example answer to a
# `properties` list adds these: https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm).
_ALWAYS_RETURNED = ("createdate", "hs_object_id", "lastmodifieddate")
BATCH_LIMIT = 100
# HubSpot's default lifecycle stages, in their forward order.
LIFECYCLE_ORDER = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
LIFECYCLE_STAGES = frozenset(LIFECYCLE_ORDER)
# The multi-checkbox property the runbook has founders create, with one option per tag (docs/operations.md).
TAGS_PROPERTY = "launchready_tags"
TAG_OPTIONS = ("signed_up", "customer", "trialing", "payment_failed", "canceled", "paused", "refunded",
               "disputed", "account_deleted")
# HubSpot's default contact properties the adapter may write, plus read-only ones it sets itself.
_DEFAULT_PROPERTIES: dict[str, dict[str, Any]] = {
    "email": {"type": "string", "fieldType": "text"},
    "firstname": {"type": "string", "fieldType": "text"},
    "lastname": {"type": "string", "fieldType": "text"},
    "phone": {"type": "string", "fieldType": "phonenumber"},
    "company": {"type": "string", "fieldType": "text"},
    "lifecyclestage": {"type": "enumeration", "fieldType": "radio", "options": list(LIFECYCLE_ORDER)},
    TAGS_PROPERTY: {"type": "enumeration", "fieldType": "checkbox", "options": list(TAG_OPTIONS)},
}
_READ_ONLY = frozenset({"hs_object_id", "createdate", "lastmodifieddate"})
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
        self._gdpr_deleted: list[str] = []  # emails erased or blocklisted by a GDPR delete
        self._properties = {name: {"name": name, **spec} for name, spec in _DEFAULT_PROPERTIES.items()}

    def property_definitions(self) -> list[dict[str, Any]]:
        return [dict(definition) for definition in self._properties.values()]

    def define_property(self, spec: Any) -> dict[str, Any]:
        """Create or replace a contact property: {"name", "type": "string"|"enumeration",
        "fieldType", "options": [...] for enumerations}, as a portal admin would."""
        name = str(spec.get("name", "")) if isinstance(spec, dict) else ""
        if not isinstance(spec, dict) or not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", name):
            raise ValueError("name must be a lower-case internal property name")
        kind = spec.get("type", "string")
        options = spec.get("options")
        if kind not in ("string", "enumeration"):
            raise ValueError("type must be string or enumeration")
        listed = isinstance(options, list) and all(isinstance(option, str) for option in options)
        if kind == "enumeration" and not (listed and isinstance(options, list)):
            raise ValueError("an enumeration needs options: a list of strings")
        definition = {"name": spec["name"], "type": kind, "fieldType": str(spec.get("fieldType") or "text")}
        if isinstance(options, list) and kind == "enumeration":
            definition["options"] = list(options)
        self._properties[definition["name"]] = definition
        return dict(definition)

    def state(self) -> dict[str, list[dict[str, Any]]]:
        return {"contacts": list(self._contacts.values()),
                "gdpr_deleted": [{"email": email} for email in self._gdpr_deleted]}

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
            # The limit that was hit is named by policyName (DAILY, TEN_SECONDLY_ROLLING, SECONDLY).
            policy = code if code in ("DAILY", "TEN_SECONDLY_ROLLING", "SECONDLY") else "TEN_SECONDLY_ROLLING"
            body.update(category="RATE_LIMITS", errorType="RATE_LIMIT", policyName=policy)
            if policy == "DAILY":
                body["message"] = message or "You have reached your daily limit."
        if status == 477:  # "a Retry-After response header ... (typically up to 24 hours)"
            headers["Retry-After"] = "3600"
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
        if request.method == "POST" and _GDPR_DELETE_PATHS.match(request.path.rstrip("/")):
            return self._gdpr_delete(request)
        if request.method == "POST" and _SEARCH_PATHS.match(request.path.rstrip("/")):
            return self._search(request)
        if request.method != "POST" or not _UPSERT_PATHS.match(request.path.rstrip("/")):
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

        started = self.clock.iso_now()
        results, errors = [], []
        for item in inputs:
            problem = _validate_input(item) or self._property_problem(item)
            if problem:
                errors.append(problem)
            else:
                results.append(self._upsert(item["id"].lower(), item.get("properties") or {}))
        if not results:
            # A batch with no valid input fails as a whole, in the Error shape (correlationId etc.).
            first = errors[0]
            failed = self.error(400, first["category"], first["message"])
            failed.body.update(context=first["context"], errors=first["errors"])
            sub_category = first["errors"][0].get("subCategory")
            if sub_category:  # the Error schema's `subCategory` is the reason as a string
                failed.body["subCategory"] = sub_category
            return failed
        body = {"status": "COMPLETE", "results": results, "startedAt": started,
                "completedAt": self.clock.iso_now()}
        if errors:
            body.update(numErrors=len(errors), errors=errors)
            return SandboxResponse(207, body)
        return SandboxResponse(200, body)

    def _property_problem(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """HubSpot's answer to a property the portal does not define, or an option it does not have."""
        problems = []
        for name, value in (item.get("properties") or {}).items():
            definition = self._properties.get(name)
            if name in _READ_ONLY:
                problems.append({"isValid": False, "message": f"{name} is a read only property",
                                 "error": "READ_ONLY_VALUE", "name": name})
                continue
            if definition is None:
                problems.append({"isValid": False, "message": f'Property "{name}" does not exist',
                                 "error": "PROPERTY_DOESNT_EXIST", "name": name})
                continue
            if definition["type"] != "enumeration" or value in (None, ""):
                continue
            chosen = str(value).split(";") if definition["fieldType"] == "checkbox" else [str(value)]
            for option in chosen:
                if option not in definition["options"]:
                    problems.append({"isValid": False, "error": "INVALID_OPTION", "name": name,
                                     "message": f"{option} was not one of the allowed options: "
                                                f"{definition['options']}"})
        if not problems:
            return None
        # The message embeds the list as JSON, like HubSpot's.
        return _input_error(f"Property values were not valid: {json.dumps(problems)}", item.get("id"),
                            problems[0]["error"])

    def _gdpr_delete(self, request: SandboxRequest) -> SandboxResponse:
        """Permanently deletes the contact (204, no body). By email, an address with no contact is still
        blocklisted, as HubSpot documents; by id, an unknown id is a 404."""
        body = request.body if isinstance(request.body, dict) else {}
        object_id, id_property = body.get("objectId"), body.get("idProperty")
        if not isinstance(object_id, str) or not object_id:
            return self.error(400, message="Invalid input JSON: 'objectId' is required")
        if id_property == "email":
            email = object_id.strip().lower()
        elif id_property in (None, "", "hs_object_id"):
            email = next((key for key, contact in self._contacts.items() if contact["id"] == object_id), "")
            if not email:
                return self.error(404, "OBJECT_NOT_FOUND", f"resource not found: {object_id}")
        else:
            return self.error(400, message=f"Property {id_property} is not a unique identifier for contacts")
        self._contacts.pop(email, None)
        if email not in self._gdpr_deleted:
            self._gdpr_deleted.append(email)
        return SandboxResponse(204)

    def _search(self, request: SandboxRequest) -> SandboxResponse:
        """Contacts matching any filter group (all filters of a group), with the asked-for properties.
        Models the operators EQ and IN (string equality; emails compare lower-cased, as HubSpot
        stores them); another operator is answered 400, naming the sandbox's limit."""
        body = request.body if isinstance(request.body, dict) else {}
        groups = body.get("filterGroups") or []
        for group in groups:
            for condition in group.get("filters") or []:
                if condition.get("operator") not in ("EQ", "IN"):
                    return self.error(400, message=f"the sandbox models the search operators EQ and IN, "
                                                   f"not {condition.get('operator')}")
        found = [contact for contact in self._contacts.values()
                 if not groups or any(_matches(contact, group.get("filters") or []) for group in groups)]
        wanted = set(body.get("properties") or []) | set(_ALWAYS_RETURNED)
        limit = max(1, min(int(body.get("limit") or 10), 200))
        results = [
            {"id": contact["id"], "createdAt": contact["createdAt"], "updatedAt": contact["updatedAt"],
             "archived": False,
             "properties": {name: value for name, value in contact["properties"].items() if name in wanted}}
            for contact in found[:limit]
        ]
        return SandboxResponse(200, {"total": len(found), "results": results})

    def _upsert(self, email: str, properties: dict[str, Any]) -> dict[str, Any]:
        now = self.clock.iso_now()
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
        updates = {key: _as_text(value) for key, value in properties.items()}
        stage = updates.get("lifecyclestage")
        if stage and not _forward(contact["properties"].get("lifecyclestage") or "", stage):
            del updates["lifecyclestage"]  # only moves forward; clear it first to go back
        contact["properties"].update(updates)
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


def _forward(current: str, new: str) -> bool:
    if not current or current not in LIFECYCLE_STAGES or new not in LIFECYCLE_STAGES:
        return True
    return LIFECYCLE_ORDER.index(new) >= LIFECYCLE_ORDER.index(current)


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


def _matches(contact: dict[str, Any], filters: list[dict[str, Any]]) -> bool:
    def holds(condition: dict[str, Any]) -> bool:
        name = condition.get("propertyName")
        stored = str(contact["properties"].get(name) or "")
        is_in = condition.get("operator") == "IN"
        wanted = (condition.get("values") or []) if is_in else [condition.get("value")]
        if name == "email":
            stored, wanted = stored.lower(), [str(value).lower() for value in wanted]
        return stored in [str(value) for value in wanted]

    return all(holds(condition) for condition in filters)
