"""Grant (or revoke) the ops console role: the `ops: true` custom claim on a Firebase Auth user.

    python -m tools.ops.grant_ops --stack staging --email founder@example.com [--revoke]
    python -m tools.ops.grant_ops --local --email someone@example.com     # the running `make up`

Uses firebase-admin with Application Default Credentials (a user with `roles/firebaseauth.admin` on the
project), or the Auth emulator of a running `make up` with `--local`. The user must already exist
(signed up in the app or added in the Firebase console). Other custom claims (`pro`) are kept. The claim
reaches the user's ID token at the next sign-in or token refresh (at most an hour).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import firebase_admin
from firebase_admin import auth
from firebase_admin import exceptions as firebase_errors

from tools.ops.failures import EXIT_ENVIRONMENT, explain
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


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.ops.grant_ops", description=(__doc__ or "").split("\n\n")[0]
    )
    parser.add_argument("--email", required=True, help="the user's sign-in email")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the stack whose project (launchready:projectId) to act on")
    where.add_argument(
        "--local",
        nargs="?",
        const=".local/endpoints.json",
        metavar="ENDPOINTS",
        help="the Auth emulator of a running `make up`",
    )
    parser.add_argument("--revoke", action="store_true", help="remove the role instead")
    args = parser.parse_args(argv)
    project: str | None = None  # known once read: named in the one-line error
    try:
        if "@" not in args.email or any(c.isspace() for c in args.email):
            raise GrantError(f"{args.email!r} is not an email address: pass the user's sign-in email")
        if args.local:
            try:
                endpoints = json.loads(Path(args.local).read_text())
            except (OSError, ValueError) as exc:
                raise GrantError(f"{args.local} is not readable ({exc}); is `make up` running?") from exc
            os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = endpoints["emulators"]["auth"]
            project = str(endpoints["project_id"])
        else:
            project = stack_project_id(args.stack)
        claims = set_ops_role(admin_app(project), args.email, granted=not args.revoke)
    except (GrantError, SecretsCliError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # credentials, permission, project or network: one line, no traceback
        line = explain(exc, project=project, needs="roles/firebaseauth.admin", service="Firebase Auth")
        if line is None and isinstance(exc, firebase_errors.FirebaseError):
            line = f"Firebase Auth refused the call ({exc.code}): {exc}"
        if line is None:
            raise  # a bug: keep the traceback
        print(f"error: {line}", file=sys.stderr)
        return EXIT_ENVIRONMENT
    action = "revoked from" if args.revoke else "granted to"
    print(
        f"ops role {action} {args.email} in {project}; custom claims now {json.dumps(claims)}. "
        "It applies from the user's next sign-in.",
        file=out,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
