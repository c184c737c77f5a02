"""`make secrets` / `make secrets-check`: set and check the Secret Manager values the functions read.

Values are never printed, logged or read back; a key stays in its environment's mode (docs/tools.md).
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import os
import re
import secrets as token_source
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from components.config_types import ENVIRONMENTS
from components.stack_config import StackConfigError
from tools.exit_codes import ExitCode
from tools.project_files import ROOT, read_catalog, read_stack, stack_names

from .failures import explain

PROJECT_ID_KEY = "launchready:projectId"
ENVIRONMENT_KEY = "launchready:environment"
FINGERPRINT_KEY_ENV = "LAUNCHREADY_FINGERPRINT_KEY"
FINGERPRINT_KEY_FILE = Path(".local") / "secrets-fingerprint.key"
# Secret annotation keys: 1-63 characters, alphanumerics at both ends, [-_.] between
# (https://cloud.google.com/secret-manager/docs/reference/rest/v1/projects.secrets#Secret.FIELDS.annotations).
FINGERPRINT_ANNOTATION = "launchready-fingerprint"
STRIPE_MODE_ANNOTATION = "launchready-stripe-mode"
# Stripe secret (sk_) and restricted (rk_) keys carry their mode in the prefix
# (https://docs.stripe.com/keys#obtain-api-keys).
_STRIPE_KEY = re.compile(r"^(sk|rk)_(live|test)_")

NEEDS = {
    "add": "roles/secretmanager.secretVersionAdder and secretmanager.secrets.update (for the fingerprint)",
    "check": "roles/secretmanager.viewer",
}


class SecretsCliError(Exception):
    """A problem the user can fix; the message says how."""


class SecretManagerClient(Protocol):
    """The calls used from google.cloud.secretmanager.SecretManagerServiceClient."""

    def add_secret_version(self, request: dict[str, Any]) -> Any: ...

    def list_secret_versions(self, request: dict[str, Any]) -> Iterable[Any]: ...

    def get_secret(self, request: dict[str, Any]) -> Any: ...

    def update_secret(self, request: dict[str, Any]) -> Any: ...


Prompt = Callable[[str], str]


@dataclass(frozen=True)
class SecretStatus:
    name: str
    enabled_version: str | None  # e.g. "3"; None when the secret has no enabled version
    problem: str = ""  # why the status could not be read, e.g. the secret does not exist


# ---- inputs -------------------------------------------------------------------------------------------


def declared_secrets(root: Path = ROOT) -> list[str]:
    """Union of every function's `secrets` in the catalog, sorted."""
    return list(read_catalog(root).secret_names)


def _stack_setting(stack: str, key: str, example: str, root: Path) -> str:
    try:
        config = read_stack(stack, root).config
    except StackConfigError as error:
        raise SecretsCliError(str(error)) from None
    value = config.get(key)
    if not isinstance(value, str) or not value:
        raise SecretsCliError(
            f"Pulumi.{stack}.yaml has no '{key}': "
            f"set it with `pulumi config set {key} {example} --stack {stack}`."
        )
    return value


def stack_project_id(stack: str, root: Path = ROOT) -> str:
    """`launchready:projectId` from Pulumi.<stack>.yaml."""
    return _stack_setting(stack, PROJECT_ID_KEY, "<gcp-project-id>", root)


def stack_environment(stack: str, root: Path = ROOT) -> str:
    """`launchready:environment` (production, staging or preview) from Pulumi.<stack>.yaml."""
    environment = _stack_setting(stack, ENVIRONMENT_KEY, "<production|staging|preview>", root)
    if environment not in ENVIRONMENTS:
        raise SecretsCliError(
            f"Pulumi.{stack}.yaml: {ENVIRONMENT_KEY} is {environment!r}; "
            f"use one of {', '.join(ENVIRONMENTS)}."
        )
    return environment


def _other_projects(stack: str, root: Path) -> dict[str, str]:
    """{stack: project id} of every other stack whose file names a project."""
    projects = {}
    for other in other_stacks(stack, root):
        try:
            projects[other] = stack_project_id(other, root)
        except SecretsCliError:
            continue
    return projects


