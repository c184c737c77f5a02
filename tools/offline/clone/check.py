"""`make check-env`: offline proof that a cloned stack is its source's twin and collides with no stack.

Judged on plans under the mocks in preview mode; nothing is written but the plan cache (docs/tools.md).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.stack_config import (
    STACK_FILE_KEYS_NEVER_COPIED,
    Clone,
    StackConfig,
    StackConfigError,
    clone_class,
    parse_stack_config,
)
from tools.exit_codes import ExitCode
from tools.project_files import ROOT, read_catalog, read_stack, stack_names, stack_path

CACHE_DIR = Path("build") / "plan-cache"
# What the plan depends on besides the config: a change to any of these invalidates the cache.
PROGRAM_SOURCES = (
    "__main__.py",
    "components",
    "functions_src",
    "firestore.rules",
    "firestore.indexes.json",
    "tools/offline/plan/mocks.py",
    "tools/offline/plan/evaluate.py",
    "tools/offline/contracts",
)
_URN_STACK = re.compile(r"urn:pulumi:[^:]+::")
# Applicable rewrites per value beyond which candidate rewrites are not enumerated (2^n).
_MAX_PAIRS = 10


class CheckError(Exception):
    """The clone failed the offline proof; the message names each collision or unexplained difference."""


# --- Plans, cached ------------------------------------------------------------------------------------


def engine_values(values: dict[str, Any]) -> dict[str, str]:
    """Config values as the engine hands them to the program: strings, structured values as JSON."""
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}


def program_fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for source in PROGRAM_SOURCES:
        path = root / source
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or not file.is_file():
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True)
class Plan:
    """A stack's plan as a first preview sees it: redacted entries and stack outputs."""

    stack: str
    entries: list[dict[str, Any]]
    outputs: dict[str, Any]
    webhook_url: str = ""


