"""The phased deploy driver against a fake `pulumi` executable on PATH that records its argv."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tools.exit_codes import ExitCode
from tools.ops import deploy

ROOT = Path(__file__).resolve().parents[3]
FAKE_PULUMI = """#!/bin/sh
# Records each call; `stack output` prints the state, `up` records the phase it deployed.
echo "$* phase=${LAUNCHREADY_DEPLOY_PHASE:-}" >> "$FAKE_PULUMI_LOG"
case "$1" in
  stack) cat "$FAKE_PULUMI_STATE" 2>/dev/null || exit 255 ;;
  up) if [ -n "$FAKE_FAIL_PHASE" ] && [ "$LAUNCHREADY_DEPLOY_PHASE" = "$FAKE_FAIL_PHASE" ] \
          && [ ! -e "$FAKE_PULUMI_LOG.failed" ]; then
        touch "$FAKE_PULUMI_LOG.failed"
        echo "Permission denied while using the Eventarc Service Agent" >&2; exit 1
      fi
      printf '{"deployPhase": "%s", "apiCertificateState": "%s"}' "${LAUNCHREADY_DEPLOY_PHASE:-complete}" \
        "$FAKE_CERT_STATE" > "$FAKE_PULUMI_STATE" ;;
esac
"""


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("FAKE_CERT_STATE", "CERT_PROPAGATING")
    # A stack file with a founder's own values.
    text = (ROOT / "tests" / "founder" / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    (tmp_path / "Pulumi.staging.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


class FakeSecretManager:
    """Answers `secrets_cli check` like the real command; `add --only NAME` gives NAME a version."""

    def __init__(self, names: Sequence[str], present: Sequence[str] = ()) -> None:
        self.names = list(names)
        self.present = set(present)
        self.added: list[str] = []

    def __call__(self, argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        if list(argv[1:4]) != ["-m", "tools", "secrets"]:
            return deploy.run_command(argv, env)
        if "add" in argv:
            name = argv[argv.index("--only") + 1]
            self.added.append(name)
            self.present.add(name)
            return subprocess.CompletedProcess(list(argv), 0, "", "")
        lines = [
            f"  {n}  {'ok (enabled version 1)' if n in self.present else 'MISSING (no enabled version)'}"
            for n in self.names
        ]
        missing = [n for n in self.names if n not in self.present]
        return subprocess.CompletedProcess(list(argv), 1 if missing else 0, "\n".join(lines) + "\n", "")


NAMES = ("STRIPE_API_KEY", "RESEND_API_KEY")


def runner_with_secrets(ready: bool) -> deploy.Runner:
    """Real subprocesses for pulumi; every secret set (`ready`) or none."""
    return FakeSecretManager(NAMES, NAMES if ready else ())


def test_ci_adds_missing_secrets_from_the_environment_without_prompting(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = FakeSecretManager(NAMES, present=["STRIPE_API_KEY"])
    monkeypatch.setenv("RESEND_API_KEY", "re_test_value")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    deploy.run("staging", runner=manager, root=fake)
    # Only the missing secret, from the environment; the one with a version gets no new version.
    assert manager.added == ["RESEND_API_KEY"]
    assert any(c.endswith("phase=functions") for c in calls(fake))


def test_missing_secrets_are_read_from_the_real_check_report() -> None:
    # The driver parses `secrets_cli check`; this keeps the two in step.
    import io
    from types import SimpleNamespace
    from typing import Any

    from google.cloud.secretmanager import SecretVersion

    from tools.ops import secrets_cli

    class Client:
        def add_secret_version(self, request: dict[str, Any]) -> Any:
            raise AssertionError("check never adds")

        def list_secret_versions(self, request: dict[str, Any]) -> list[Any]:
            if request["parent"].endswith("/STRIPE_API_KEY"):
                return [SimpleNamespace(name="x/versions/3", state=SecretVersion.State.ENABLED)]
            return []

        def get_secret(self, request: dict[str, Any]) -> Any:
            # Nothing recorded by `add` yet: no fingerprint or Stripe-mode annotations.
            return SimpleNamespace(name=request["name"], annotations={})

    out = io.StringIO()
    status = secrets_cli.check_secrets(Client(), "p", ["STRIPE_API_KEY", "HUBSPOT_TOKEN"], out=out)
    assert status == ExitCode.FAILED
    assert deploy.missing_secrets(out.getvalue()) == ["HUBSPOT_TOKEN"]


def test_new_environment_runs_the_phases_in_order_unattended(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = deploy.run("staging", runner=runner_with_secrets(True), root=fake)
    # The certificate is not active yet: foundation and functions ran, the proxied phase waits.
    assert status == ExitCode.WAITING
    ups = [c for c in calls(fake) if c.startswith("up")]
    assert ups == [
        "up --stack staging --yes --non-interactive phase=foundation",
        "up --stack staging --yes --non-interactive phase=functions",
    ]
    monkeypatch.setenv("FAKE_CERT_STATE", "CERT_ACTIVE")
    # Re-run: continues after functions; the certificate is read from the stack outputs again.
    (fake / "calls.log").unlink()
    json_state = json.loads((fake / "state.json").read_text())
    (fake / "state.json").write_text(json.dumps({**json_state, "apiCertificateState": "CERT_ACTIVE"}))
    assert deploy.run("staging", runner=runner_with_secrets(True), root=fake) == ExitCode.OK
    assert [c for c in calls(fake) if c.startswith("up")][-1].endswith("phase=complete")
    assert not any(c.endswith("phase=foundation") for c in calls(fake))
    # Finished: a re-run is one update of everything.
    (fake / "calls.log").unlink()
    assert deploy.run("staging", runner=runner_with_secrets(True), root=fake) == ExitCode.OK
    assert [c for c in calls(fake) if c.startswith("up")] == [
        "up --stack staging --yes --non-interactive phase=complete"
    ]


def test_missing_secret_values_stop_before_the_functions(fake: Path) -> None:
    assert deploy.run("staging", runner=runner_with_secrets(False), root=fake) == ExitCode.WAITING
    assert [c.split()[-1] for c in calls(fake) if c.startswith("up")] == ["phase=foundation"]


def test_example_values_refuse_the_deploy(fake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from components.example_values import EXAMPLE_VALUES

    # The founder's project id put back to one of the template's example ids.
    example = EXAMPLE_VALUES["launchready:projectId"][0]
    text = (fake / "Pulumi.staging.yaml").read_text(encoding="utf-8").replace("myapp-staging-4821", example)
    (fake / "Pulumi.staging.yaml").write_text(text, encoding="utf-8")
    assert deploy.run("staging", runner=runner_with_secrets(True), root=fake) == ExitCode.USAGE
    assert calls(fake) == []
    err = capsys.readouterr().err
    assert "error: Pulumi.staging.yaml:" in err and "launchready:projectId" in err


def test_preview_shows_the_phase_the_next_deploy_runs(fake: Path) -> None:
    runner = runner_with_secrets(True)
    assert deploy.run("staging", preview=True, runner=runner, root=fake) == ExitCode.OK
    assert calls(fake)[-1] == "preview --diff --stack staging phase=foundation"
    (fake / "state.json").write_text('{"deployPhase": "foundation"}')
    deploy.run("staging", preview=True, runner=runner, root=fake)
    assert calls(fake)[-1] == "preview --diff --stack staging phase=functions"
    assert not any(c.startswith("up") for c in calls(fake))


def test_functions_phase_is_retried_after_a_wait_on_a_fresh_project(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake fails the first functions `up` the way a not yet propagated Eventarc agent does.
    monkeypatch.setenv("FAKE_FAIL_PHASE", "functions")
    waits: list[float] = []
    status = deploy.run("staging", runner=runner_with_secrets(True), root=fake, sleep=waits.append)
    assert status == ExitCode.WAITING  # reached the certificate gate
    assert [c.split()[-1] for c in calls(fake) if c.startswith("up")] == [
        "phase=foundation",
        "phase=functions",
        "phase=functions",
    ]
    assert waits == [deploy.PROPAGATION_WAIT_SECONDS]
