"""The App Store sandbox's contract: the models of Apple's app-store-server-library 3.1.2.

A JSON object passes only when every key is a field of the model, every enum value one the library knows,
and the library's own converter parses it (docs/tools.md).
"""

from __future__ import annotations

import enum
import types
import typing
from functools import cache
from typing import Any

import attr
from appstoreserverlibrary.models.LibraryUtility import _get_cattrs_converter

# How the library marks an enum's raw companion (`appstoreserverlibrary/models/LibraryUtility.py`).
_FIELD_KIND = "typeOfField"


@cache
def _fields(model: type) -> dict[str, Any]:
    """JSON name -> type of every field the model reads from JSON."""
    hints = typing.get_type_hints(model)
    return {field.name: hints[field.name] for field in attr.fields(model)
            if field.metadata.get(_FIELD_KIND) != "raw"}


def _strip_optional(kind: Any) -> Any:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(kind) if arg is not type(None)]
        return rest[0] if len(rest) == 1 else kind
    return kind


def problems(model: type, value: Any, where: str = "") -> list[str]:
    """Why `value` is not a `model` as the library defines it (empty when it is)."""
    return _check(model, value, where or model.__name__)


def _check(kind: Any, value: Any, where: str) -> list[str]:
    kind = _strip_optional(kind)
    if value is None:
        return []  # every field of the library's models is optional
    if attr.has(kind):
        if not isinstance(value, dict):
            return [f"{where}: expected an object ({kind.__name__}), got {type(value).__name__}"]
        fields = _fields(kind)
        found = [f"{where}.{key}: not a field of {kind.__name__}" for key in value if key not in fields]
        for key, item in value.items():
            if key in fields:
                found += _check(fields[key], item, f"{where}.{key}")
        return found
    if typing.get_origin(kind) is list:
        if not isinstance(value, list):
            return [f"{where}: expected an array, got {type(value).__name__}"]
        (item_kind,) = typing.get_args(kind)
        return [problem for index, item in enumerate(value)
                for problem in _check(item_kind, item, f"{where}[{index}]")]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        known = [member.value for member in kind]
        ok = any(value == member and type(value) is type(member) for member in known)
        return [] if ok else [f"{where}: {value!r} is not one of {kind.__name__} {known}"]
    if kind is bool:
        return [] if isinstance(value, bool) else [f"{where}: expected a boolean, got {value!r}"]
    if kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{where}: expected an integer, got {value!r}"]
    if kind is str:
        return [] if isinstance(value, str) else [f"{where}: expected a string, got {value!r}"]
    return [f"{where}: the sandbox cannot check fields of type {kind!r}"]


def check(model: type, value: Any) -> list[str]:
    """`problems`, then the library's own parse (`_get_cattrs_converter(model).structure`, which its client
    and verifier use) must succeed."""
    found = problems(model, value)
    if found:
        return found
    try:
        _get_cattrs_converter(model).structure(value, model)
    except Exception as exc:  # noqa: BLE001 (any failure of the library's parse is the finding)
        return [f"{model.__name__}: the library cannot parse it: {exc!r}"]
    return []