def other_stacks(stack: str, root: Path = ROOT) -> list[str]:
    """Every other stack with a Pulumi.<stack>.yaml in the repository."""
    return [name for name in stack_names(root) if name != stack]


def make_client() -> SecretManagerClient:
    """The real client, built on Application Default Credentials."""
    from google.cloud import secretmanager

    return secretmanager.SecretManagerServiceClient()


def secret_path(project_id: str, name: str) -> str:
    return f"projects/{project_id}/secrets/{name}"


# ---- keys in the right environment ---------------------------------------------------------------------


def stripe_mode(value: str) -> str | None:
    """ "live" or "test" for a Stripe secret or restricted key, None for anything else."""
    match = _STRIPE_KEY.match(value)
    return match.group(2) if match else None


def mode_problem(mode: str | None, environment: str) -> str | None:
    """Why a key of this Stripe mode does not belong in a stack of this environment kind, or None."""
    if mode == "live" and environment != "production":
        return f"a Stripe live-mode key (sk_live_/rk_live_) belongs in production only; this is {environment}"
    if mode == "test" and environment == "production":
        return "a Stripe test-mode key (sk_test_/rk_test_) in production: use the live-mode key"
    return None


def fingerprint_key(environ: Mapping[str, str], root: Path = ROOT) -> bytes:
    """The HMAC key for fingerprints: LAUNCHREADY_FINGERPRINT_KEY, else a random key kept in
    .local/secrets-fingerprint.key (created on first use, owner-only). Use the same key for every
    stack, or fingerprints from two stacks cannot be compared."""
    from_env = environ.get(FINGERPRINT_KEY_ENV, "").strip()
    if from_env:
        return from_env.encode("utf-8")
    path = root / FINGERPRINT_KEY_FILE
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(token_source.token_hex(32) + "\n", encoding="utf-8")
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip().encode("utf-8")


def fingerprint(key: bytes, value: str) -> str:
    """`<key id>:<HMAC-SHA256 of the value, 128 bits>`; the key id tells which fingerprints compare."""
    key_id = hashlib.sha256(key).hexdigest()[:8]
    digest = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
    return f"{key_id}:{digest}"


def record_annotations(
    client: SecretManagerClient, project_id: str, name: str, version: str, digest: str, mode: str | None
) -> None:
    """Merge the version's fingerprint (and Stripe mode) into the secret's annotations."""
    secret = client.get_secret(request={"name": secret_path(project_id, name)})
    annotations = dict(getattr(secret, "annotations", {}) or {})
    annotations[FINGERPRINT_ANNOTATION] = f"v{version} {digest}"
    if mode:
        annotations[STRIPE_MODE_ANNOTATION] = mode
    else:
        annotations.pop(STRIPE_MODE_ANNOTATION, None)
    client.update_secret(
        request={
            "secret": {"name": secret_path(project_id, name), "annotations": annotations},
            "update_mask": {"paths": ["annotations"]},
        }
    )


@dataclass(frozen=True)
class Recorded:
    """What `add` recorded on a secret: the fingerprinted version, the fingerprint and the Stripe mode."""

    version: str | None
    fingerprint: str | None
    mode: str | None


def recorded(client: SecretManagerClient, project_id: str, name: str) -> Recorded:
    secret = client.get_secret(request={"name": secret_path(project_id, name)})
    annotations = dict(getattr(secret, "annotations", {}) or {})
    version, _, digest = str(annotations.get(FINGERPRINT_ANNOTATION, "")).partition(" ")
    return Recorded(
        version.removeprefix("v") or None, digest or None, annotations.get(STRIPE_MODE_ANNOTATION)
    )


# ---- add ----------------------------------------------------------------------------------------------


