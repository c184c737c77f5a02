"""The local operator: a password user with the ops role on the Auth emulator, created by `make up` so
the ops console can be opened straight away. Its password is generated once and kept in the state
directory (like the webhook secret), so a browser that saved it keeps working across restarts."""

from __future__ import annotations

import os
import secrets

from tools.ops.grant_ops import admin_app, ensure_local_operator

from .layout import Layout

LOCAL_OPERATOR_EMAIL = "ops@launchready.local"


def local_operator(layout: Layout) -> dict[str, str]:
    """{email, password, uid} of the local operator, created or reset on the running Auth emulator."""
    path = layout.state_dir / "ops_password"
    password = path.read_text().strip() if path.exists() else ""
    if len(password) < 12:
        password = secrets.token_urlsafe(12)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(password + "\n")
    os.environ["FIREBASE_AUTH_EMULATOR_HOST"] = layout.host(layout.auth_port)
    uid = ensure_local_operator(admin_app(layout.project_id), LOCAL_OPERATOR_EMAIL, password)
    return {"email": LOCAL_OPERATOR_EMAIL, "password": password, "uid": uid}
