"""Set and check the Secret Manager values the functions read.

    python -m tools.ops.secrets_cli add --stack staging [--only STRIPE_API_KEY]
    python -m tools.ops.secrets_cli check --stack prod

`add` stores a new version of every secret the function catalog declares. Each value comes from the
environment variable of the same name when it is set, otherwise from a hidden prompt; an empty answer
skips the secret. Values are never printed or logged. `check` lists every declared secret with its
newest enabled version and exits 1 when any has none.

Pulumi creates the (empty) secrets; values never pass through Pulumi state or config.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from google.auth.exceptions import RefreshError

from .failures import explain

ROOT = Path(__file__).resolve().parents[2]
CATALOG_PATH = ROOT / "functions_src" / "catalog.json"
PROJECT_ID_KEY = "launchready:projectId"

EXIT_OK = 0
EXIT_MISSING = 1  # check: at least one secret has no enabled version; add: a secret could not be set
EXIT_USAGE = 2  # bad arguments, missing stack file, missing credentials
EXIT_ENVIRONMENT = 3  # permission, unknown project or network: one line says what to fix
NEEDS = {"add": "roles/secretmanager.secretVersionAdder", "check": "roles/secretmanager.viewer"}


class SecretsCliError(Exception):
    """A problem the user can fix; the message says how."""


class SecretManagerClient(Protocol):
    """The two calls used from google.cloud.secretmanager.SecretManagerServiceClient."""

    def add_secret_version(self, request: dict[str, Any]) -> Any: ...

    def list_secret_versions(self, request: dict[str, Any]) -> Iterable[Any]: ...


Prompt = Callable[[str], str]


@dataclass(frozen=True)
class SecretStatus:
    name: str
    enabled_version: str | None  # e.g. "3"; None when the secret has no enabled version
    problem: str = ""  # why the status could not be read, e.g. the secret does not exist


# ---- inputs -------------------------------------------------------------------------------------------


def declared_secrets(catalog_path: Path = CATALOG_PATH) -> list[str]:
    """Union of every function's `secrets` in the catalog, sorted."""
    try:
        from components.catalog import load_catalog
    except ImportError:  # the tool stays usable without the Pulumi program's package
        with open(catalog_path, encoding="utf-8") as handle:
            raw = json.load(handle)
        return sorted({name for function in raw["functions"] for name in function.get("secrets", [])})
    return list(load_catalog(catalog_path).secret_names)


def stack_project_id(stack: str, root: Path = ROOT) -> str:
    """`launchready:projectId` from Pulumi.<stack>.yaml."""
    import yaml

    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise SecretsCliError(f"{path.name} not found: the stack '{stack}' has no configuration file yet.")
    config = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("config") or {}
    project_id = config.get(PROJECT_ID_KEY)
    if not isinstance(project_id, str) or not project_id:
        raise SecretsCliError(
            f"{path.name} has no '{PROJECT_ID_KEY}': set it with "
            f"`pulumi config set {PROJECT_ID_KEY} <gcp-project-id> --stack {stack}`."
        )
    return project_id


def make_client() -> SecretManagerClient:
    """The real client, built on Application Default Credentials."""
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import secretmanager

    try:
        return secretmanager.SecretManagerServiceClient()
    except DefaultCredentialsError as exc:
        raise SecretsCliError(explain(exc, project=None, needs="") or str(exc)) from exc


def secret_path(project_id: str, name: str) -> str:
    return f"projects/{project_id}/secrets/{name}"


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
) -> int:
    """Add a version for each name; report per secret (never the value). Return an exit code."""
    from google.api_core import exceptions as api_exceptions

    failed: list[str] = []
    print(f"Adding secret versions in project {project_id}.", file=out)
    for name in names:
        value, source = read_value(name, environ, prompt)
        if not value:
            print(f"  {name}: skipped (empty value; unchanged)", file=out)
            continue
        try:
            version = add_secret_version(client, project_id, name, value)
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
        return EXIT_MISSING
    return EXIT_OK


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


def check_secrets(client: SecretManagerClient, project_id: str, names: list[str], *, out: TextIO) -> int:
    statuses = [secret_status(client, project_id, name) for name in names]
    width = max((len(s.name) for s in statuses), default=0)
    print(f"Secrets in project {project_id}:", file=out)
    for status in statuses:
        if status.enabled_version:
            state = f"ok (enabled version {status.enabled_version})"
        else:
            state = f"MISSING ({status.problem})" if status.problem else "MISSING (no enabled version)"
        print(f"  {status.name.ljust(width)}  {state}", file=out)
    missing = [s.name for s in statuses if not s.enabled_version]
    if missing:
        print(f"{len(missing)} secret(s) without an enabled version: {', '.join(missing)}", file=out)
        print("Set them with: python -m tools.ops.secrets_cli add --stack <stack> [--only NAME]", file=out)
        return EXIT_MISSING
    print("All secrets have an enabled version.", file=out)
    return EXIT_OK


# ---- command line -------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ops.secrets_cli",
        description="Set and check the Secret Manager values the functions read.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add a version to each declared secret (env var or hidden prompt)")
    check = commands.add_parser("check", help="list declared secrets; exit 1 if any has no enabled version")
    for command in (add, check):
        command.add_argument("--stack", required=True, help="Pulumi stack, e.g. staging or prod")
        command.add_argument("--project", help="GCP project id (default: launchready:projectId of the stack)")
        command.add_argument("--only", metavar="NAME", help="just this secret")
    return parser.parse_args(argv)


def main(
    argv: list[str] | None = None,
    *,
    client_factory: Callable[[], SecretManagerClient] = make_client,
    environ: Mapping[str, str] | None = None,
    prompt: Prompt | None = None,
    out: TextIO | None = None,
    root: Path = ROOT,
) -> int:
    args = parse_args(argv)
    stdout: TextIO = out or sys.stdout
    err = sys.stderr
    try:
        names = declared_secrets(root / "functions_src" / "catalog.json")
        if args.only:
            if args.only not in names:
                raise SecretsCliError(f"{args.only} is not a declared secret; declared: {', '.join(names)}")
            names = [args.only]
        project_id = args.project or stack_project_id(args.stack, root)
        client = client_factory()
    except SecretsCliError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_USAGE
    try:
        if args.command == "check":
            return check_secrets(client, project_id, names, out=stdout)
        return add_secrets(
            client,
            project_id,
            names,
            environ=os.environ if environ is None else environ,
            # getpass reads from the terminal with echo off.
            prompt=prompt or getpass.getpass,
            out=stdout,
        )
    except Exception as exc:
        line = explain(exc, project=project_id, needs=NEEDS[args.command], service="Secret Manager")
        if line is None:
            raise
        print(f"error: {line}", file=err)
        return EXIT_USAGE if isinstance(exc, RefreshError) else EXIT_ENVIRONMENT


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; secrets already added are kept", file=sys.stderr)
        sys.exit(130)
