"""The phased deploy driver against a fake `pulumi` CLI and a fake Firebase Hosting API on one scripted
cloud timeline: the API host's certificate is pending for the first k reads of the cloud, then active.

The fake CLI behaves as the real one does: `up` rewrites the stack outputs the program computes from the
resources' stored state, a resource's stored outputs (the custom domain's certificate) change only on
`pulumi refresh` or a change of that resource, and a refresh does not rewrite stack outputs
(pulumi/pulumi#2710, #9990); `stack output` prints what is stored. The fake Hosting API
answers customDomains.get with bodies checked against the API's discovery document.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httplib2
import pytest

from components.phases import PHASES
from components.stack_config import StackConfig
from tests.tools.discovery import checked
from tools.exit_codes import ExitCode
from tools.ops import deploy, hosting_api

ROOT = Path(__file__).resolve().parents[3]
PENDING, ACTIVE = "CERT_PROPAGATING", "CERT_ACTIVE"
FAKE_PULUMI = """#!{python}
import json, os, sys
from pathlib import Path

args = sys.argv[1:]
phase = os.environ.get("LAUNCHREADY_DEPLOY_PHASE", "")
with open(os.environ["FAKE_PULUMI_LOG"], "a") as log:
    log.write(" ".join(args) + f" phase={{phase}}\\n")
state_path, timeline_path = Path(os.environ["FAKE_PULUMI_STATE"]), Path(os.environ["FAKE_TIMELINE"])
state = json.loads(state_path.read_text()) if state_path.exists() else {{}}


def read_cloud():
    timeline = json.loads(timeline_path.read_text())
    timeline["reads"] += 1
    timeline_path.write_text(json.dumps(timeline))
    return "{active}" if timeline["reads"] > timeline["pending"] else "{pending}"


if args[0] == "stack":
    print(json.dumps(state.get("outputs", {{}})))
elif args[0] == "refresh":
    if "domain_cert" in state:
        state["domain_cert"] = read_cloud()
elif args[0] == "up":
    failing = os.environ.get("FAKE_FAIL_PHASE", "")
    marker = Path(os.environ["FAKE_PULUMI_LOG"] + ".failed")
    if phase == failing and (os.environ.get("FAKE_FAIL_ALWAYS") or not marker.exists()):
        marker.touch()
        sys.exit("Permission denied while using the Eventarc Service Agent")
    # Created with wait_dns_verification=false: the create returns before any certificate exists, and
    # an `up` that changes nothing on the domain keeps its stored outputs.
    state.setdefault("domain_cert", "")
    state["outputs"] = {{"deployPhase": phase or "complete", "apiCertificateState": state["domain_cert"]}}
state_path.write_text(json.dumps(state))
"""


class Cloud:
    """The scripted timeline both fakes read: the certificate is pending for `pending` reads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def start(self, pending: int) -> None:
        self.path.write_text(json.dumps({"pending": pending, "reads": 0}))

    @property
    def reads(self) -> int:
        return int(json.loads(self.path.read_text())["reads"])

    def read(self) -> str:
        timeline = json.loads(self.path.read_text())
        timeline["reads"] += 1
        self.path.write_text(json.dumps(timeline))
        return ACTIVE if timeline["reads"] > timeline["pending"] else PENDING


