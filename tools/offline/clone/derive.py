"""`make clone-env`: derive Pulumi.<new>.yaml from a stack file, without any of its secrets.

Nothing is written unless the new config validates and the offline proof passes (docs/tools.md).
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config_types import ENVIRONMENTS, DnsLabel, ProjectId, StackName, conforms, parse_sender
from components.stack_config import (
    PLACEHOLDER_MARK,
    STACK_FILE_KEYS_NEVER_COPIED,
    Clone,
    StackConfigError,
    clone_class,
    parse_stack_config,
)
from tools.exit_codes import ExitCode
from tools.project_files import ROOT, read_stack, stack_path

# Provider credentials the program needs whatever the source stack holds (set with --secret).
PROVIDER_SECRETS = ("cloudflare:apiToken",)
PRICE_PLACEHOLDER = "price_ReplaceWithTestModePrice"

# Environment policy: what a kind of environment gets, whatever the source had.
DMARC_BY_ENVIRONMENT = {"production": "reject", "staging": "quarantine", "preview": "quarantine"}
SCALE_BY_ENVIRONMENT = {"production": 1.0, "staging": 0.5, "preview": 0.2}
LOG_RETENTION_BY_ENVIRONMENT = {"production": 30, "staging": 30, "preview": 7}


class CloneError(ValueError):
    """Bad input for a clone; the message is meant for the user as is."""


@dataclass(frozen=True)
class CloneRequest:
    """What the user asked for. `overrides` are full keys with YAML-parsed values (--set)."""

    source: str
    target: str
    project: str | None = None
    host_prefix: str | None = None
    environment: str | None = None
    billing_account: str | None = None
    folder_id: str | None = None
    org_id: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass
class DerivedStack:
    """The new stack's config and what the proof and the user need to know about it.

    `notes` are the `# REPLACE` comments written after a key; `todo` the notes printed at the end.
    """

    source: str
    target: str
    values: dict[str, Any]
    notes: dict[str, str]
    secret_keys: tuple[str, ...]
    source_environment: str
    secrets_provider: str | None
    todo: list[str]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _relative(host: str, domain: str) -> str:
    """`staging.example.com` under `example.com` -> `staging`; the apex -> ``."""
    return "" if host == domain else host.removesuffix("." + domain)


def _derive_project_id(source_project: str, source_stack: str, label: str) -> str:
    base = source_project
    for suffix in ("-template", f"-{_slug(source_stack)}"):
        base = base.removesuffix(suffix)
    candidate = f"{base}-{label}"
    if not conforms(ProjectId, candidate):
        raise CloneError(
            f"the derived project id {candidate!r} is not a valid GCP project id (6-30 characters): "
            "give one with PROJECT=<id>"
        )
    return candidate


def _sender(email_from: str, source_stack: str, label: str, mail_domain: str) -> str:
    sender = parse_sender(email_from)
    local = sender.local_part if sender else email_from.split("@", 1)[0].strip()
    if sender is None or sender.display_name is None:
        return f"{local}@{mail_domain}"
    words = sender.display_name.split()
    if words and words[-1].lower() in (source_stack.lower(), "production", "prod", "staging", "preview"):
        words = words[:-1]
    name = " ".join([*words, label]).strip()
    return f"{name} <{local}@{mail_domain}>"


def _parse_overrides(items: list[str]) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or ":" not in key:
            raise CloneError(
                f"--set {item!r}: expected <namespace>:<key>=<value>, e.g. launchready:apiHost=..."
            )
        overrides[key.strip()] = yaml.safe_load(text) if text.strip() else ""
    return overrides


def derive(request: CloneRequest, root: Path = ROOT) -> DerivedStack:
    """Derive the new stack's config from Pulumi.<source>.yaml. Raises CloneError or StackConfigError."""
    if not conforms(StackName, request.target):
        raise CloneError(f"stack name {request.target!r}: use letters, digits, '-', '_' or '.'")
    if request.target == request.source:
        raise CloneError("TO must differ from FROM")
    label = request.host_prefix or _slug(request.target)
    if not conforms(DnsLabel, label):
        raise CloneError(f"host prefix {label!r} is not a DNS label (a-z, 0-9, '-'; at most 63 characters)")
    stack_file = read_stack(request.source, root)
    source = parse_stack_config(stack_file.config, request.source)
    unclassified = [
        key for key in stack_file.config if clone_class(key) is None and key not in request.overrides
    ]
    if unclassified:
        raise CloneError(
            f"Pulumi.{request.source}.yaml: no clone class for {', '.join(unclassified)}: declare the key on "
            "the stack config model (components/stack_config.py) or set it with --set"
        )
    unknown = [key for key in request.overrides if clone_class(key) is None]
    if unknown:
        raise CloneError(f"--set: {', '.join(unknown)} is not a stack config key")
    environment = request.environment or ("staging" if source.is_production else source.environment)
    if environment not in ENVIRONMENTS:
        raise CloneError(f"environment {environment!r}: must be one of {', '.join(ENVIRONMENTS)}")
    if request.folder_id and request.org_id:
        raise CloneError("give FOLDER or ORG, not both")

    notes: dict[str, str] = {}
    todo: list[str] = []
    domain = source.domain
    project = request.project or _derive_project_id(source.project_id, request.source, label)
    if not conforms(ProjectId, project):
        raise CloneError(
            f"PROJECT {project!r} is not a valid GCP project id (6-30 characters: a-z, 0-9, '-')"
        )
    creating = bool(request.billing_account) or (source.create_project and not request.project)
    billing = request.billing_account or source.billing_account
    folder = request.folder_id or (None if request.org_id else source.folder_id)
    org = request.org_id or (None if request.folder_id else source.org_id)
    if creating and not billing:
        raise CloneError("creating the project needs BILLING_ACCOUNT=XXXXXX-XXXXXX-XXXXXX")
    if creating and not (folder or org):
        raise CloneError("creating the project needs FOLDER=<folder id> or ORG=<organization id>")
    if not creating and not request.project:
        notes["launchready:projectId"] = (
            f"{PLACEHOLDER_MARK}: create this Firebase project first (adopted, like {request.source}'s), or "
            "set createProject: true with billingAccount and folderId or orgId"
        )
        todo.append(
            f"the project {project} is adopted: create it with Firebase (Blaze plan) first, or re-run with "
            "BILLING_ACCOUNT= and FOLDER=/ORG= to let the first deploy create it"
        )
    site = f"{project}-api"
    api_host = f"api-{label}.{domain}"
    app_host = f"{label}.{domain}"
    mail_domain = f"{label}.{domain}"
    source_app_host = re.sub(r"^https://([^/:]+).*$", r"\1", source.app_url)
    source_mail_rel = _relative(source.sending_domain, domain)
    mail_rel = _relative(mail_domain, domain)

    def dkim_name(name: str) -> str:
        bare = name.removesuffix("." + source_mail_rel) if source_mail_rel else name
        return f"{bare}.{mail_rel}" if mail_rel else bare

    dkim = [
        {**record.model_dump(exclude_none=True), "name": dkim_name(record.name)}
        for record in source.dkim_records
    ]
    if environment != "preview":
        # Review environments go without: their mail domain is not verified at Resend (docs/operations.md).
        notes["launchready:dkimRecords"] = f"{PLACEHOLDER_MARK}: the records Resend shows for {mail_domain}"
    authorized = [
        app_host if host == source_app_host else api_host if host == source.api_host else host
        for host in source.authorized_domains
        if not (host == "localhost" and environment == "production")
    ]
    rewritten: dict[str, Any] = {
        "launchready:projectId": project,
        "gcp:project": project,
        "gcp:billingProject": project if source.quota_project == source.project_id else source.quota_project,
        "launchready:hostingSiteId": site,
        "launchready:apiHost": api_host,
        "launchready:appUrl": f"https://{app_host}",
        "launchready:authorizedDomains": authorized,
        "launchready:mailDomain": mail_domain,
        "launchready:emailFrom": _sender(source.email_from, request.source, label, mail_domain),
        "launchready:dkimRecords": dkim,
    }
    policy_values: dict[str, Any] = {
        "launchready:environment": environment,
        "launchready:createProject": creating,
        # A new project starts on Identity Platform; an adopted one keeps what it has unless opted in.
        "launchready:identityPlatform": True
        if creating
        else source.identity_platform and not source.create_project,
        # One stack owns a zone's apex SPF, DMARC, CAA, settings and rate limit: the clone shares the zone.
        "launchready:manageZone": False,
        "launchready:dmarcPolicy": DMARC_BY_ENVIRONMENT[environment],
        "launchready:maxInstancesScale": (
            source.max_instances_scale if environment == "production" else SCALE_BY_ENVIRONMENT[environment]
        ),
        "launchready:logRetentionDays": (
            max(source.log_retention_days, LOG_RETENTION_BY_ENVIRONMENT[environment])
            if environment == "production"
            else LOG_RETENTION_BY_ENVIRONMENT[environment]
        ),
    }
    never_values: dict[str, Any] = {"launchready:stripePriceId": PRICE_PLACEHOLDER}
    notes["launchready:stripePriceId"] = (
        f"{PLACEHOLDER_MARK}: a test-mode price id (never copied: {request.source}'s may be live-mode)"
    )
    if source.is_production and environment != "production":
        notes["launchready:zendeskBaseUrl"] = (
            f"{PLACEHOLDER_MARK}: copied from {request.source}; "
            "point a non-production stack at a Zendesk sandbox"
        )

    source_values = dict(stack_file.config)
    # Example values of the source stay marked in the clone (copied keys keep what they hold).
    for placeholder in stack_file.placeholders:
        if clone_class(placeholder.key) is Clone.COPY:
            notes.setdefault(
                placeholder.key, f"{PLACEHOLDER_MARK}: example value in Pulumi.{request.source}.yaml"
            )
    values: dict[str, Any] = {}
    extra_keys = {
        "launchready:billingAccount": billing,
        "launchready:folderId": folder,
        "launchready:orgId": org,
    }
    ordered = list(source_values) + [
        k for k in (*rewritten, *policy_values, *extra_keys) if k not in source_values
    ]
    for key in ordered:
        kind = clone_class(key)
        old = source_values.get(key)
        if kind is Clone.REWRITE:
            new = rewritten.get(key, old)
        elif kind is Clone.POLICY:
            new = policy_values.get(key, old)
        elif kind is Clone.NEVER:
            new = never_values.get(key)
        else:
            new = extra_keys.get(key, old) if key in extra_keys else old
        if key in ("gcp:project", "launchready:hostingSiteId") and old is None:
            new = None  # derived by the program when the source leaves it unset
        if (
            key in ("launchready:billingAccount", "launchready:folderId", "launchready:orgId")
            and not creating
        ):
            new = old
        if key in request.overrides:
            new = request.overrides[key]
            notes.pop(key, None)
        if new is None:
            continue
        values[key] = new
    for key, value in request.overrides.items():  # keys the overrides add
        values.setdefault(key, value)

    new = parse_stack_config(values, request.target)  # the new config validates, or nothing is written
    secret_keys = tuple(sorted({*stack_file.secret_keys, *PROVIDER_SECRETS}))
    provider = _secrets_provider(stack_file.secrets_provider, source.project_id, new.project_id)
    return DerivedStack(
        source=request.source,
        target=request.target,
        values=values,
        notes=notes,
        secret_keys=secret_keys,
        source_environment=source.environment,
        secrets_provider=provider,
        todo=todo,
    )


