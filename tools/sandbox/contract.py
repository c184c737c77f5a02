"""The providers' published OpenAPI documents (`specs/`) as the sandbox's contract, validated by openapi-core.

Every request and every answer is checked, Stripe's answers strictly (no property the document lacks);
Stripe's form bodies are decoded here (docs/tools.md).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jsonschema.exceptions import ValidationError
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.paths.exceptions import OperationNotFound, PathError
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.templating.responses.exceptions import ResponseFinderError
from openapi_core.validation.request import validators as request_validators
from openapi_core.validation.request.exceptions import MissingRequestBody
from openapi_core.validation.response import validators as response_validators
from openapi_core.validation.schemas import (
    oas30_read_schema_validators_factory,
    oas30_write_schema_validators_factory,
)
from openapi_core.validation.schemas.exceptions import InvalidSchemaValue
from werkzeug.datastructures import Headers, ImmutableMultiDict

from .forms import decode_form
from .messages import SandboxRequest, SandboxResponse

SPECS_DIR = Path(__file__).resolve().parent / "specs"
FORM = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Violation:
    """Why a request breaks the provider's document: `kind` is route (no such path), method (path
    exists, method does not), or input (parameters or body); `location` the offending field's path."""

    kind: str
    message: str
    location: tuple[str | int, ...] = ()
    missing: bool = False  # a required field is absent
    unknown: bool = False  # a field the document does not define


@dataclass
class _Request:
    """openapi-core's Request protocol over a SandboxRequest, addressed to the document's server."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None


@dataclass
class _Response:
    status_code: int
    content_type: str
    data: bytes
    headers: Headers = field(default_factory=Headers)


class RevisionError(ValueError):
    """A revision does not fit its document (an addition already there, a removal not there)."""


class Document:
    """One OpenAPI document from `specs/`, with the revisions file `revisions` (in `specs/`) applied."""

    def __init__(self, filename: str, revisions: str | None = None) -> None:
        self.filename = filename
        self.path = SPECS_DIR / filename
        loaded = json.loads(self.path.read_text())
        if revisions:
            loaded = apply_revisions(loaded, json.loads((SPECS_DIR / revisions).read_text()))
        raw = _free_form_objects(_no_content_where_none_declared(_json_for_any_media(loaded)))
        self.raw: dict[str, Any] = raw if raw["openapi"].startswith("3.1") else _null_where_nullable(raw)
        self.version = self.raw["openapi"]
        self.server = _server_url(self.raw)
        self._strict: dict[tuple[str | int, ...], Any] = {}

    def strict_problems(self, schema: SchemaPath, value: Any, where: str = "") -> list[str]:
        """What in `value` breaks `schema`, a property the schema does not define included."""
        key = tuple(schema.parts)
        validator = self._strict.get(key)
        if validator is None:
            validator = self._strict[key] = oas30_read_schema_validators_factory.create(
                self.spec, schema, forbid_unspecified_additional_properties=True)
        try:
            validator.validate(value)
        except InvalidSchemaValue as exc:
            return [f"{where}{_located(error)}" for error in exc.schema_errors
                    if isinstance(error, ValidationError)]
        return []

    @cached_property
    def spec(self) -> SchemaPath:
        # The committed documents are validated as OpenAPI by the tests (tests/tools/sandbox/test_trim.py);
        # validating Stripe's again on every start would cost about a second.
        return OpenAPI.from_dict(self.raw, config=Config(spec_validator_cls=None)).spec  # pyright: ignore[reportArgumentType] (None is documented: skip)

    def _classes(self, suffix: str, module: Any) -> Any:
        prefix = "V31" if self.version.startswith("3.1") else "V30"
        return getattr(module, f"{prefix}{suffix}")

    @cached_property
    def parameters_validator(self) -> Any:
        return self._classes("RequestParametersValidator", request_validators)(self.spec)

    @cached_property
    def body_validator(self) -> Any:
        return self._classes("RequestBodyValidator", request_validators)(self.spec)

    @cached_property
    def response_validator(self) -> Any:
        return self._classes("ResponseDataValidator", response_validators)(self.spec)

    def find(self, method: str, path: str) -> Any:
        """openapi-core's path and operation for the request; raises its PathError when absent."""
        return APICallPathFinder(self.spec).find(method.lower(), self.server + path)


Embedded = Callable[[Any], Iterator[tuple[str, Any, str]]]