def read_value(name: str, environ: Mapping[str, str], prompt: Prompt) -> tuple[str, str]:
    """(value, source); value is "" when the user chose to skip."""
    from_env = environ.get(name, "")
    if from_env.strip():
        return from_env.strip(), "environment"
    try:
        typed = prompt(f"{name} (input hidden; empty to skip): ")
    except EOFError:  # no terminal to ask on
        return "", "prompt"
    return typed.strip(), "prompt"


def add_secret_version(client: SecretManagerClient, project_id: str, name: str, value: str) -> str:
    """Store `value` as the newest version; return the version number."""
    import google_crc32c

    data = value.encode("utf-8")
    # The checksum lets Secret Manager reject a payload corrupted on the way.
    checksum = int(google_crc32c.value(data))
    response = client.add_secret_version(
        request={"parent": secret_path(project_id, name), "payload": {"data": data, "data_crc32c": checksum}}
    )
    return str(getattr(response, "name", "")).rsplit("/", 1)[-1]


def add_secrets(
    client: SecretManagerClient,
    project_id: str,
    names: list[str],
    *,
    environ: Mapping[str, str],
    prompt: Prompt,
    out: TextIO,
    environment: str = "staging",
    key: bytes = b"",
) -> ExitCode:
    """Add a version for each name and record its fingerprint; report per secret (never the value).
    A Stripe key of the wrong mode for `environment` is refused. Return an exit code."""
    from google.api_core import exceptions as api_exceptions

    failed: list[str] = []
    print(f"Adding secret versions in project {project_id} ({environment}).", file=out)
    for name in names:
        value, source = read_value(name, environ, prompt)
        if not value:
            print(f"  {name}: skipped (empty value; unchanged)", file=out)
            continue
        mode = stripe_mode(value)
        problem = mode_problem(mode, environment)
        if problem:
            print(f"  {name}: refused: {problem}", file=out)
            failed.append(name)
            continue
        try:
            version = add_secret_version(client, project_id, name, value)
            record_annotations(client, project_id, name, version, fingerprint(key, value), mode)
        except api_exceptions.NotFound:
            print(
                f"  {name}: the secret does not exist in project {project_id}: run `pulumi up` first "
                "(it creates the secrets), then run this command again.",
                file=out,
            )
            failed.append(name)
            continue
        print(f"  {name}: added version {version} (value from {source})", file=out)
    if failed:
        print(f"Not set: {', '.join(failed)}", file=out)
        return ExitCode.FAILED
    return ExitCode.OK


# ---- check --------------------------------------------------------------------------------------------


def secret_status(client: SecretManagerClient, project_id: str, name: str) -> SecretStatus:
    from google.api_core import exceptions as api_exceptions
    from google.cloud.secretmanager import SecretVersion

    try:
        versions = list(client.list_secret_versions(request={"parent": secret_path(project_id, name)}))
    except api_exceptions.NotFound:
        return SecretStatus(name, None, "secret does not exist: run `pulumi up` first")
    # Disabled and destroyed versions are listed too; only an enabled one can be read by the functions.
    enabled = [v for v in versions if v.state == SecretVersion.State.ENABLED]
    if not enabled:
        return SecretStatus(name, None)
    # Versions are listed newest first.
    return SecretStatus(name, str(enabled[0].name).rsplit("/", 1)[-1])


def _recorded_or_none(client: SecretManagerClient, project_id: str, name: str) -> Recorded | None:
    from google.api_core import exceptions as api_exceptions

    try:
        return recorded(client, project_id, name)
    except (api_exceptions.NotFound, api_exceptions.PermissionDenied):
        return None


