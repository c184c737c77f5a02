"""The phased deploy driver against a fake `pulumi` executable on PATH that records its argv."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from tools.ops import deploy

ROOT = Path(__file__).resolve().parents[3]
FAKE_PULUMI = """#!/bin/sh
# Records each call; `stack output` prints the state, `up` records the phase it deployed.
echo "$* phase=${LAUNCHREADY_DEPLOY_PHASE:-}" >> "$FAKE_PULUMI_LOG"
case "$1" in
  stack) cat "$FAKE_PULUMI_STATE" 2>/dev/null || exit 255 ;;
  up) printf '{"deployPhase": "%s", "apiCertificateState": "%s"}' "${LAUNCHREADY_DEPLOY_PHASE:-complete}" \
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
    # A stack file with real values: the example markers removed.
    text = (ROOT / "Pulumi.staging.yaml").read_text(encoding="utf-8").replace("# REPLACE", "#")
    (tmp_path / "Pulumi.staging.yaml").write_text(text, encoding="utf-8")
    return tmp_path


def calls(tmp_path: Path) -> list[str]:
    log = tmp_path / "calls.log"
    return log.read_text().splitlines() if log.exists() else []


def runner_with_secrets(ready: bool) -> deploy.Runner:
    """Real subprocesses for pulumi; the Secret Manager check answered as `ready`."""

    def runner(argv: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        if "tools.ops.secrets_cli" in argv:
            return subprocess.CompletedProcess(list(argv), 0 if ready else 1, "", "")
        return deploy.run(argv, env)

    return runner


def test_new_environment_runs_the_phases_in_order_unattended(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status = deploy.main(["--stack", "staging"], runner_with_secrets(True), fake)
    # The certificate is not active yet: foundation and functions ran, the proxied phase waits.
    assert status == deploy.EXIT_WAITING
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
    assert deploy.main(["--stack", "staging"], runner_with_secrets(True), fake) == deploy.EXIT_OK
    assert [c for c in calls(fake) if c.startswith("up")][-1].endswith("phase=complete")
    assert not any(c.endswith("phase=foundation") for c in calls(fake))
    # Finished: a re-run is one update of everything.
    (fake / "calls.log").unlink()
    assert deploy.main(["--stack", "staging"], runner_with_secrets(True), fake) == deploy.EXIT_OK
    assert [c for c in calls(fake) if c.startswith("up")] == [
        "up --stack staging --yes --non-interactive phase=complete"
    ]


def test_missing_secret_values_stop_before_the_functions(fake: Path) -> None:
    assert deploy.main(["--stack", "staging"], runner_with_secrets(False), fake) == deploy.EXIT_WAITING
    assert [c.split()[-1] for c in calls(fake) if c.startswith("up")] == ["phase=foundation"]


def test_example_values_refuse_the_deploy(fake: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (fake / "Pulumi.staging.yaml").write_text((ROOT / "Pulumi.staging.yaml").read_text(encoding="utf-8"))
    assert deploy.main(["--stack", "staging"], runner_with_secrets(True), fake) == deploy.EXIT_CONFIG
    assert calls(fake) == []
    err = capsys.readouterr().err
    assert "error: Pulumi.staging.yaml:" in err and "launchready:projectId" in err
