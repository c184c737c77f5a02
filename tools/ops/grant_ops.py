"""`make grant-ops`: grant or revoke the ops console role (`ops: true` custom claim) on a Firebase Auth user.

Other custom claims are kept; the user must exist already (docs/tools.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

import firebase_admin
from firebase_admin import auth
from firebase_admin import exceptions as firebase_errors

from tools.exit_codes import ExitCode
from tools.ops.failures import explain
from tools.ops.secrets_cli import SecretsCliError, stack_project_id

OPS_CLAIM = "ops"  # functions_src/launchready/handlers/ops_console/access.py reads the same claim


class GrantError(RuntimeError):
    pass


def admin_app(project_id: str) -> firebase_admin.App:
    """A firebase-admin app for `project_id` (one per project, reused)."""
    name = f"grant-ops-{project_id}"
    try:
        return firebase_admin.get_app(name)
    except ValueError:
        return firebase_admin.initialize_app(options={"projectId": project_id}, name=name)


def set_ops_role(app: firebase_admin.App, email: str, *, granted: bool = True) -> dict[str, Any]:
    """Set or clear the claim on the user with `email`; returns the user's new custom claims."""
    try:
        user = auth.get_user_by_email(email, app=app)
    except auth.UserNotFoundError as exc:
        raise GrantError(f"no Firebase Auth user with email {email}; the user must sign up first") from exc
    claims = dict(user.custom_claims or {})
    if granted:
        claims[OPS_CLAIM] = True
    else:
        claims.pop(OPS_CLAIM, None)
    auth.set_custom_user_claims(user.uid, claims or None, app=app)
    return claims


def ensure_local_operator(app: firebase_admin.App, email: str, password: str) -> str:
    """Create (or reset) a password user with the ops role on the Auth emulator; returns its uid."""
    if not os.environ.get("FIREBASE_AUTH_EMULATOR_HOST"):
        raise GrantError("refusing to create an operator with a known password outside the Auth emulator")
    try:
        user = auth.get_user_by_email(email, app=app)
        auth.update_user(user.uid, password=password, email_verified=True, app=app)
    except auth.UserNotFoundError:
        user = auth.create_user(
            email=email, password=password, email_verified=True, display_name="Local operator", app=app
        )
    set_ops_role(app, email)
    return user.uid


def run(email: str, *, stack: str | None = None, local: Path | None = None, revoke: bool = False,
        out: TextIO = sys.stdout) -> ExitCode:
    """Grant (or revoke) the ops role to `email` in the project of `stack`, or on the Auth emulator of the
    running `make up` whose endpoints.json is `local`: OK, USAGE for a bad email or stack, ENVIRONMENT
    for credentials, permission, project or network, or no running stack."""
    project: str | None = None  # known once read: named in the one-line error
    try:
        if "@" not in email or any(c.isspace() for c in email):
            raise GrantError(f"{email!r} is not an email address: pass the user's sign-in email")
        if local is not None:
            try:
                endpoints = json.loads(local.read_text())
            except (OSError, ValueError) as exc:
                print(f"error: {local} is not readable ({exc}); is `make up` running?", file=sys.stderr)
                return ExitCode.ENVIRONMENT
            os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = endpoints["emulators"]["auth"]
            project = str(endpoints["project_id"])
        elif stack is not None:
            project = stack_project_id(stack)
        else:
            raise GrantError("pass the stack (--stack) or the running local stack (--local)")
        claims = set_ops_role(admin_app(project), email, granted=not revoke)
    except (GrantError, SecretsCliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    except Exception as exc:  # credentials, permission, project or network: one line, no traceback
        line = explain(exc, project=project, needs="roles/firebaseauth.admin", service="Firebase Auth")
        if line is None and isinstance(exc, firebase_errors.FirebaseError):
            line = f"Firebase Auth refused the call ({exc.code}): {exc}"
        if line is None:
            raise  # a bug: keep the traceback
        print(f"error: {line}", file=sys.stderr)
        return ExitCode.ENVIRONMENT
    action = "revoked from" if revoke else "granted to"
    print(
        f"ops role {action} {email} in {project}; custom claims now {json.dumps(claims)}. "
        "It applies from the user's next sign-in.",
        file=out,
    )
    return ExitCode.OK