def check_secrets(
    client: SecretManagerClient,
    project_id: str,
    names: list[str],
    *,
    out: TextIO,
    environment: str = "staging",
    others: Mapping[str, str] | None = None,
) -> ExitCode:
    """Every declared secret has an enabled version, fingerprinted by `add`, of the right Stripe mode
    for `environment`, and no fingerprint equal to one in the `others` stacks ({stack: project id})."""
    statuses = [secret_status(client, project_id, name) for name in names]
    marks = {name: _recorded_or_none(client, project_id, name) for name in names}
    width = max((len(s.name) for s in statuses), default=0)
    print(f"Secrets in project {project_id} ({environment}):", file=out)
    problems: list[str] = []
    for status in statuses:
        mark = marks[status.name]
        if status.enabled_version:
            state = f"ok (enabled version {status.enabled_version})"
            wrong_mode = mode_problem(mark.mode, environment) if mark else None
            if wrong_mode:
                state = f"WRONG KEY ({wrong_mode})"
                problems.append(status.name)
            elif not mark or mark.version != status.enabled_version:
                state += "; not fingerprinted: re-add it with `make secrets` to compare it across stacks"
        else:
            state = f"MISSING ({status.problem})" if status.problem else "MISSING (no enabled version)"
        print(f"  {status.name.ljust(width)}  {state}", file=out)
    missing = [s.name for s in statuses if not s.enabled_version]
    shared = _shared_with_other_stacks(client, marks, others or {}, out)
    if missing:
        print(f"{len(missing)} secret(s) without an enabled version: {', '.join(missing)}", file=out)
        print("Set them with: python -m tools secrets add --stack <stack> [--only NAME]", file=out)
    if missing or problems or shared:
        return ExitCode.FAILED
    print("All secrets have an enabled version, in the right environment only.", file=out)
    return ExitCode.OK


def _shared_with_other_stacks(
    client: SecretManagerClient, marks: Mapping[str, Recorded | None], others: Mapping[str, str], out: TextIO
) -> list[str]:
    """Lines naming each credential found in this stack and another (equal fingerprints)."""
    mine = {m.fingerprint: name for name, m in marks.items() if m and m.fingerprint}
    shared: list[str] = []
    for stack, project_id in sorted(others.items()):
        for name in marks:
            theirs = _recorded_or_none(client, project_id, name)
            if theirs and theirs.fingerprint in mine:
                shared.append(f"{mine[theirs.fingerprint]} here and {name} in stack {stack} ({project_id})")
    for line in shared:
        print(f"  SAME CREDENTIAL: {line}: give each environment its own key", file=out)
    return shared


# ---- the command --------------------------------------------------------------------------------------


def run(
    command: str,
    stack: str,
    *,
    project: str | None = None,
    only: str | None = None,
    client_factory: Callable[[], SecretManagerClient] = make_client,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    out: TextIO | None = None,
    root: Path = ROOT,
) -> ExitCode:
    """`add` or `check` every declared secret (or `only` one) of `stack`: OK; FAILED when a secret has no
    enabled version or could not be set; USAGE for a bad stack or name; ENVIRONMENT for credentials,
    permission, project or network (one line says what to fix); INTERRUPTED on Ctrl-C."""
    stdout: TextIO = out or sys.stdout
    err = sys.stderr
    try:
        names = declared_secrets(root)
        if only:
            if only not in names:
                raise SecretsCliError(f"{only} is not a declared secret; declared: {', '.join(names)}")
            names = [only]
        project_id = project or stack_project_id(stack, root)
        environment = stack_environment(stack, root)
        others = _other_projects(stack, root) if command == "check" else {}
    except SecretsCliError as exc:
        print(f"error: {exc}", file=err)
        return ExitCode.USAGE
    try:
        client = client_factory()
        if command == "check":
            return check_secrets(
                client, project_id, names, out=stdout, environment=environment, others=others
            )
        environ = os.environ if environ is None else environ
        return add_secrets(
            client,
            project_id,
            names,
            environ=environ,
            # getpass reads from the terminal with echo off.
            prompt=prompt or getpass.getpass,
            out=stdout,
            environment=environment,
            key=fingerprint_key(environ, root),
        )
    except KeyboardInterrupt:
        print("\ninterrupted; secrets already added are kept", file=err)
        return ExitCode.INTERRUPTED
    except Exception as exc:
        line = explain(exc, project=project_id, needs=NEEDS[command], service="Secret Manager")
        if line is None:
            raise
        print(f"error: {line}", file=err)
        return ExitCode.ENVIRONMENT
