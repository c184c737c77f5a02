"""Every command the README, the runbook or an email names fails on a broken environment (no or bad
credentials, no permission, unknown project, unreachable service, missing CLI) with one line that says
what to do, never a traceback. Commands run as the user runs them, in a subprocess, unless a fault can
only be simulated in-process (a permission or network error from Google's API)."""

from __future__ import annotations

import io
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from google.api_core import exceptions as api_exceptions

from tools.exit_codes import ExitCode
from tools.ops import pulumi_cli, replay_dlq, secrets_cli

ROOT = Path(__file__).resolve().parents[3]


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    return lines[0]


def command(*argv: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def no_adc(tmp_path: Path) -> dict[str, str]:
    """An environment without Application Default Credentials: no key file, an empty gcloud
    configuration, no metadata server."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in {"GOOGLE_APPLICATION_CREDENTIALS", "PUBSUB_EMULATOR_HOST"}
    }
    env.update(CLOUDSDK_CONFIG=str(tmp_path / "gcloud"), NO_GCE_CHECK="true", PYTHONPATH=str(ROOT))
    return env


@pytest.fixture
def missing_key_file(no_adc: dict[str, str], tmp_path: Path) -> dict[str, str]:
    return {**no_adc, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "missing-key.json")}


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- make replay-dlq ------------------------------------------------------------------------------


def test_replay_dlq_without_credentials(no_adc: dict[str, str]) -> None:
    result = command("-m", "tools", "replay-dlq", "--topic", "support", "--project", "p-1", env=no_adc)

    assert result.returncode == ExitCode.ENVIRONMENT
    assert "gcloud auth application-default login" in one_line(result.stderr)


def test_replay_dlq_with_a_key_file_that_does_not_exist(missing_key_file: dict[str, str]) -> None:
    result = command(
        "-m", "tools", "replay-dlq", "--topic", "support", "--project", "p-1", env=missing_key_file
    )

    line = one_line(result.stderr)
    assert result.returncode == ExitCode.ENVIRONMENT
    assert missing_key_file["GOOGLE_APPLICATION_CREDENTIALS"] in line and "does not exist" in line


def test_replay_dlq_against_an_emulator_that_is_not_running(no_adc: dict[str, str]) -> None:
    env = {**no_adc, "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{closed_port()}"}
    result = command("-m", "tools", "replay-dlq", "--topic", "support", "--project", "p-1", env=env)

    assert result.returncode == ExitCode.ENVIRONMENT
    assert "make up" in one_line(result.stderr)


def _replay_with_pull_failing(
    monkeypatch: pytest.MonkeyPatch, error: Exception, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    monkeypatch.delenv("PUBSUB_EMULATOR_HOST", raising=False)
    monkeypatch.setattr(replay_dlq.pubsub_v1, "SubscriberClient", lambda: _Subscriber(error))
    monkeypatch.setattr(replay_dlq.pubsub_v1, "PublisherClient", _Publisher)
    code = replay_dlq.run("support", project="no-such-project", out=io.StringIO())
    return code, capsys.readouterr().err


class _Subscriber:
    """The two calls replay makes before anything is pulled, then the API's error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def subscription_path(self, project: str, name: str) -> str:
        return f"projects/{project}/subscriptions/{name}"

    def pull(self, **kwargs: Any) -> Any:
        raise self.error


class _Publisher:
    def topic_path(self, project: str, name: str) -> str:
        return f"projects/{project}/topics/{name}"


def test_replay_dlq_without_permission_or_on_an_unknown_project(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Pub/Sub answers 403 for a project that does not exist as for one the caller may not use.
    error = api_exceptions.PermissionDenied("User not authorized to perform this action.")
    code, err = _replay_with_pull_failing(monkeypatch, error, capsys)

    line = one_line(err)
    assert code == ExitCode.ENVIRONMENT
    assert "project no-such-project" in line and "roles/pubsub.subscriber" in line


def test_replay_dlq_on_a_network_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    error = api_exceptions.RetryError(
        "Timeout of 10.0s exceeded", api_exceptions.ServiceUnavailable("failed to connect to all addresses")
    )
    code, err = _replay_with_pull_failing(monkeypatch, error, capsys)

    assert code == ExitCode.ENVIRONMENT
    assert "cannot reach Pub/Sub" in one_line(err)


# --- make secrets / make secrets-check ------------------------------------------------------------


@pytest.mark.parametrize("subcommand", ["add", "check"])
def test_secrets_without_credentials(subcommand: str, no_adc: dict[str, str]) -> None:
    result = command(
        "-m", "tools", "secrets", subcommand, "--stack", "staging", "--project", "p-1", env=no_adc
    )

    assert result.returncode == ExitCode.ENVIRONMENT
    assert "gcloud auth application-default login" in one_line(result.stderr)


@pytest.mark.parametrize("subcommand", ["add", "check"])
def test_secrets_with_a_key_file_that_does_not_exist(
    subcommand: str, missing_key_file: dict[str, str]
) -> None:
    result = command(
        "-m",
        "tools",
        "secrets",
        subcommand,
        "--stack",
        "staging",
        "--project",
        "p-1",
        env=missing_key_file,
    )

    assert "missing-key.json, which does not exist" in one_line(result.stderr)


class _FailingSecretManager:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def add_secret_version(self, request: dict[str, Any]) -> Any:
        raise self.error

    def list_secret_versions(self, request: dict[str, Any]) -> Any:
        raise self.error


@pytest.mark.parametrize("subcommand", ["add", "check"])
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            api_exceptions.PermissionDenied("Permission 'secretmanager.versions.list' denied on resource"),
            "permission denied on project no-such-project (or it does not exist)",
        ),
        (
            api_exceptions.ServiceUnavailable("DNS resolution failed for secretmanager.googleapis.com"),
            "cannot reach Secret Manager",
        ),
    ],
    ids=["permission or unknown project", "network"],
)
def test_secrets_on_a_project_wide_failure(
    subcommand: str, error: Exception, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = secrets_cli.run(
        subcommand,
        "staging",
        project="no-such-project",
        client_factory=lambda: _FailingSecretManager(error),
        environ={"STRIPE_API_KEY": "sk_test_x"},
        prompt=lambda text: "",
        out=io.StringIO(),
    )

    assert code == ExitCode.ENVIRONMENT
    line = one_line(capsys.readouterr().err)
    assert expected in line
    if subcommand == "add":
        assert "roles/secretmanager.secretVersionAdder" in line or "cannot reach" in line


# --- make preview / make deploy -------------------------------------------------------------------


def fake_pulumi(directory: Path, *, logged_in: bool, stacks: tuple[str, ...]) -> Path:
    """A `pulumi` on PATH answering `whoami` and `stack select` the way the CLI does (exit 255 and an
    `error:` line on failure); any other command records that it ran."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "pulumi"
    not_logged_in = (
        "echo 'error: PULUMI_ACCESS_TOKEN must be set for login during non-interactive CLI "
        "sessions' >&2; exit 255"
    )
    script.write_text(f"""#!/bin/sh
case "$1" in
  whoami) {"echo alice; exit 0" if logged_in else not_logged_in} ;;
  stack) for s in {" ".join(stacks) or "none"}; do [ "$3" = "$s" ] && exit 0; done
         echo "error: no stack named '$3' found" >&2; exit 255 ;;
  *) echo "ran: $*" > "{directory}/ran"; exit 0 ;;
