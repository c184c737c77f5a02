"""The Google Play sandbox's contract: the androidpublisher v3 discovery document of google-api-python-client.

A request reaches the sandbox's Play only as the document defines it; an answer outside the method's
response schema is a sandbox bug (docs/tools.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

DOCUMENT = ("googleapiclient.discovery_cache", "documents/androidpublisher.v3.json")


@dataclass(frozen=True)
class Method:
    id: str  # e.g. androidpublisher.purchases.subscriptionsv2.get
    http_method: str
    pattern: re.Pattern[str]
    parameters: dict[str, dict[str, Any]]
    request: str | None  # schema name of the body, None when the method takes none
    response: str | None  # schema name of the answer, None when it is empty


@dataclass(frozen=True)
class Violation:
    """Why a request breaks the document, in the words of Google's API front end."""

    message: str
    field: str = ""


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", str(name)).lower()


def _pattern(path: str, parameters: dict[str, dict[str, Any]]) -> re.Pattern[str]:
    """A discovery path template (`.../tokens/{token}:cancel`) as an anchored pattern of the URL path."""
    def piece(part: str) -> str:
        if not part.startswith("{"):
            return re.escape(part)
        name = part[1:-1]
        if not name.startswith("+"):
            return f"(?P<{name}>[^/:]+)"
        # {+name}: a reserved expansion spanning segments, in the shape the parameter's `pattern` gives.
        name = name[1:]
        shape = parameters.get(name, {}).get("pattern", "^.+$").removeprefix("^").removesuffix("$")
        return f"(?P<{name}>{shape})"

    return re.compile("^/" + "".join(piece(part) for part in re.split(r"(\{[^}]+\})", path)) + "$")


def _json_schema(node: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    kind = node.get("type")
    if kind == "object":
        schema: dict[str, Any] = {"type": "object"}
        properties = node.get("properties")
        if properties is not None:
            schema["properties"] = {name: _json_schema(value) for name, value in properties.items()}
            required = [name for name, value in properties.items()
                        if value.get("description", "").startswith("Required.")]
            if required:
                schema["required"] = required
        if "additionalProperties" in node:
            schema["additionalProperties"] = _json_schema(node["additionalProperties"])
        elif properties is not None:
            schema["additionalProperties"] = False
        return schema
    if kind == "array":
        return {"type": "array", "items": _json_schema(node.get("items", {}))}
    if kind == "string":
        schema = {"type": "string"}
        if "enum" in node:
            schema["enum"] = node["enum"]
        if node.get("format") in ("int64", "uint64"):
            schema["pattern"] = r"^-?[0-9]+$"
        elif node.get("format") == "google-datetime":
            schema["format"] = "date-time"
        return schema
    if kind in ("integer", "number", "boolean"):
        return {"type": kind}
    return {}  # "any"


class Discovery:
    def __init__(self) -> None:
        package, name = DOCUMENT
        self.document: dict[str, Any] = json.loads(resources.files(package).joinpath(name).read_text())
        self.revision: str = self.document["revision"]
        self.methods = list(self._methods(self.document))
        self._definitions = {name: _json_schema(schema) for name, schema in self.document["schemas"].items()}
        self._validators: dict[str, Draft202012Validator] = {}

    @staticmethod
    def _methods(node: dict[str, Any]) -> Any:
        for method in node.get("methods", {}).values():
            parameters = method.get("parameters", {})
            yield Method(method["id"], method["httpMethod"], _pattern(method["path"], parameters), parameters,
                         method.get("request", {}).get("$ref"), method.get("response", {}).get("$ref"))
        for resource in node.get("resources", {}).values():
            yield from Discovery._methods(resource)

    def validator(self, schema_name: str) -> Draft202012Validator:
        if schema_name not in self._validators:
            schema = {"$defs": self._definitions, "$ref": f"#/$defs/{schema_name}"}
            self._validators[schema_name] = Draft202012Validator(schema, format_checker=FormatChecker())
        return self._validators[schema_name]

    def route(self, http_method: str, path: str) -> tuple[Method | None, dict[str, str]]:
        """The method the document defines for `path` and `http_method` with its path parameters; (None, {})
        when no method has the path, and (None, {"": ...}) when the path exists under another HTTP method."""
        other = None
        for method in self.methods:
            match = method.pattern.match(path)
            if match is None:
                continue
            if method.http_method == http_method:
                return method, {name: unquote(value) for name, value in match.groupdict().items()}
            other = method
        return None, ({"": other.http_method} if other else {})

    def check_request(self, method: Method, query: dict[str, list[str]], body: Any,
                      body_error: str) -> Violation | None:
        known = set(self.document["parameters"]) | {name for name, spec in method.parameters.items()
                                                     if spec.get("location") == "query"}
        for name in query:
            if name not in known:
                return Violation(f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query '
                                 f"parameter. Field '{name}' could not be found in request message.", name)
        if body_error:
            return Violation(f"Invalid JSON payload received. {body_error}")
        if method.request is None:
            return None if body is None else Violation("Invalid JSON payload received. The method takes no "
                                                       "body.")
        # Google parses the JSON (unknown names, types, enum values) before it checks required fields.
        errors = sorted(self.validator(method.request).iter_errors({} if body is None else body),
                        key=lambda error: (error.validator == "required", list(error.absolute_path)))
        return _violation(errors[0]) if errors else None

    def check_response(self, method: Method, body: Any) -> list[str]:
        if method.response is None:
            return [] if body is None else [f"{method.id} answers an empty body, not {body!r}"]
        return [f"{'.'.join(str(p) for p in error.absolute_path) or '(root)'}: {error.message}"
                for error in self.validator(method.response).iter_errors(body)]


def _violation(error: ValidationError) -> Violation:
    where = ".".join(_snake(str(part)) for part in error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
        unknown = next(name for name in error.instance if name not in allowed)
        at = f" at '{where}'" if where else ""
        return Violation(f'Invalid JSON payload received. Unknown name "{unknown}"{at}: Cannot find field.',
                         where)
    if error.validator == "required":
        missing = re.search(r"'([^']+)' is a required property", error.message)
        name = _snake(missing.group(1)) if missing else ""
        full = f"{where}.{name}" if where and name else name
        return Violation(f"Request contains an invalid argument: {full} is required.", full)
    return Violation(f"Invalid value at '{where}', {json.dumps(error.instance)}", where)