class Contract:
    """A provider's documents. `exempt_prefixes`: paths the sandbox serves that are not part of the
    provider's API (Stripe's hosted Checkout page, opened by a browser). `strict`: answers may hold no
    property the document does not define. `embedded(body)`: (schema name, value, where) for objects an
    answer carries whose schema the document leaves open (a Stripe event's `data.object`)."""

    def __init__(
        self,
        filenames: tuple[str, ...],
        exempt_prefixes: tuple[str, ...] = (),
        *,
        form_encoded: bool = False,
        revisions: dict[str, str] | None = None,
        strict: bool = False,
        embedded: Embedded | None = None,
    ) -> None:
        self.documents = [Document(filename, (revisions or {}).get(filename)) for filename in filenames]
        self.exempt_prefixes = exempt_prefixes
        # Stripe encodes query strings like its bodies (`expand[]=...`, `created[gte]=...`).
        self.form_encoded = form_encoded
        self.strict = strict
        self.embedded = embedded

    def warm(self) -> None:
        """Build what the first request would otherwise build (so no caller times out on it)."""
        for document in self.documents:
            for validator in ("parameters_validator", "body_validator", "response_validator"):
                getattr(document, validator)
            for path, item in document.raw["paths"].items():
                for method in item:
                    if method in ("get", "post", "put", "patch", "delete"):
                        document.find(method, path)

    def covers(self, request: SandboxRequest) -> bool:
        return not request.path.startswith(self.exempt_prefixes) if self.exempt_prefixes else True

    def _document_for(self, request: SandboxRequest) -> tuple[Document | None, Violation | None]:
        method_missing: Violation | None = None
        for document in self.documents:
            try:
                document.find(request.method, request.path)
            except OperationNotFound:
                method_missing = Violation("method", f"{request.method} is not allowed on {request.path}")
            except PathError:
                continue
            else:
                return document, None
        return None, method_missing or Violation("route", f"no operation {request.method} {request.path}")

    def check_request(self, request: SandboxRequest) -> Violation | None:
        """The first way `request` breaks the provider's documents, or None when it conforms."""
        document, violation = self._document_for(request)
        if document is None:
            return violation
        wrapped = _wrap_request(document, request)
        if self.form_encoded and request.method != "DELETE":  # a DELETE's query is its body (below)
            violation = _form_query_violation(document, request)
            if violation:
                return violation
        else:
            for error in document.parameters_validator.iter_errors(wrapped):
                return _parameter_violation(error)
        if self.form_encoded:
            return _form_violation(document, request)
        for error in document.body_validator.iter_errors(wrapped):
            if type(error) is MissingRequestBody:  # no body where none is required
                continue
            return _body_violation(error)
        return None

    def check_response(self, request: SandboxRequest, response: SandboxResponse) -> list[str]:
        """What in `response` breaks the document; statuses the document does not describe are not
        checked (Resend's document, for one, describes only its 2xx answers)."""
        document, _ = self._document_for(request)
        if document is None:
            return []
        responses_path = document.find(request.method, request.path).operation / "responses"
        responses = responses_path.read_value()
        documented = {str(response.status), f"{response.status // 100}XX"} & set(responses)
        if response.status < 300 and not documented:
            # A success the document does not list would be checked against `default`, which HubSpot's
            # documents use for errors (its 2026-09 batch upsert lists 200 but not the 207 of a
            # partial failure): a gap in the document, not something to hold the answer to.
            return []
        wrapped = _wrap_request(document, request)
        answer = _Response(response.status, response.content_type, response.encoded())
        problems = []
        declared = next((key for key in (str(response.status), f"{response.status // 100}XX", "default")
                         if key in responses), None)
        if declared is not None and "content" not in responses_path / declared and answer.data:
            # openapi-core checks no body against such a response; the document says there is none.
            problems.append(f"a body where the document declares none (response {declared})")
        for error in document.response_validator.iter_errors(wrapped, answer):
            if isinstance(error, ResponseFinderError):
                continue
            problems.append(_describe(error))
        if self.strict and declared is not None and not problems and answer.data:
            problems.extend(self._strict_problems(document, responses_path / declared, answer.data))
        return problems

    def _strict_problems(self, document: Document, declared: SchemaPath, data: bytes) -> list[str]:
        media = declared / "content" / "application/json"
        if "schema" not in media:
            return []
        body = json.loads(data)
        problems = document.strict_problems(media / "schema", body)
        schemas = document.spec / "components" / "schemas"
        for name, value, where in self.embedded(body) if self.embedded else ():
            if name not in schemas:
                problems.append(f"{where}: an object `{name}` the document has no schema for")
                continue
            problems.extend(document.strict_problems(schemas / name, value, f"{where}/"))
        return problems