class PlanCache:
    """Evaluates plans under the mocks, once per (stack, config, program), kept in build/plan-cache/."""

    def __init__(self, root: Path = ROOT, progress: Callable[[str], None] | None = None) -> None:
        self.root = root
        self.progress = progress or (lambda _line: None)
        self._fingerprint: str | None = None

    def plan(
        self, stack: str, values: dict[str, Any], secret_keys: tuple[str, ...] = (), label: str = ""
    ) -> Plan:
        from tools.offline.plan.evaluate import UNKNOWN, evaluate_config, redact  # imports the Pulumi SDK

        config = engine_values(values)
        if self._fingerprint is None:
            self._fingerprint = program_fingerprint(self.root)
        key = hashlib.sha256(
            json.dumps([stack, config, sorted(secret_keys), self._fingerprint], sort_keys=True).encode()
        ).hexdigest()[:32]
        path = self.root / CACHE_DIR / f"{stack}-{key}.json"
        if path.is_file():
            cached = json.loads(path.read_text(encoding="utf-8"))
            return Plan(stack, cached["entries"], cached["outputs"], webhook_url(values, stack, self.root))
        self.progress(f"  evaluating the program for {label or stack} under mocks ...")
        mocks = evaluate_config(stack, config, list(secret_keys), self.root, preview=True)
        entries = sorted(
            (
                {**entry, "inputs": redact(entry["inputs"], public=mocks.public_values)}
                for entry in mocks.plan()
            ),
            key=lambda entry: (entry["type"], entry["name"]),
        )
        # Values only the cloud computes stay unknown at preview: one marker, as in the plan JSON.
        text = json.dumps(
            {"entries": entries, "outputs": redact(dict(mocks.stack_outputs), public=mocks.public_values)},
            sort_keys=True,
            default=lambda _value: UNKNOWN,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        cached = json.loads(text)
        return Plan(stack, cached["entries"], cached["outputs"], webhook_url(values, stack, self.root))

    def stack_plan(self, stack: str) -> Plan:
        stack_file = read_stack(stack, self.root)
        return self.plan(stack, stack_file.config, stack_file.secret_keys)


def webhook_url(values: dict[str, Any], stack: str, root: Path) -> str:
    """The Stripe webhook endpoint the stack exports (stack output stripeWebhookUrl, see __main__.py):
    unknown to a preview's outputs, so built here the same way from the config and the catalog."""
    config = parse_stack_config(values, stack)
    path = read_catalog(root).function("stripe_webhook").trigger.path
    return f"https://{config.api_host}{path}"


# --- Globally unique identifiers ------------------------------------------------------------------------

# (resource type, input) -> (what it is, the config key it comes from). Sources: the resources' own
# uniqueness scope in the providers' docs: GCP project ids and Cloud Storage bucket names are global
# (https://cloud.google.com/resource-manager/docs/creating-managing-projects#before_you_begin,
# https://cloud.google.com/storage/docs/buckets#naming), Firebase Hosting site ids are global
# (https://firebase.google.com/docs/hosting/multisites), a Hosting custom domain belongs to one site.
_IDENTIFYING_INPUTS = {
    ("gcp:organizations/project:Project", "projectId"): ("project id", "launchready:projectId"),
    ("gcp:firebase/project:Project", "project"): ("project id", "launchready:projectId"),
    ("gcp:firebase/hostingSite:HostingSite", "siteId"): ("Hosting site", "launchready:hostingSiteId"),
    ("gcp:firebase/hostingCustomDomain:HostingCustomDomain", "customDomain"): (
        "API host",
        "launchready:apiHost",
    ),
    ("gcp:storage/bucket:Bucket", "name"): ("bucket name", "launchready:projectId"),
}
# A hostname holds one CNAME and nothing else (RFC 1034 section 3.6.2), one SPF record (RFC 7208
# section 4.5) and one DMARC record (RFC 7489 section 6.6.3); other records are unique by content.
_SINGLE_RECORD_PREFIX = ("v=spf1", "v=DMARC1")


def _dns_identity(inputs: dict[str, Any]) -> tuple[str, str]:
    name, kind = str(inputs.get("name")), str(inputs.get("type"))
    content = str(inputs.get("content", "")).strip('"')
    zone = str(inputs.get("zoneId"))
    if kind == "CNAME":
        return f"zone {zone} {name} CNAME", "launchready:apiHost"
    prefix = next((p for p in _SINGLE_RECORD_PREFIX if content.startswith(p)), None)
    if prefix:
        return f"zone {zone} {name} TXT {prefix}", "launchready:mailDomain"
    return f"zone {zone} {name} {kind} {content}", "launchready:dkimRecords"


def identifiers(plan: Plan) -> dict[str, str]:
    """Every globally unique identifier the plan would claim: '<kind> <value>' -> the config key behind it."""
    found: dict[str, str] = {}
    for entry in plan.entries:
        kind, inputs = entry["type"], entry["inputs"]
        for (typ, name), (what, key) in _IDENTIFYING_INPUTS.items():
            if kind == typ and isinstance(inputs.get(name), str):
                found[f"{what} {inputs[name]}"] = key
        if kind == "cloudflare:index/dnsRecord:DnsRecord":
            identity, key = _dns_identity(inputs)
            found[f"DNS record {identity}"] = key
        elif kind == "cloudflare:index/zoneSetting:ZoneSetting":
            found[f"zone setting {inputs.get('zoneId')} {inputs.get('settingId')}"] = "launchready:manageZone"
        elif kind == "cloudflare:index/ruleset:Ruleset":
            found[f"zone ruleset {inputs.get('zoneId')} {inputs.get('phase')}"] = "launchready:manageZone"
        import_id = entry["options"].get("importId")
        if import_id:
            found[f"import id {import_id}"] = "launchready:projectId"
    if plan.webhook_url:
        found[f"webhook URL {plan.webhook_url}"] = "launchready:apiHost"
    return found


def collisions(new: Plan, others: list[Plan]) -> list[str]:
    """One line per identifier of `new` that another stack's plan also claims."""
    mine = identifiers(new)
    lines = []
    for other in others:
        for identifier in sorted(set(mine) & set(identifiers(other))):
            lines.append(f"{identifier} (from {mine[identifier]}) is also in Pulumi.{other.stack}.yaml")
    return lines


# --- Encryption state copied from another stack ----------------------------------------------------------


def _encryption_state(path: Path) -> tuple[dict[str, str], dict[str, str]]:
    """(top-level encryption keys, config key -> `secure:` ciphertext) of a stack file as written."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(document, dict):
        return {}, {}
    top = {k: str(document[k]) for k in STACK_FILE_KEYS_NEVER_COPIED if document.get(k)}
    config = document.get("config") if isinstance(document.get("config"), dict) else {}
    secure = {
        str(key): str(value["secure"])
        for key, value in (config or {}).items()
        if isinstance(value, dict) and set(value) == {"secure"}
    }
    return top, secure


def copied_encryption(stack: str, root: Path = ROOT) -> list[str]:
    """One line per encryption value `stack`'s file shares with another stack file: its `encryptedkey`
    or `encryptionsalt` (the other stack's data key: every secret of that stack decrypts here), a
    `secure:` ciphertext (that stack's secret, e.g. production's Cloudflare token), or its
    `secretsprovider` without a data key of its own. Pulumi writes these per stack at `pulumi stack init`
    (https://www.pulumi.com/docs/iac/concepts/projects/stack-settings-file/)."""
    top, secure = _encryption_state(stack_path(stack, root))
    lines = []
    for other in other_stacks(root, stack):
        other_top, other_secure = _encryption_state(stack_path(other, root))
        for key in ("encryptedkey", "encryptionsalt"):
            if key in top and top[key] == other_top.get(key):
                lines.append(f"{key} is Pulumi.{other}.yaml's")
        provider = top.get("secretsprovider")
        shares_provider = provider is not None and provider == other_top.get("secretsprovider")
        own_key = "encryptedkey" in top and top["encryptedkey"] != other_top.get("encryptedkey")
        if shares_provider and not own_key:
            lines.append(f"secretsprovider is Pulumi.{other}.yaml's and there is no data key of its own")
        for key, ciphertext in sorted(secure.items()):
            if ciphertext in other_secure.values():
                lines.append(f"{key} holds a secure value copied from Pulumi.{other}.yaml")
    return lines


# --- The rewrite map and the twin ---------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def twin_values(source: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """The target's config with the source's environment-policy values: differs from the source only
    by the rewritten (and never-copied) keys, so its plan must be the source plan under the rewrite map.
    An optional never-copied key the target has not been given yet (launchready:firebaseWebApiKey, the new
    project's own to fill in) keeps the source's value in the twin: leaving it out is the clone's choice,
    reported among the differences, not a broken graph."""
    twin = {key: value for key, value in target.items() if clone_class(key) is not Clone.POLICY}
    twin.update({key: value for key, value in source.items() if clone_class(key) is Clone.POLICY})
    twin.update(
        {key: value for key, value in source.items() if clone_class(key) is Clone.NEVER and key not in target}
    )
    return twin


def labelled_rewrites(source: StackConfig, twin: StackConfig) -> dict[tuple[str, str], str]:
    """(source value, new value) -> the key it comes from, for every identity that differs."""
    labelled: dict[tuple[str, str], str] = {}

    def add(key: str, old: str, new: str) -> None:
        if old != new:
            labelled.setdefault((old, new), key)

    add("launchready:projectId", source.project_id, twin.project_id)
    add("launchready:hostingSiteId", source.site_id, twin.site_id)
    add("launchready:apiHost", source.api_host, twin.api_host)
    add("launchready:appUrl", source.app_url, twin.app_url)
    add("launchready:mailDomain", source.sending_domain, twin.sending_domain)
    add("launchready:emailFrom", source.email_from, twin.email_from)
    add("gcp:billingProject", source.quota_project, twin.quota_project)
    add("launchready:stripePriceId", source.stripe_price_id, twin.stripe_price_id)
    add("launchready:zendeskBaseUrl", source.zendesk_base_url, twin.zendesk_base_url)
    for old, new in zip(source.dkim_records, twin.dkim_records, strict=False):
        add("launchready:dkimRecords", f"{old.name}.{source.domain}", f"{new.name}.{twin.domain}")
        add("launchready:dkimRecords", old.value, new.value)
        # Resource names are slugs of the record names (components/edge.py).
        add("launchready:dkimRecords (resource name)", _slug(old.name), _slug(new.name))
    for old_host, new_host in zip(source.authorized_domains, twin.authorized_domains, strict=False):
        add("launchready:authorizedDomains", old_host, new_host)
    return labelled


def rewrite_map(source: StackConfig, twin: StackConfig) -> list[tuple[str, str]]:
    """Source value -> new value for every identity that differs, longest first."""
    return sorted(labelled_rewrites(source, twin), key=lambda pair: (-len(pair[0]), pair))


def _rewrites_of(value: str, pairs: list[tuple[str, str]]) -> Iterator[str]:
    """`value` with every subset of the applicable rewrites applied (identifiers can coincide, e.g. an
    apex mail domain and the zone, so each occurrence may or may not be the rewritten identity)."""
    applicable = [pair for pair in pairs if pair[0] in value][:_MAX_PAIRS]
    for size in range(1, len(applicable) + 1):
        for chosen in itertools.combinations(applicable, size):
            table = dict(chosen)
            pattern = re.compile(
                "|".join(rf"(?<![A-Za-z0-9]){re.escape(old)}(?![A-Za-z0-9])" for old, _new in chosen)
            )
            yield pattern.sub(lambda match, table=table: table[match.group(0)], value)


def explained(old: Any, new: Any, pairs: list[tuple[str, str]]) -> bool:
    """True when `new` is `old` or `old` under some of the rewrites."""
    if old == new:
        return True
    if not isinstance(old, str) or not isinstance(new, str):
        return False
    old, new = _URN_STACK.sub("urn:pulumi:*::", old), _URN_STACK.sub("urn:pulumi:*::", new)
    return old == new or any(candidate == new for candidate in _rewrites_of(old, pairs))


def _leaves(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(_leaves(item, f"{path}.{key}" if path else str(key)))
        return out or {path: {}}
    if isinstance(value, list):
        out = {}
        for index, item in enumerate(value):
            out.update(_leaves(item, f"{path}[{index}]"))
        return out or {path: []}
    return {path: value}


def _entry_leaves(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        **_leaves(entry["inputs"], "inputs"),
        **_leaves(entry["options"], "options"),
        "parent": entry["parent"],
    }


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 70 else text[:67] + "..."


def graph_differences(old: Plan, new: Plan, pairs: list[tuple[str, str]]) -> list[str]:
    """One line per resource or value of `new` that is not `old`'s under the rewrite map."""
    unmatched = {(e["type"], e["name"]): e for e in old.entries}
    lines: list[str] = []
    for entry in new.entries:
        key = (entry["type"], entry["name"])
        match = unmatched.pop(key, None)
        if match is None:
            match_key = next(
                (k for k in unmatched if k[0] == entry["type"] and explained(k[1], entry["name"], pairs)),
                None,
            )
            match = unmatched.pop(match_key) if match_key else None
        if match is None:
            lines.append(f"+ {entry['type']} {entry['name']}")
            continue
        before, after = _entry_leaves(match), _entry_leaves(entry)
        for path in sorted(set(before) | set(after)):
            if path not in after:
                lines.append(
                    f"~ {entry['type']} {entry['name']}: {path} removed (was {_short(before[path])})"
                )
            elif path not in before:
                lines.append(f"~ {entry['type']} {entry['name']}: {path} added ({_short(after[path])})")
            elif not explained(before[path], after[path], pairs):
                change = f"{_short(before[path])} -> {_short(after[path])}"
                lines.append(f"~ {entry['type']} {entry['name']}: {path} {change}")
    lines += [f"- {typ} {name}" for typ, name in sorted(unmatched)]
    return lines


# --- The proof ----------------------------------------------------------------------------------------


def other_stacks(root: Path, *exclude: str) -> list[str]:
    """Every stack file in the repository root but `exclude`d ones (Pulumi.yaml is the project file)."""
    return [name for name in stack_names(root) if name not in exclude]


def prove(
    target: str,
    target_values: dict[str, Any],
    source: str,
    root: Path = ROOT,
    progress: Callable[[str], None] | None = None,
) -> str:
    """Run the three checks for `target` (its config values) cloned from `source`; return the report.

    Raises StackConfigError when a config is invalid, CheckError naming each collision or unexplained
    difference.
    """
    cache = PlanCache(root, progress)
    new_config = parse_stack_config(target_values, target)
    source_file = read_stack(source, root)
    source_config = parse_stack_config(source_file.config, source)
    twin = twin_values(source_file.config, target_values)
    twin_config = parse_stack_config(twin, target)
    pairs, labels = rewrite_map(source_config, twin_config), labelled_rewrites(source_config, twin_config)
    report = [
        f"check-env {target} against {source}:",
        f"  config: valid ({new_config.environment} environment, project {new_config.project_id})",
    ]

    new_plan = cache.plan(target, target_values)
    others = []
    for name in other_stacks(root, target):
        try:
            others.append(cache.stack_plan(name))
        except StackConfigError as error:
            report.append(f"  skipped Pulumi.{name}.yaml for collisions: {str(error).splitlines()[0]}")
    clashes = collisions(new_plan, others)
    if clashes:
        raise CheckError(
            f"{target} would claim identifiers another stack already holds:\n"
            + "\n".join(f"  - {line}" for line in clashes)
        )
    unique = identifiers(new_plan)
    report.append(
        f"  identifiers: {len(unique)} globally unique, none shared with "
        + ", ".join(f"Pulumi.{p.stack}.yaml" for p in others)
    )

    source_plan = cache.plan(source, source_file.config, source_file.secret_keys)
    twin_plan = cache.plan(target, twin, label=f"{target} with {source}'s environment policy")
    unexplained = graph_differences(source_plan, twin_plan, pairs)
    if unexplained:
        raise CheckError(
            f"{target}'s plan is not {source}'s under the rewrite map (beyond the environment policy):\n"
            + "\n".join(f"  {line}" for line in unexplained)
        )
    report.append(
        f"  graph: {len(source_plan.entries)} resources, the same as {source}'s under the rewrite map:"
    )
    report += [f"      {labels[(old, new)]}: {old} -> {new}" for old, new in pairs]

    changed = {
        key: (source_file.config.get(key), target_values.get(key))
        for key in sorted({*source_file.config, *target_values})
        if clone_class(key) is Clone.POLICY and source_file.config.get(key) != target_values.get(key)
    }
    effects = graph_differences(twin_plan, new_plan, [])
    report.append("  declared environment-policy differences:")
    report += [f"      {key}: {_short(old)} -> {_short(new)}" for key, (old, new) in changed.items()]
    if not changed:
        report.append("      (none)")
    if effects:
        report.append(f"    their effect on the plan ({len(effects)}):")
        report += [f"      {line}" for line in effects]
    return "\n".join(report)


def run(stack: str, against: str, root: Path = ROOT) -> ExitCode:
    """Print the proof for `stack` cloned from `against`: OK, FAILED when a check fails, USAGE for an
    invalid stack file."""
    try:
        copied = copied_encryption(stack, root)
        if copied:
            raise CheckError(
                f"Pulumi.{stack}.yaml carries another stack's encryption state:\n"
                + "\n".join(f"  - {line}" for line in copied)
                + f"\n  remove secretsprovider, encryptedkey, encryptionsalt and every secure: value, run "
                f"`pulumi stack init {stack}` (with --secrets-provider for a key of its own), then set its "
                "secrets with `pulumi config set --secret`"
            )
        print(prove(stack, read_stack(stack, root).config, against, root, print))
    except StackConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return ExitCode.USAGE
    except CheckError as error:
        print(f"check-env failed: {error}", file=sys.stderr)
        return ExitCode.FAILED
    return ExitCode.OK