def _secrets_provider(provider: str | None, source_project: str, project: str) -> str | None:
    """The source's secrets provider kind, pointed at the new project where it names the source's."""
    if not provider:
        return None
    if provider.startswith("gcpkms://"):
        return provider.replace(f"/projects/{source_project}/", f"/projects/{project}/")
    return (
        provider.split("://", 1)[0] + "://" + "<REPLACE: a key of the new stack>"
        if "://" in provider
        else provider
    )


# --- Writing the file -----------------------------------------------------------------------------------


def render(derived: DerivedStack, command: str) -> str:
    """The text of Pulumi.<target>.yaml: a header saying where it came from, then the config."""
    lines = [
        "# yaml-language-server: $schema=./docs/stack-config.schema.json",
        f"# Cloned from Pulumi.{derived.source}.yaml ({derived.source_environment}) by `{command}`.",
        f"# Kind of environment: {derived.values['launchready:environment']}. Identities (project, hosts,",
        "# mail domain) were rewritten, environment-policy keys set for this kind, and no secret was copied:",
        f"# set them with `pulumi config set --secret <key> --stack {derived.target}` (see clone-env).",
        f'# Lines marked "{PLACEHOLDER_MARK}" hold values to check or fill in before the first deploy.',
        "config:",
    ]
    for key, value in derived.values.items():
        note = f" {derived.notes[key]}" if key in derived.notes else ""
        if isinstance(value, list | dict) and value:
            lines.append(f"  {key}:{note}")
            body = yaml.safe_dump(value, default_flow_style=False, sort_keys=False, width=120)
            lines.extend("    " + line for line in body.rstrip("\n").splitlines())
        else:
            scalar = (
                yaml.safe_dump(value, default_flow_style=True, width=1000).removesuffix("\n...\n").strip()
            )
            lines.append(f"  {key}: {scalar}{note}")
    return "\n".join(lines) + "\n"


