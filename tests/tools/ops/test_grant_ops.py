"""`make grant-ops`: the ops custom claim set and removed on the Auth emulator, other claims kept."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest
from firebase_admin import auth

from tests.conftest import PROJECT
from tools.exit_codes import ExitCode
from tools.ops import grant_ops


def test_grant_and_revoke_keep_the_other_claims(auth_emulator: str) -> None:
    app = grant_ops.admin_app(PROJECT)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    user = auth.create_user(email=email, password=uuid.uuid4().hex, app=app)
    auth.set_custom_user_claims(user.uid, {"pro": True}, app=app)
    assert grant_ops.set_ops_role(app, email) == {"pro": True, "ops": True}
    assert auth.get_user(user.uid, app=app).custom_claims == {"pro": True, "ops": True}
    assert grant_ops.set_ops_role(app, email, granted=False) == {"pro": True}
    assert auth.get_user(user.uid, app=app).custom_claims == {"pro": True}


def test_an_unknown_email_is_a_clear_error_and_changes_nothing(auth_emulator: str) -> None:
    with pytest.raises(grant_ops.GrantError, match="must sign up first"):
        grant_ops.set_ops_role(grant_ops.admin_app(PROJECT), "nobody-here@example.com")


def test_the_local_command_reads_the_running_stack(auth_emulator: str, tmp_path: Path) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    auth.create_user(email=email, password=uuid.uuid4().hex, app=grant_ops.admin_app(PROJECT))
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"project_id": PROJECT, "emulators": {"auth": auth_emulator}}))
    out = io.StringIO()
    assert grant_ops.run(email, local=endpoints, out=out) == ExitCode.OK
    assert f"ops role granted to {email}" in out.getvalue()
    assert grant_ops.run(email, local=tmp_path / "missing.json") == ExitCode.ENVIRONMENT


def test_a_known_password_operator_is_only_made_on_the_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    with pytest.raises(grant_ops.GrantError, match="outside the Auth emulator"):
        grant_ops.ensure_local_operator(grant_ops.admin_app(PROJECT), "ops@example.com", "x" * 16)


def test_a_malformed_email_is_one_line_before_any_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert grant_ops.run("not-an-email", stack="staging") == ExitCode.USAGE
    assert capsys.readouterr().err.strip() == (
        "error: 'not-an-email' is not an email address: pass the user's sign-in email"
    )


def test_missing_credentials_are_one_actionable_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-key.json"
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(missing))
    monkeypatch.delenv("FIREBASE_AUTH_EMULATOR_HOST", raising=False)
    code = grant_ops.run("founder@example.com", stack="staging")
    assert code == ExitCode.ENVIRONMENT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"GOOGLE_APPLICATION_CREDENTIALS points to {missing}" in err[0]
