"""Typed view of components/data/catalog.json: every deployed function with its trigger, topics,
secrets, project roles and limits.

The program, the local runner and the policy pack read it; a `Catalog` exists only for a file that passes
every check here (`CatalogError` names the entry otherwise). Standard library only.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_CATALOG_PATH = Path(__file__).resolve().parent.parent / "components" / "data" / "catalog.json"
TRIGGER_TYPES = ("http", "pubsub", "firestore", "schedule")
FIRESTORE_EVENTS = ("created", "deleted")
# A lowercase Python name whose Cloud name (`_` as `-`) is a Cloud Run service name: letters, digits and
# hyphens, a letter first, at most 63 characters (RFC 1035 labels).
_FUNCTION_NAME = re.compile(r"^[a-z](?:[a-z0-9_]{0,61}[a-z0-9])?$")
# A URL path of RFC 3986 segments (3.3, pchar): no quote, backslash or space, so it can stand in a
# Cloudflare rule expression's string literal.
_URL_PATH = re.compile(r"^(?:/[A-Za-z0-9._~!$&'()*+,;=:@%-]*)+$")


class CatalogError(ValueError):
    """The catalog file is malformed; the message names the offending entry and field."""


@dataclass(frozen=True)
class Limits:
    memory: str
    cpu: str
    timeout_seconds: int
    min_instances: int
    max_instances: int
    concurrency: int


@dataclass(frozen=True)
class Trigger:
    type: str
    public: bool = False
    path: str | None = None
    topic: str | None = None
    event: str | None = None
    document: str | None = None
    schedule: str | None = None
    time_zone: str | None = None

    @property
    def is_prefix(self) -> bool:
        """A path ending in `/**` routes everything under it (Firebase Hosting glob syntax)."""
        return bool(self.path and self.path.endswith("/**"))

    @property
    def base_path(self) -> str | None:
        """The URL a person opens: the path itself, or a prefix route's directory (`/ops/**` -> `/ops/`)."""
        return self.path[: -len("**")] if self.path and self.is_prefix else self.path

    @property
    def probe_path(self) -> str | None:
        """What an uptime check GETs for a health answer: the path, or `<prefix>/healthz`."""
        return f"{self.base_path}healthz" if self.is_prefix else self.path


@dataclass(frozen=True)
class RoleGrant:
    """A project role a function's service account holds, and why the function needs it."""

    role: str
    reason: str


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    entry_point: str
    description: str
    trigger: Trigger
    publishes: tuple[str, ...]
    secrets: tuple[str, ...]
    # Project roles beyond the catalog's common ones; topics and secrets are granted per resource.
    roles: tuple[RoleGrant, ...]
    env: dict[str, str]
    limits: Limits

    @property
    def resource_name(self) -> str:
        """Cloud name: Cloud Run service names allow no underscores (`stripe_webhook` -> `stripe-webhook`)."""
        return self.name.replace("_", "-")


@dataclass(frozen=True)
class PushSubscriptionPolicy:
    ack_deadline_seconds: int
    min_backoff_seconds: int
    max_backoff_seconds: int
    max_delivery_attempts: int
    message_retention_seconds: int
    dead_letter_retention_seconds: int


@dataclass(frozen=True)
class Catalog:
    topics: tuple[str, ...]
    push_subscription: PushSubscriptionPolicy
    # Project roles every function's service account holds.
    common_roles: tuple[RoleGrant, ...] = ()
    functions: tuple[FunctionSpec, ...] = field(default_factory=tuple)

    def project_roles(self, spec: FunctionSpec) -> tuple[RoleGrant, ...]:
        """Every project role `spec`'s service account holds: the common ones, then its own."""
        return (*self.common_roles, *spec.roles)

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions:
            if spec.name == name:
                return spec
        raise KeyError(name)

    @property
    def secret_names(self) -> tuple[str, ...]:
        """Union of every function's secrets, sorted, each once."""
        return tuple(sorted({secret for spec in self.functions for secret in spec.secrets}))

    def functions_using_secret(self, secret: str) -> tuple[FunctionSpec, ...]:
        return tuple(spec for spec in self.functions if secret in spec.secrets)

    def by_trigger(self, trigger_type: str) -> tuple[FunctionSpec, ...]:
        return tuple(spec for spec in self.functions if spec.trigger.type == trigger_type)

    @property
    def public_http(self) -> tuple[FunctionSpec, ...]:
        return tuple(spec for spec in self.by_trigger("http") if spec.trigger.public)