def next_steps(derived: DerivedStack) -> list[str]:
    provider = derived.secrets_provider or "default"
    steps = [f"pulumi stack init {derived.target} --secrets-provider {provider}"]
    steps += [
        f"pulumi config set --secret {key} <value for {derived.target}> --stack {derived.target}"
        for key in derived.secret_keys
    ]
    steps += [f"make secrets STACK={derived.target}", f"make deploy STACK={derived.target}"]
    return steps


def write(derived: DerivedStack, root: Path, command: str, force: bool) -> Path:
    path = stack_path(derived.target, root)
    if path.exists() and not force:
        raise CloneError(f"{path.name} exists: pass FORCE=1 (--force) to overwrite it")
    text = render(derived, command)
    # The written file must read back as the derived config, with no secure value in it.
    document = yaml.safe_load(text)
    if any(isinstance(v, dict) and "secure" in v for v in document["config"].values()) or any(
        key in document for key in STACK_FILE_KEYS_NEVER_COPIED
    ):
        raise CloneError("refusing to write a secret into the new stack file")
    if json.dumps(document["config"], sort_keys=True) != json.dumps(derived.values, sort_keys=True):
        raise CloneError("the rendered stack file does not read back as the derived config")
    path.write_text(text, encoding="utf-8")
    return path


