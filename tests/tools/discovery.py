"""Fakes of Google APIs answer as the API documents: each body is checked against the discovery document
google-api-python-client ships (googleapiclient/discovery_cache/documents/<api>.<version>.json)."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.cache
def document(api: str, version: str) -> dict[str, Any]:
    path = resources.files("googleapiclient") / "discovery_cache" / "documents" / f"{api}.{version}.json"
    return json.loads(path.read_text(encoding="utf-8"))


def violations(api: str, version: str, schema: str, body: Any) -> list[str]:
    """Where `body` departs from the named schema: unknown keys, wrong JSON types, values outside an enum."""
    schemas = document(api, version)["schemas"]
    found: list[str] = []

    def check(spec: dict[str, Any], value: Any, at: str) -> None:
        if "$ref" in spec:
            spec = schemas[spec["$ref"]]
        kind = spec.get("type")
        if kind == "object":
            if not isinstance(value, dict):
                found.append(f"{at}: expected an object")
                return
            properties = spec.get("properties", {})
            extra = spec.get("additionalProperties")
            for key, item in value.items():
                if key in properties:
                    check(properties[key], item, f"{at}.{key}")
                elif extra is not None:
                    check(extra, item, f"{at}.{key}")
                else:
                    found.append(f"{at}.{key}: not a field of {spec.get('id', 'the object')}")
        elif kind == "array":
            if not isinstance(value, list):
                found.append(f"{at}: expected an array")
                return
            for index, item in enumerate(value):
                check(spec["items"], item, f"{at}[{index}]")
        elif kind == "string":
            # int64/uint64 travel as strings in Google's JSON.
            if not isinstance(value, str):
                found.append(f"{at}: expected a string")
            elif "enum" in spec and value not in spec["enum"]:
                found.append(f"{at}: {value!r} is not one of {spec['enum']}")
        elif kind == "boolean" and not isinstance(value, bool):
            found.append(f"{at}: expected a boolean")
        elif kind == "integer" and (isinstance(value, bool) or not isinstance(value, int)):
            found.append(f"{at}: expected an integer")

    check({"$ref": schema}, body, schema)
    return found


def checked(api: str, version: str, schema: str, body: Any) -> Any:
    """`body`, after asserting it is a valid `schema` of the API's discovery document."""
    problems = violations(api, version, schema, body)
    assert not problems, f"{api}.{version} {schema}: " + "; ".join(problems)
    return body