def _require(entry: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in entry:
        raise CatalogError(f"{where}: '{key}' is missing")
    value = entry[key]
    # bool is an int subclass; reject it where a number is expected.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogError(f"{where}: '{key}' must be {kind.__name__}, got {type(value).__name__}")
    return value


def _parse_trigger(raw: dict[str, Any], where: str, topics: tuple[str, ...]) -> Trigger:
    kind = _require(raw, "type", str, where)
    if kind not in TRIGGER_TYPES:
        raise CatalogError(f"{where}: trigger type '{kind}' is not one of {', '.join(TRIGGER_TYPES)}")
    trigger = Trigger(
        type=kind,
        public=bool(raw.get("public", False)),
        path=raw.get("path"),
        topic=raw.get("topic"),
        event=raw.get("event"),
        document=raw.get("document"),
        schedule=raw.get("schedule"),
        time_zone=raw.get("time_zone"),
    )
    if kind == "http" and trigger.public and not (trigger.path and trigger.path.startswith("/")):
        raise CatalogError(f"{where}: a public http trigger needs a 'path' starting with '/'")
    if trigger.path and "*" in trigger.path.removesuffix("/**"):
        raise CatalogError(f"{where}: a path may only end in '/**' (a prefix route), no other wildcard")
    if trigger.path and not _URL_PATH.match(trigger.path.removesuffix("/**")):
        raise CatalogError(
            f"{where}: path {trigger.path!r} is not a URL path (RFC 3986: '/'-separated segments of "
            "letters, digits and -._~!$&'()*+,;=:@%)"
        )
    if kind == "pubsub" and trigger.topic not in topics:
        raise CatalogError(f"{where}: trigger topic '{trigger.topic}' is not in the catalog's topics")
    if kind == "firestore" and not (trigger.event and trigger.document):
        raise CatalogError(f"{where}: a firestore trigger needs 'event' and 'document'")
    if kind == "firestore" and trigger.event not in FIRESTORE_EVENTS:
        raise CatalogError(
            f"{where}: firestore event '{trigger.event}' is not one of {', '.join(FIRESTORE_EVENTS)}"
        )
    if kind == "schedule" and not trigger.schedule:
        raise CatalogError(f"{where}: a schedule trigger needs 'schedule'")
    return trigger


def _parse_roles(raw: list[Any], where: str) -> tuple[RoleGrant, ...]:
    """`where` names the list, e.g. "catalog function 'crm_worker' roles"."""
    grants = []
    for index, entry in enumerate(raw):
        at = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise CatalogError(f"{at}: must be an object with 'role' and 'reason'")
        role, reason = _require(entry, "role", str, at), _require(entry, "reason", str, at)
        if not role.startswith("roles/") or not reason.strip():
            raise CatalogError(f"{at}: needs a predefined role (roles/...) and why the function needs it")
        grants.append(RoleGrant(role, reason))
    return tuple(grants)


def _parse_function(raw: dict[str, Any], index: int, topics: tuple[str, ...]) -> FunctionSpec:
    where = f"catalog functions[{index}]"
    name = _require(raw, "name", str, where)
    where = f"catalog function '{name}'"
    if not _FUNCTION_NAME.match(name):
        raise CatalogError(
            f"{where}: a name is lowercase letters, digits and '_', a letter first, at most 63 characters "
            "(its Cloud Run service name replaces '_' with '-')"
        )
    limits_raw = _require(raw, "limits", dict, where)
    limits = Limits(
        memory=_require(limits_raw, "memory", str, where),
        cpu=_require(limits_raw, "cpu", str, where),
        timeout_seconds=_require(limits_raw, "timeout_seconds", int, where),
        min_instances=_require(limits_raw, "min_instances", int, where),
        max_instances=_require(limits_raw, "max_instances", int, where),
        concurrency=_require(limits_raw, "concurrency", int, where),
    )
    publishes = tuple(_require(raw, "publishes", list, where))
    unknown = [topic for topic in publishes if topic not in topics]
    if unknown:
        raise CatalogError(f"{where}: publishes to unknown topics {unknown}")
    env = _require(raw, "env", dict, where)
    return FunctionSpec(
        name=name,
        entry_point=_require(raw, "entry_point", str, where),
        description=str(raw.get("description", "")),
        trigger=_parse_trigger(_require(raw, "trigger", dict, where), where, topics),
        publishes=publishes,
        secrets=tuple(_require(raw, "secrets", list, where)),
        roles=_parse_roles(_require(raw, "roles", list, where), f"{where} roles"),
        env={str(k): str(v) for k, v in env.items()},
        limits=limits,
    )


def parse_catalog(raw: dict[str, Any]) -> Catalog:
    """Build a Catalog from the decoded JSON, raising CatalogError on the first problem found."""
    topics = tuple(_require(raw, "topics", list, "catalog"))
    policy_raw = _require(raw, "push_subscription", dict, "catalog")
    policy = PushSubscriptionPolicy(
        **{
            key: _require(policy_raw, key, int, "catalog push_subscription")
            for key in PushSubscriptionPolicy.__dataclass_fields__
        }
    )
    functions = tuple(
        _parse_function(entry, index, topics)
        for index, entry in enumerate(_require(raw, "functions", list, "catalog"))
    )
    names = [spec.name for spec in functions]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CatalogError(f"catalog: duplicate function names {duplicates}")
    # What the program builds on: the dead-letter alert watches each topic's dead-letter subscription, the
    # edge rate-limits the exact public paths and the uptime checks probe the public functions.
    if not topics:
        raise CatalogError("catalog: 'topics' is empty; the functions need at least one topic")
    common_roles = _parse_roles(_require(raw, "common_roles", list, "catalog"), "catalog common_roles")
    for spec in functions:
        roles = [grant.role for grant in (*common_roles, *spec.roles)]
        if len(set(roles)) != len(roles):
            raise CatalogError(f"catalog function '{spec.name}': a role is listed twice (with common_roles)")
    catalog = Catalog(topics=topics, push_subscription=policy, common_roles=common_roles, functions=functions)
    if not any(not spec.trigger.is_prefix for spec in catalog.public_http):
        raise CatalogError("catalog: no public http function with an exact path; the API needs at least one")
    return catalog


def load_catalog(path: Path | str = DEFAULT_CATALOG_PATH) -> Catalog:
    """Read and validate the catalog file."""
    with open(path, encoding="utf-8") as handle:
        return parse_catalog(json.load(handle))


def scaled_max_instances(catalog_max: int, scale: float) -> int:
    """The catalog's max instances scaled for a stack (launchready:maxInstancesScale), never below one."""
    return max(1, round(catalog_max * scale))
