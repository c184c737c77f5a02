"""HubSpot CRM: contacts upserted by email through the date-versioned API 2026-09
(POST /crm/objects/2026-09/contacts/batch/upsert).

The FULL tag set is written every time, so a redelivered or reordered message converges on the same
contact (docs/architecture.md, "HubSpot").
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from launchready.platform.config import secret, settings
from launchready.platform.errors import PermanentError
from launchready.providers.http import Failure, ProviderApi, Rule

API_VERSION = "2026-09"
UPSERT_PATH = f"/crm/objects/{API_VERSION}/contacts/batch/upsert"
# Same spec, operation `post-/crm/objects/2026-09/{objectType}/gdpr-delete` (204 No Content).
GDPR_DELETE_PATH = f"/crm/objects/{API_VERSION}/contacts/gdpr-delete"
TAGS_PROPERTY = "launchready_tags"
BATCH_LIMIT = 100  # HubSpot's maximum inputs per batch call
# HubSpot's internal values of the default lifecycle stages.
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


@dataclass(frozen=True)
class Contact:
    email: str
    tags: frozenset[str] = frozenset()
    lifecycle_stage: str = "lead"
    properties: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> "Contact":
        return cls(
            email=str(data["email"]),
            tags=frozenset(data.get("tags") or ()),
            lifecycle_stage=str(data.get("lifecycle_stage") or "lead"),
            properties=dict(data.get("properties") or {}),
        )


def _read_error(body: Any) -> tuple[str, str]:
    # {"status":"error","message":"...","correlationId":"...","category":"VALIDATION_ERROR"}; a 429 says
    # which limit it hit instead: {"errorType":"RATE_LIMIT","policyName":"DAILY"|"TEN_SECONDLY_ROLLING"}.
    code = body.get("policyName") or body.get("category") or body.get("errorType") or ""
    return str(code), str(body.get("message") or "")


ERRORS_DOC = "https://developers.hubspot.com/docs/api-reference/error-handling"
LIMITS_DOC = "https://developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines"
# What each answer means, as HubSpot's error-handling and usage-limit pages define it.
FAILURES: dict[int | str, Rule] = {
    400: Rule(Failure.PERMANENT, ERRORS_DOC),  # VALIDATION_ERROR: the input itself is wrong
    401: Rule(Failure.PERMANENT, ERRORS_DOC),  # the credential is invalid
    403: Rule(Failure.PERMANENT, ERRORS_DOC),  # the credential lacks a scope
    404: Rule(Failure.PERMANENT, ERRORS_DOC),
    409: Rule(Failure.PERMANENT, ERRORS_DOC),  # CONFLICT, e.g. a duplicate unique value
    414: Rule(Failure.PERMANENT, ERRORS_DOC),  # URI too long
    # "Locks will last for 2 seconds ... include a delay of at least 2 seconds".
    423: Rule(Failure.TRANSIENT, ERRORS_DOC, min_wait_seconds=2.0),
    429: Rule(Failure.TRANSIENT, LIMITS_DOC),  # the ten-secondly burst limit
    # The daily limit resets at midnight (the account's time zone): retrying within minutes cannot help.
    "429:DAILY": Rule(Failure.QUOTA, LIMITS_DOC, min_wait_seconds=3600.0),
    # Data-hosting migration: "a Retry-After response header indicating how many seconds to wait
    # before retrying the request (typically up to 24 hours)".
    477: Rule(Failure.TRANSIENT, ERRORS_DOC),
    502: Rule(Failure.TRANSIENT, ERRORS_DOC),  # processing limits: pause a few seconds, then retry
    503: Rule(Failure.TRANSIENT, ERRORS_DOC),
    504: Rule(Failure.TRANSIENT, ERRORS_DOC),
    **{status: Rule(Failure.TRANSIENT, ERRORS_DOC) for status in range(521, 527)},  # edge: server down
}

_API = ProviderApi("hubspot", _read_error, FAILURES)


def contact_input(contact: Contact) -> dict[str, Any]:
    """One `inputs` entry: identified by email, with the full tag set and the lifecycle stage."""
    email = contact.email.strip().lower()
    if "@" not in email:
        raise ValueError(f"not an email address: {contact.email!r}")
    if contact.lifecycle_stage not in LIFECYCLE_STAGES:
        raise ValueError(f"unknown lifecycle stage: {contact.lifecycle_stage!r}")
    tags = sorted({tag.strip() for tag in contact.tags if tag.strip()})
    if any(";" in tag for tag in tags):
        raise ValueError("a tag cannot contain ';' (HubSpot's multi-checkbox separator)")
    properties = {
        **contact.properties,
        # An empty string clears the property, which is what "no tags" means for the full set.
        TAGS_PROPERTY: ";".join(tags),
        "lifecyclestage": contact.lifecycle_stage,
    }
    return {"idProperty": "email", "id": email, "properties": properties}


def upsert_contacts(
    contacts: Iterable[Contact | Mapping[str, Any]], *, correlation_id: str | None = None
) -> list[str]:
    """Create or update the contacts; returns HubSpot's contact ids.

    Raises TransientError (timeout, 423, 429, 477, 5xx; with `retry_after` when HubSpot gives one),
    QuotaExhausted (the daily limit) or PermanentError (validation, or any per-input error of a 207
    multi-status answer); see FAILURES.
    """
    inputs = [contact_input(c if isinstance(c, Contact) else Contact.from_mapping(c)) for c in contacts]
    emails = [item["id"] for item in inputs]
    if len(set(emails)) != len(emails):
        raise ValueError("the same email appears twice in one upsert")
    token = secret("HUBSPOT_TOKEN")
    ids: list[str] = []
    for start in range(0, len(inputs), BATCH_LIMIT):
        response = _API.post(
            settings().hubspot_base_url,
            UPSERT_PATH,
            json_body={"inputs": inputs[start : start + BATCH_LIMIT]},
            headers={"Authorization": f"Bearer {token}"},
            correlation_id=correlation_id,
        )
        errors = response.body.get("errors") or []
        if response.status == 207 or errors:
            first = errors[0] if errors else {}
            raise PermanentError(
                str(first.get("category") or "MULTI_STATUS"),
                f"{len(errors)} of {len(inputs[start : start + BATCH_LIMIT])} contacts rejected: "
                f"{first.get('message', 'no details')}",
                provider="hubspot",
                status=response.status,
            )
        ids.extend(str(result["id"]) for result in response.body.get("results", []))
    return ids


def gdpr_delete_contact(email: str, *, correlation_id: str | None = None) -> None:
    """Permanently delete the contact with this email and its associated content (HubSpot's GDPR delete,
    `POST /crm/objects/2026-09/contacts/gdpr-delete` with `idProperty: email`; 204 on success). HubSpot
    also blocklists an address that matches no contact, so a repeat is harmless.

    Raises ValueError for an address that is not one, TransientError / PermanentError as any call."""
    address = email.strip().lower()
    if "@" not in address:
        raise ValueError(f"not an email address: {email!r}")
    _API.post(
        settings().hubspot_base_url,
        GDPR_DELETE_PATH,
        json_body={"objectId": address, "idProperty": "email"},
        headers={"Authorization": f"Bearer {secret('HUBSPOT_TOKEN')}"},
        correlation_id=correlation_id,
    )