def run(request: CloneRequest, overrides: list[str], *, force: bool = False, root: Path = ROOT,
        out: Callable[[str], None] = print) -> ExitCode:
    """Derive, prove and write the new stack file (`overrides`: KEY=VALUE texts): OK, or USAGE with
    nothing written when the request, a config or the proof fails."""
    from tools.offline.clone.check import CheckError, prove  # the proof evaluates the program

    command = f"make clone-env FROM={request.source} TO={request.target}"
    try:
        request = dataclasses.replace(request, overrides=_parse_overrides(overrides))
        derived = derive(request, root)
        if stack_path(derived.target, root).exists() and not force:
            raise CloneError(f"Pulumi.{derived.target}.yaml exists: pass FORCE=1 (--force) to overwrite it")
        report = prove(derived.target, derived.values, derived.source, root, out)
    except (CloneError, StackConfigError, CheckError) as error:
        print(f"error: {error}", file=sys.stderr)
        print("nothing written", file=sys.stderr)
        return ExitCode.USAGE
    path = write(derived, root, command, force)
    out(report)
    out(f"\nwrote {path.name}")
    for line in derived.todo:
        out(f"  note: {line}")
    out("\nStill to run, in this order:")
    for step in next_steps(derived):
        out(f"  {step}")
    return ExitCode.OK
