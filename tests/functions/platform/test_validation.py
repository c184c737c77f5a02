"""Validation messages in words: every violation names its field and rule, never echoes the value or a
regular expression (launchready.platform.validation, as the support and checkout endpoints use it)."""

from typing import Any

import pytest
from launchready.handlers import create_checkout as checkout
from launchready.handlers import support_request as support
from launchready.platform.validation import RequestValidator
from launchready.platform.web import HttpError

CLIENT_REQUEST_ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def support_body(**overrides: Any) -> dict[str, Any]:
    return {"subject": "Invoice", "message": "Wrong name.", "category": "billing",
            "client_request_id": CLIENT_REQUEST_ID, **overrides}


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != name}


SUPPORT_CASES = {
    "message over 5000 characters": (support_body(message="x" * 5001),
                                     [("message", "message is longer than 5000 characters")]),
    "empty subject": (support_body(subject=""), [("subject", "subject is empty"),
                                                 ("subject", "subject must be more than spaces")]),
    "blank message": (support_body(message="   "), [("message", "message must be more than spaces")]),
    "subject over 150 characters": (support_body(subject="s" * 151),
                                    [("subject", "subject is longer than 150 characters")]),
    "missing subject": (without(support_body(), "subject"), [("subject", "subject is required")]),
    "two missing fields": (without(without(support_body(), "subject"), "category"),
                           [("category", "category is required"), ("subject", "subject is required")]),
    "unexpected field": (support_body(priority="urgent"), [
        ("priority", "priority is not an accepted field (accepted: subject, message, category, "
                     "client_request_id)")]),
    "unknown category": (support_body(category="refund"), [
        ("category", "category must be one of: billing, account, bug, feature, other")]),
    "client_request_id not a UUID": (support_body(client_request_id="retry-1"), [
        ("client_request_id",
         "client_request_id must be a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e")]),
    "subject not text": (support_body(subject=42), [("subject", "subject must be text")]),
}


@pytest.mark.parametrize("case", list(SUPPORT_CASES))
def test_support_violations_name_the_field_and_the_rule(case: str) -> None:
    body, expected = SUPPORT_CASES[case]

    with pytest.raises(HttpError) as raised:
        support.validate(body)

    error = raised.value
    assert (error.status, error.code) == (400, "invalid_request")
    assert [(item["field"], item["message"]) for item in error.details["errors"]] == expected
    assert all(message in error.message for _, message in expected)


def test_no_message_echoes_the_value_or_a_pattern() -> None:
    body = support_body(message="y" * 6000, client_request_id="not-a-uuid-" + "z" * 40, subject=" ")
    with pytest.raises(HttpError) as raised:
        support.validate(body)

    texts = [raised.value.message, *(item["message"] for item in raised.value.details["errors"])]
    assert not [text for text in texts if "yyyy" in text or "zzzz" in text or "[0-9" in text or "\\S" in text]


CHECKOUT_CASES = {
    "missing client_request_id": ({}, [("client_request_id", "client_request_id is required")]),
    "price_id not a price id": ({"client_request_id": CLIENT_REQUEST_ID, "price_id": "prod_1"}, [
        ("price_id",
         "price_id must be a Stripe price id (price_ followed by up to 200 letters, digits or _)")]),
    "unexpected field": ({"client_request_id": CLIENT_REQUEST_ID, "quantity": 2}, [
        ("quantity", "quantity is not an accepted field (accepted: client_request_id, price_id)")]),
}


@pytest.mark.parametrize("case", list(CHECKOUT_CASES))
def test_checkout_violations_name_the_field_and_the_rule(case: str) -> None:
    body, expected = CHECKOUT_CASES[case]

    with pytest.raises(HttpError) as raised:
        checkout.validate(body)

    assert [(item["field"], item["message"]) for item in raised.value.details["errors"]] == expected


@pytest.mark.parametrize("schema", [support.REQUEST_SCHEMA, checkout.REQUEST_SCHEMA],
                         ids=["support", "checkout"])
def test_every_pattern_has_a_description_in_words(schema: dict[str, Any]) -> None:
    undescribed = [name for name, rules in schema["properties"].items()
                   if "pattern" in rules and not rules.get("description")]
    assert undescribed == []


def test_a_valid_body_passes_unchanged() -> None:
    body = support_body()
    assert support.validate(body) is body


def test_a_nested_field_is_named_by_its_path() -> None:
    validator = RequestValidator({"type": "object", "properties": {"address": {
        "type": "object", "required": ["city"], "properties": {"city": {"type": "string", "maxLength": 3}}}}},
        "test request")

    assert validator.violations({"address": {}}) == [{"field": "address.city",
                                                      "message": "address.city is required"}]
    assert validator.violations({"address": {"city": "Lisbon"}}) == [
        {"field": "address.city", "message": "address.city is longer than 3 characters"}]