def apply_revisions(document: dict[str, Any], revisions: dict[str, Any]) -> dict[str, Any]:
    """`document` with each of `revisions["additions"]` ({target: [keys...], value}) set and each of
    `revisions["removals"]` ({target}) deleted; raises RevisionError when a target does not fit."""
    for addition in revisions.get("additions", []):
        *parents, name = addition["target"]
        holder = _at(document, parents)
        if name in holder:
            raise RevisionError(f"{'/'.join(addition['target'])} is already in the document")
        holder[name] = addition["value"]
    for removal in revisions.get("removals", []):
        *parents, name = removal["target"]
        holder = _at(document, parents)
        if name not in holder:
            raise RevisionError(f"{'/'.join(removal['target'])} is not in the document")
        del holder[name]
        if parents and parents[-1] == "properties":  # a removed property is no longer required either
            owner = _at(document, parents[:-1])
            if name in owner.get("required", []):
                owner["required"] = [item for item in owner["required"] if item != name]
    return document


def _at(document: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    node: Any = document
    for key in keys:
        if not isinstance(node, dict) or key not in node:
            raise RevisionError(f"{'/'.join(keys)} is not in the document")
        node = node[key]
    if not isinstance(node, dict):
        raise RevisionError(f"{'/'.join(keys)} is not an object")
    return node


def _free_form_objects(node: Any) -> Any:
    """A schema `{"type": "object"}` with neither `properties` nor `additionalProperties` is a free-form
    object ("additionalProperties defaults to true", OpenAPI 3.0.3, Schema Object; Stripe's event
    `data.object`); say so, so that a strict check does not read it as "no properties allowed"."""
    if isinstance(node, list):
        return [_free_form_objects(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _free_form_objects(value) for key, value in node.items()}
    if (out.get("type") == "object" and "properties" not in out and "additionalProperties" not in out
            and not {"anyOf", "oneOf", "allOf"} & set(out)):
        out["additionalProperties"] = True
    return out


def _json_for_any_media(node: Any) -> Any:
    """HubSpot's documents declare their error bodies as `*/*`, which openapi-core leaves undecoded;
    the API answers them as application/json, so read that range as JSON."""
    if isinstance(node, list):
        return [_json_for_any_media(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _json_for_any_media(value) for key, value in node.items()}
    content = out.get("content")
    if isinstance(content, dict) and "*/*" in content and "application/json" not in content:
        out["content"] = {
            ("application/json" if key == "*/*" else key): value for key, value in content.items()
        }
    return out


def _no_content_where_none_declared(raw: dict[str, Any]) -> dict[str, Any]:
    """A response whose `content` is an empty map has no body ("content: A map containing descriptions
    of potential response payloads", OpenAPI 3.0.3 Response Object; HubSpot's 204 "No content").
    openapi-core 0.23 reads any `content` key as "a body is required" (`MissingData` for an empty
    204), so drop the empty map: `Contract.check_response` then holds such an answer to having no body."""
    responses = [item.get("responses") or {} for path in (raw.get("paths") or {}).values()
                 for item in path.values() if isinstance(item, dict)]
    responses.append((raw.get("components") or {}).get("responses") or {})
    for by_status in responses:
        for response in by_status.values():
            if isinstance(response, dict) and response.get("content") == {}:
                del response["content"]
    return raw


def _null_where_nullable(node: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` "adds null to the allowed types" (OpenAPI 3.0.3, Schema Object),
    but a JSON Schema validator applies it only beside `type`: with `enum`, `anyOf`, `oneOf` or `allOf`
    (how Stripe marks `locale: null`, `customer: null`) null would be rejected. Say it explicitly."""
    if isinstance(node, list):
        return [_null_where_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {key: _null_where_nullable(value) for key, value in node.items()}
    if out.get("nullable") is not True:
        return out
    if "enum" in out and None not in out["enum"]:
        out["enum"] = [*out["enum"], None]
    for keyword in ("anyOf", "oneOf"):
        if keyword in out:
            out[keyword] = [*out[keyword], {"enum": [None]}]
    if "allOf" in out:
        out = {"anyOf": [{key: value for key, value in out.items() if key != "nullable"}, {"enum": [None]}]}
    return out


def _server_url(raw: dict[str, Any]) -> str:
    server: dict[str, Any] = (raw.get("servers") or [{"url": ""}])[0]
    url = server["url"]
    for name, variable in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(variable.get("default", name)))
    return url.rstrip("/")


def _wrap_request(document: Document, request: SandboxRequest) -> _Request:
    query = ImmutableMultiDict([(key, value) for key, values in request.query.items() for value in values])
    parameters = RequestParameters(query=query, header=Headers(list(request.headers.items())))
    return _Request(
        host_url=document.server,
        path=request.path,
        method=request.method.lower(),
        parameters=parameters,
        content_type=request.header("Content-Type") or "application/json",
        body=request.raw_body or None,
    )


def _causes(error: BaseException) -> Iterator[BaseException]:
    while error is not None:
        yield error
        error = error.__cause__  # type: ignore[assignment]


def _shallowest(exc: InvalidSchemaValue) -> ValidationError:
    """The error nearest the top of the value: the one a provider reports first."""
    found = [error for error in exc.schema_errors if isinstance(error, ValidationError)]
    return min(found, key=lambda error: len(list(error.absolute_path)))


def _schema_errors(error: BaseException) -> list[ValidationError]:
    for cause in _causes(error):
        if isinstance(cause, InvalidSchemaValue):
            found = [item for item in cause.schema_errors if isinstance(item, ValidationError)]
            return sorted(found, key=lambda item: len(list(item.absolute_path)))
    return []


def _from_schema_error(error: ValidationError, prefix: tuple[str | int, ...] = ()) -> Violation:
    location = prefix + tuple(error.absolute_path)
    if error.validator == "required":
        # jsonschema names the missing property only in its message: "'x' is a required property".
        name = str(error.message).split("'")[1] if "'" in str(error.message) else ""
        return Violation("input", error.message, location + ((name,) if name else ()), missing=True)
    if error.validator == "additionalProperties" or str(error.message).startswith("Additional properties"):
        # (openapi-core reports forbidden unspecified properties under the `properties` keyword)
        extra = str(error.message).split("'")[1] if "'" in str(error.message) else ""
        return Violation("input", error.message, location + ((extra,) if extra else ()), unknown=True)
    return Violation("input", error.message, location)


def _body_violation(error: BaseException) -> Violation:
    found = _schema_errors(error)
    if found:
        return _from_schema_error(found[0])
    return Violation("input", _describe(error), missing="Missing" in type(error).__name__)


def _parameter_violation(error: BaseException) -> Violation:
    name = getattr(error, "name", "") or ""
    if getattr(error, "location", "") == "path":
        # A path segment that does not fit its template (e.g. a ticket id that is not a number)
        # matches no route at the provider either.
        return Violation("route", _describe(error), (name,))
    found = _schema_errors(error)
    if found:
        return _from_schema_error(found[0], (name,) if name else ())
    return Violation(
        "input", _describe(error), (name,) if name else (), missing="Missing" in type(error).__name__
    )


def _located(error: ValidationError) -> str:
    """`path: message`, with the alternative that came closest when no alternative of an anyOf fits."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        # The alternative that got furthest into the value says most (an object checked against its
        # object form, not against the id form).
        deepest = max(error.context, key=lambda inner: len(list(inner.absolute_path)))
        return f"{_located(deepest)} (no alternative of {error.validator} fits)"
    path = "/".join(str(part) for part in error.absolute_path) or "(body)"
    return f"{path}: {error.message}"


def _describe(error: BaseException) -> str:
    found = _schema_errors(error)
    if found:
        return "; ".join(
            f"{'/'.join(str(part) for part in e.absolute_path) or '(body)'}: {e.message}" for e in found
        )
    return " <- ".join(f"{type(cause).__name__}: {cause}" for cause in _causes(error))


# ---- Stripe's form bodies -----------------------------------------------------------------------


def _form_violation(document: Document, request: SandboxRequest) -> Violation | None:
    operation = document.find(request.method, request.path).operation
    content_type = request.header("Content-Type").split(";")[0].strip().lower()
    if request.raw_body and content_type != FORM:
        return Violation(
            "input", f"Invalid request: the body must be {FORM}, not {content_type or 'untyped'}"
        )
    if "requestBody" not in operation or FORM not in operation / "requestBody" / "content":
        if request.method == "DELETE" and request.query:
            name = next(iter(decode_form(_form_text(request))))
            return Violation("input", f"Received unknown parameter: {name}", (name,), unknown=True)
        return (
            Violation("input", "Invalid request: this endpoint takes no body") if request.raw_body else None
        )
    schema = operation / "requestBody" / "content" / FORM / "schema"
    body = decode_form(_form_text(request))
    body = _cast(body, schema)
    validator = _stripe_params_validator(document, schema)
    try:
        validator.validate(body)
    except InvalidSchemaValue as exc:
        first = _shallowest(exc)
        return _from_schema_error(first)
    return None


def _form_text(request: SandboxRequest) -> str:
    """The form a Stripe operation's `requestBody` describes. stripe-python sends a DELETE's parameters
    in the query string, not a body (stripe/_api_requestor.py: `if method == "get" or method ==
    "delete"`), and Stripe reads them as the operation's body parameters, so a DELETE's query counts."""
    parts = [request.raw_body.decode("utf-8", errors="replace")] if request.raw_body else []
    if request.method == "DELETE" and request.query:
        parts.insert(0, urlencode([(k, v) for k, values in request.query.items() for v in values]))
    return "&".join(parts)


def _form_query_violation(document: Document, request: SandboxRequest) -> Violation | None:
    found = document.find(request.method, request.path)
    declared = {}
    for holder in (found.path, found.operation):
        for index in range(len((holder / "parameters").read_value()) if "parameters" in holder else 0):
            parameter = holder / "parameters" / index
            if (parameter / "in").read_str() == "query":
                declared[(parameter / "name").read_str()] = parameter
    query = decode_form(urlencode([(k, v) for k, values in request.query.items() for v in values]))
    for name, value in query.items():
        if name not in declared:
            return Violation("input", f"Received unknown parameter: {name}", (name,), unknown=True)
        schema = declared[name] / "schema"
        validator = _stripe_params_validator(document, schema)
        try:
            validator.validate(_cast(value, schema))
        except InvalidSchemaValue as exc:
            first = _shallowest(exc)
            return _from_schema_error(first, (name,))
    for name, parameter in declared.items():
        if (parameter / "required").read_bool(default=False) and name not in query:
            return Violation("input", f"Missing required param: {name}.", (name,), missing=True)
    return None


def _stripe_params_validator(document: Document, schema: SchemaPath) -> Any:
    # Stripe rejects an unexpected parameter at any depth ("parameter_unknown",
    # https://docs.stripe.com/error-codes#parameter-unknown); its document says so only at the top level.
    return oas30_write_schema_validators_factory.create(
        document.spec, schema, forbid_unspecified_additional_properties=True
    )


def _cast(value: Any, schema: SchemaPath) -> Any:
    """Form text -> the schema's scalar types, as Stripe reads them; what does not cast stays text
    so that validation reports it (e.g. `quantity=x` -> "'x' is not of type 'integer'")."""
    with schema.resolve() as resolved:
        node = resolved.contents
    if not isinstance(node, dict):
        return value
    for keyword in ("anyOf", "oneOf"):
        if keyword in node:
            # A nested value goes through the alternative of its shape (`created[gte]=...` is the
            # object form of `created`); a text value through the first that casts it.
            shape = {dict: "object", list: "array"}.get(type(value))
            for index, option in enumerate(node[keyword]):
                option_schema = schema / keyword / index
                with option_schema.resolve() as resolved:
                    option = resolved.contents
                if shape is not None:
                    if isinstance(option, dict) and option.get("type") == shape:
                        return _cast(value, option_schema)
                    continue
                cast = _cast(value, option_schema)
                if cast is not value and type(cast) is not type(value):
                    return cast
            return value
    kind = node.get("type")
    if isinstance(value, dict):
        if kind == "array" and all(key.isdigit() for key in value):  # sparse indexes
            value = [value[key] for key in sorted(value, key=int)]
        else:
            properties = node.get("properties") or {}
            extra = node.get("additionalProperties")
            return {
                key: _cast(item, schema / "properties" / key)
                if key in properties
                else _cast(item, schema / "additionalProperties")
                if isinstance(extra, dict)
                else item
                for key, item in value.items()
            }
    if isinstance(value, list):
        return [_cast(item, schema / "items") for item in value] if "items" in node else value
    if not isinstance(value, str):
        return value
    if kind == "integer" and value.lstrip("-").isdigit():
        return int(value)
    if kind == "number":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean" and value in ("true", "false"):
        return value == "true"
    if kind == "array" and value == "":
        return []  # Stripe reads `param=` as an empty list where a list is expected
    return value
