"""What the preflight must ask, read from an offline plan: IAM members outside the project and the
resources whose create fails when one of the same name already exists.

Invariant: every plan entry of a `fails_if_exists` type (tools/offline/contracts/rules.yaml) that is not
imported is returned, so a new resource type is asked about (or reported unchecked) without a code change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.offline.contracts import load_contracts

# Types whose names are global (every project shares them), so they can collide in a project created now:
# project ids, bucket names, Hosting site ids, and a custom domain held by another project's site.
GLOBAL_TYPES = frozenset(
    {
        "gcp:organizations/project:Project",
        "gcp:storage/bucket:Bucket",
        "gcp:firebase/hostingSite:HostingSite",
        "gcp:firebase/hostingCustomDomain:HostingCustomDomain",
    }
)
PUBLIC_MEMBERS = frozenset({"allUsers", "allAuthenticatedUsers"})
# Google-managed service agents: service-PROJECT_NUMBER@gcp-sa-SERVICE.iam.gserviceaccount.com and the
# older per-service forms (https://cloud.google.com/iam/docs/service-agents).
_SERVICE_AGENT = re.compile(
    r"^serviceAccount:(service-\d+@gcp-sa-[a-z0-9-]+\.iam\.gserviceaccount\.com"
    r"|\d+@cloudservices\.gserviceaccount\.com|\d+@cloudbuild\.gserviceaccount\.com)$"
)


@dataclass(frozen=True)
class Grant:
    """An IAM grant of the plan: `kind` is public, service-agent or other-project."""

    urn: str
    member: str
    role: str
    kind: str


@dataclass(frozen=True)
class Creation:
    """A resource the plan creates (not imports) whose create fails if the name is taken."""

    urn: str
    type: str
    inputs: dict[str, Any]
    why: str  # the contract's text and source


def load_plan(path: Path) -> list[dict[str, Any]]:
    entries = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(entries, list):
        raise ValueError(f"{path}: expected a list of plan entries")
    return entries


def member_kind(member: str, project: str) -> str | None:
    """public, service-agent or other-project for a member outside `project`; None for one inside it
    (or a user, group or domain, which the organization's own domain policy admits or not)."""
    if member in PUBLIC_MEMBERS:
        return "public"
    if _SERVICE_AGENT.match(member):
        return "service-agent"
    if member.startswith("serviceAccount:") and not member.endswith(f"@{project}.iam.gserviceaccount.com"):
        return "other-project"
    return None


def outside_grants(entries: list[dict[str, Any]], project: str) -> list[Grant]:
    grants = []
    for entry in entries:
        member = entry["inputs"].get("member")
        if not entry["type"].lower().endswith("iammember") or not isinstance(member, str):
            continue
        kind = member_kind(member, project)
        if kind is not None:
            grants.append(Grant(entry["urn"], member, str(entry["inputs"].get("role", "")), kind))
    return grants


def creations(entries: list[dict[str, Any]]) -> list[Creation]:
    fails_if_exists = load_contracts().create_behaviour.get("fails_if_exists", {})
    return [
        Creation(entry["urn"], entry["type"], entry["inputs"], fails_if_exists[entry["type"]])
        for entry in entries
        if entry["type"] in fails_if_exists
        and not entry["options"].get("importId")
        # A server-assigned id cannot collide (alert policies, channels, uptime checks).
        and "never exists" not in fails_if_exists[entry["type"]]
    ]