class HostingApi:
    """An httplib2 stand-in answering GET .../customDomains/{domain} from the timeline."""

    def __init__(self, cloud: Cloud, status: int = 200) -> None:
        self.cloud = cloud
        self.status = status
        self.requests: list[tuple[str, str]] = []

    def request(self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **_: Any) -> Any:
        self.requests.append((method, uri))
        assert method == "GET"
        path = uri.split("?", 1)[0].removeprefix("https://firebasehosting.googleapis.com/v1beta1/")
        project, site, domain = path.split("/")[1::2]
        if self.status != 200:
            error = {"error": {"code": self.status, "message": "denied", "status": "PERMISSION_DENIED"}}
            return httplib2.Response({"status": self.status}), json.dumps(error).encode()
        resource = checked(
            "firebasehosting",
            "v1beta1",
            "CustomDomain",
            {
                "name": hosting_api.custom_domain_name(project, site, domain),
                "hostState": "HOST_ACTIVE",
                "ownershipState": "OWNERSHIP_ACTIVE",
                "cert": {"state": self.cloud.read(), "type": "GROUPED", "expireTime": "2027-03-01T00:00:00Z"},
            },
        )
        return httplib2.Response({"status": 200}), json.dumps(resource).encode()


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "pulumi"
    script.write_text(FAKE_PULUMI.format(python=sys.executable, active=ACTIVE, pending=PENDING))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_PULUMI_LOG", str(tmp_path / "calls.log"))
    monkeypatch.setenv("FAKE_PULUMI_STATE", str(tmp_path / "state.json"))
    monkeypatch.setenv("FAKE_TIMELINE", str(tmp_path / "timeline.json"))
    Cloud(tmp_path / "timeline.json").start(pending=1)
    # A stack file with a founder's own values.
    text = (ROOT / "tests" / "founder" / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    (tmp_path / "Pulumi.staging.yaml").write_text(text, encoding="utf-8")
    return tmp_path


@pytest.fixture(autouse=True)
def preflight(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The preflight passes (its own tests: test_preflight.py); the stacks it ran for."""
    ran: list[str] = []

    def passed(stack: str, root: Path) -> ExitCode:
        ran.append(stack)
        return ExitCode.NOT_ALL_CHECKED

    monkeypatch.setattr(deploy, "run_preflight", passed)
    return ran


@pytest.fixture
def cloud(fake: Path) -> Cloud:
    return Cloud(fake / "timeline.json")


def hosting(cloud: Cloud, status: int = 200) -> deploy.CustomDomainReader:
    api = HostingApi(cloud, status)

    def read(config: StackConfig) -> hosting_api.CustomDomainState:
        return hosting_api.read_custom_domain(config.project_id, config.site_id, config.api_host, http=api)

    return read


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
    fake: Path, cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = FakeSecretManager(NAMES, present=["STRIPE_API_KEY"])
    monkeypatch.setenv("RESEND_API_KEY", "re_test_value")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)
    deploy.run("staging", runner=manager, root=fake, custom_domain=hosting(cloud))
    # Only the missing secret, from the environment; the one with a version gets no new version.
    assert manager.added == ["RESEND_API_KEY"]
    assert any(c.endswith("phase=functions") for c in calls(fake))


def test_missing_secrets_are_read_from_the_real_check_report() -> None:
    # The driver parses `secrets_cli check`; this keeps the two in step.
    import io
    from types import SimpleNamespace

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


def ups(fake: Path) -> list[str]:
    return [c.split()[-1].removeprefix("phase=") for c in calls(fake) if c.startswith("up")]


def deploy_once(fake: Path, cloud: Cloud, **kwargs: Any) -> ExitCode:
    return deploy.run("staging", runner=runner_with_secrets(True), root=fake, **kwargs)


class StoredOutputGate(deploy.Deployer):
    """The gate as it was: the certificate state from the stack output `apiCertificateState`, optionally
    after a `pulumi refresh` (what would make that output current)."""

    refresh = False

    def certificate_gate(self, config: StackConfig) -> ExitCode | None:
        if self.refresh:
            self.pulumi("refresh")
        return None if self.outputs().get("apiCertificateState") == ACTIVE else ExitCode.WAITING


def run_driver(driver: type[deploy.Deployer], fake: Path, cloud: Cloud) -> ExitCode:
    config = parse_staging(fake)
    deployer = driver("staging", False, runner_with_secrets(True), fake, lambda _: None, hosting(cloud))
    return deployer.deploy(config)


def test_every_gate_and_the_source_it_is_read_from() -> None:
    # A gate reads what changes when the outside does; a stack output changes only on refresh or update.
    assert [(phase.name, phase.gate_source) for phase in PHASES] == [
        ("foundation", "the stack file Pulumi.<stack>.yaml (components/stack_config.py)"),
        (
            "functions",
            "Secret Manager API projects.secrets.versions.list, read on every run (tools/ops/secrets_cli.py)",
        ),
        (
            "complete",
            "Firebase Hosting API projects.sites.customDomains.get, cert.state, read on every run "
            "(tools/ops/hosting_api.py)",
        ),
    ]
    assert not any("output" in phase.gate_source for phase in PHASES)


@pytest.mark.parametrize("pending", [0, 1, 3])
def test_the_live_gate_advances_after_exactly_k_plus_one_reads(
    fake: Path, cloud: Cloud, pending: int
) -> None:
    cloud.start(pending)
    results = [deploy_once(fake, cloud, custom_domain=hosting(cloud)) for _ in range(pending + 1)]
    assert results == [ExitCode.WAITING] * pending + [ExitCode.OK]
    assert cloud.reads == pending + 1
    assert ups(fake)[:2] == ["foundation", "functions"]
    assert ups(fake)[-1] == "complete" and ups(fake).count("complete") == 1


def test_the_stored_output_gate_never_advances_on_the_same_timeline(fake: Path, cloud: Cloud) -> None:
    # The old driver against a CLI that behaves like the real one: `up` never re-reads the custom domain.
    cloud.start(pending=2)
    results = [run_driver(StoredOutputGate, fake, cloud) for _ in range(6)]
    assert results == [ExitCode.WAITING] * 6
    assert cloud.reads == 0 and "complete" not in ups(fake)


def test_a_refresh_updates_the_resource_and_the_output_follows_on_the_next_up(
    fake: Path, cloud: Cloud
) -> None:
    # `pulumi refresh` re-reads resources but not stack outputs (pulumi/pulumi#2710, #9990): the output
    # catches up on the next `up`, so the stored-output gate lags one run behind the cloud.
    cloud.start(pending=2)

    class Refreshing(StoredOutputGate):
        refresh = True

    results = [run_driver(Refreshing, fake, cloud) for _ in range(4)]
    assert results == [ExitCode.WAITING] * 3 + [ExitCode.OK]
    assert cloud.reads == 4 and ups(fake)[-1] == "complete"


def test_a_full_first_deploy_runs_to_complete_then_updates_everything(fake: Path, cloud: Cloud) -> None:
    cloud.start(pending=0)
    assert deploy_once(fake, cloud, custom_domain=hosting(cloud)) == ExitCode.OK
    assert ups(fake) == ["foundation", "functions", "complete"]
    (fake / "calls.log").unlink()
    # Finished: a re-run is one update of everything, without a gate.
    assert deploy_once(fake, cloud, custom_domain=hosting(cloud)) == ExitCode.OK
    assert ups(fake) == ["complete"] and cloud.reads == 1


@pytest.mark.parametrize("failing", ["foundation", "functions"])
def test_no_up_runs_after_a_failed_phase(
    fake: Path, cloud: Cloud, monkeypatch: pytest.MonkeyPatch, failing: str
) -> None:
    cloud.start(pending=0)
    monkeypatch.setenv("FAKE_FAIL_PHASE", failing)
    monkeypatch.setenv("FAKE_FAIL_ALWAYS", "1")
    waits: list[float] = []
    status = deploy_once(fake, cloud, custom_domain=hosting(cloud), sleep=waits.append)
    assert status == ExitCode.FAILED
    assert ups(fake)[-1] == failing and "complete" not in ups(fake)
    assert cloud.reads == 0


def test_a_preflight_problem_stops_before_any_pulumi_call(fake: Path, cloud: Cloud) -> None:
    def refused(stack: str, root: Path) -> ExitCode:
        return ExitCode.FAILED

    assert deploy_once(fake, cloud, custom_domain=hosting(cloud), preflight=refused) == ExitCode.FAILED
    assert deploy.run("staging", preview=True, root=fake, preflight=refused) == ExitCode.FAILED
    assert calls(fake) == [] and cloud.reads == 0


def test_an_unreadable_certificate_stops_with_what_to_grant(
    fake: Path, cloud: Cloud, capsys: pytest.CaptureFixture[str]
) -> None:
    cloud.start(pending=0)
    assert deploy_once(fake, cloud, custom_domain=hosting(cloud, status=403)) == ExitCode.ENVIRONMENT
    assert "complete" not in ups(fake)
    assert "cannot check the certificate" in capsys.readouterr().err
    assert hosting_api.READ_PERMISSION.split()[0] == "roles/firebasehosting.viewer"


def test_a_custom_domain_not_created_yet_waits(fake: Path, cloud: Cloud) -> None:
    state = hosting(cloud, status=404)
    config = parse_staging(fake)
    assert state(config) == hosting_api.CustomDomainState(exists=False)


def parse_staging(root: Path) -> StackConfig:
    from components.stack_config import parse_stack_config
    from tools.project_files import read_stack

    return parse_stack_config(read_stack("staging", root).config, "staging")


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
    (fake / "state.json").write_text(json.dumps({"outputs": {"deployPhase": "foundation"}}))
    deploy.run("staging", preview=True, runner=runner, root=fake)
    assert calls(fake)[-1] == "preview --diff --stack staging phase=functions"
    assert not any(c.startswith("up") for c in calls(fake))


def test_functions_phase_is_retried_after_a_wait_on_a_fresh_project(
    fake: Path, cloud: Cloud, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake fails the first functions `up` the way a not yet propagated Eventarc agent does.
    monkeypatch.setenv("FAKE_FAIL_PHASE", "functions")
    waits: list[float] = []
    status = deploy_once(fake, cloud, custom_domain=hosting(cloud), sleep=waits.append)
    assert status == ExitCode.WAITING  # reached the certificate gate
    assert [c.split()[-1] for c in calls(fake) if c.startswith("up")] == [
        "phase=foundation",
        "phase=functions",
        "phase=functions",
    ]
    assert waits == [deploy.PROPAGATION_WAIT_SECONDS]