esac
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return directory


@pytest.mark.parametrize("verb", ["preview", "deploy"])
def test_preview_and_deploy_without_the_pulumi_cli(verb: str, no_adc: dict[str, str], tmp_path: Path) -> None:
    env = {**no_adc, "PATH": str(tmp_path / "empty-bin")}
    result = command("-m", "tools", verb, "--stack", "staging", env=env)

    assert result.returncode == ExitCode.ENVIRONMENT
    assert "https://www.pulumi.com/docs/install/" in one_line(result.stderr)


@pytest.mark.parametrize(
    ("logged_in", "stacks", "expected"),
    [
        (False, (), "run `pulumi login`"),
        (True, ("prod",), "create it with `pulumi stack init staging`"),
        (True, ("staging",), "gcloud auth application-default login"),
    ],
    ids=["not logged in", "unknown stack", "no Google credentials"],
)
def test_preview_stops_before_pulumi_runs(
    logged_in: bool, stacks: tuple[str, ...], expected: str, no_adc: dict[str, str], tmp_path: Path
) -> None:
    bin_dir = fake_pulumi(tmp_path / "bin", logged_in=logged_in, stacks=stacks)
    env = {**no_adc, "PATH": f"{bin_dir}:/usr/bin:/bin"}
    result = command("-m", "tools", "preview", "--stack", "staging", env=env)

    assert result.returncode == ExitCode.ENVIRONMENT
    assert expected in one_line(result.stderr)
    assert not (bin_dir / "ran").exists()


# --- make plan, make status, make demo ------------------------------------------------------------


def test_plan_of_an_unknown_stack(no_adc: dict[str, str]) -> None:
    result = command("-m", "tools", "plan", "--stack", "qa", env=no_adc)

    assert result.returncode != 0
    assert "Pulumi.qa.yaml not found" in one_line(result.stderr)


@pytest.mark.parametrize("subcommand", ["status", "demo"])
def test_status_and_demo_without_a_running_stack(
    subcommand: str, no_adc: dict[str, str], tmp_path: Path
) -> None:
    env = {**no_adc, "LOCAL_STATE_DIR": str(tmp_path / "state")}
    result = command("-m", "tools", subcommand, env=env)

    assert result.returncode == ExitCode.ENVIRONMENT
    output = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(output) == 1 and "make up" in output[0], output


def test_the_checks_pass_when_everything_is_in_place_and_run_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bin_dir = fake_pulumi(tmp_path / "bin", logged_in=True, stacks=("staging",))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr("google.auth.default", lambda: (object(), "p-1"))

    assert pulumi_cli.ready("staging") == ExitCode.OK
    assert not (bin_dir / "ran").exists()
