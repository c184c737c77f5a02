"""Request bodies checked against a JSON Schema, every violation said in words.

Each violation is `{"field", "message"}`: the field is always named, the value never echoed, and a
`pattern` is described by the property's `description` (docs/architecture.md, "Request validation").
"""

from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from launchready.platform.web import HttpError

JSON_TYPES = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true or false",
              "object": "an object", "array": "a list", "null": "null"}


class RequestValidator:
    """`check(body)` returns the body or raises HttpError 400 `invalid_request` listing every violation."""

    def __init__(self, schema: dict[str, Any], what: str) -> None:
        jsonschema.Draft202012Validator.check_schema(schema)
        self._validator = jsonschema.Draft202012Validator(schema)
        self.what = what

    def violations(self, body: Any) -> list[dict[str, str]]:
        # A "required" error is raised per missing property but names them all; keep each once.
        found = {(item["field"], item["message"]): item
                 for error in self._validator.iter_errors(body) for item in _in_words(error)}
        return [found[key] for key in sorted(found)]

    def check(self, body: Any) -> Any:
        violations = self.violations(body)
        if violations:
            summary = "; ".join(item["message"] for item in violations)
            raise HttpError(400, "invalid_request", f"the {self.what} is not valid: {summary}",
                            errors=violations)
        return body


def _path(error: ValidationError, *extra: str) -> str:
    return ".".join([*(str(part) for part in error.absolute_path), *extra]) or "body"


def _in_words(error: ValidationError) -> Iterator[dict[str, str]]:
    # jsonschema types these attributes loosely (Unset before validation); here they are always set.
    rule: Any = error.validator
    limit: Any = error.validator_value
    instance: Any = error.instance
    schema: dict[str, Any] = error.schema if isinstance(error.schema, dict) else {}
    if rule == "required":
        for name in limit:
            if isinstance(instance, dict) and name not in instance:
                yield _item(_path(error, name), "is required")
        return
    if rule == "additionalProperties":
        known = ", ".join(schema.get("properties", {}))
        for name in sorted(set(instance) - set(schema.get("properties", {}))):
            yield _item(_path(error, str(name)), f"is not an accepted field (accepted: {known})")
        return
    field = _path(error)
    yield _item(field, _rule(rule, limit, schema))


def _rule(rule: Any, limit: Any, schema: dict[str, Any]) -> str:
    if rule == "maxLength":
        return f"is longer than {limit} characters"
    if rule == "minLength":
        return "is empty" if limit == 1 else f"is shorter than {limit} characters"
    if rule == "pattern":
        return f"must be {schema.get('description', 'in the documented format')}"
    if rule == "enum":
        return "must be one of: " + ", ".join(str(value) for value in limit)
    if rule == "type":
        kinds = [limit] if isinstance(limit, str) else list(limit)
        return "must be " + " or ".join(JSON_TYPES.get(kind, kind) for kind in kinds)
    if rule == "maximum":
        return f"must be at most {limit}"
    if rule == "minimum":
        return f"must be at least {limit}"
    # A rule this module does not word yet still names itself rather than echoing the value.
    return f"breaks the schema rule `{rule}`"


def _item(field: str, rule: str) -> dict[str, str]:
    return {"field": field, "message": f"{field} {rule}"}
