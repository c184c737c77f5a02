"""tools.ops.secrets_cli against an in-memory Secret Manager answering with the API's own types and errors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from google.api_core import exceptions as api_exceptions
from google.cloud.secretmanager import (
    AddSecretVersionRequest,
    GetSecretRequest,
    ListSecretVersionsRequest,
    Secret,
    SecretVersion,
    UpdateSecretRequest,
)

from tools.exit_codes import ExitCode
from tools.ops import secrets_cli
from tools.project_files import CATALOG_FILE, ROOT

PROJECT = "launch-ready-staging"
PROD_PROJECT = "launch-ready-prod"
DECLARED = ["HUBSPOT_TOKEN", "RESEND_API_KEY", "STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "ZENDESK_API_TOKEN"]
DECLARED += ["ZENDESK_EMAIL"]
# Values that must never reach the output.
STRIPE_KEY = "sk_test_51NzSecretValueThatMustNotLeak"
TYPED_SECRET = "whsec_typedAtTheHiddenPrompt"


class FakeSecretManager:
    """Secrets of some projects in memory. Like the service: NotFound for an unknown secret, DataLoss for
    a payload whose CRC32C does not match, versions numbered from 1 and listed newest first, annotations
    replaced only under an `annotations` update mask."""

    def __init__(self, secrets: list[str], projects: tuple[str, ...] = (PROJECT,)) -> None:
        self.versions: dict[str, list[SecretVersion]] = {
            f"projects/{project}/secrets/{s}": [] for project in projects for s in secrets
        }
        self.payloads: dict[str, bytes] = {}
        self.annotations: dict[str, dict[str, str]] = {name: {} for name in self.versions}

    def get_secret(self, request: dict[str, Any]) -> Secret:
        name = GetSecretRequest(request).name
        if name not in self.versions:
            raise api_exceptions.NotFound(f"Secret [{name}] not found.")
        return Secret(name=name, annotations=self.annotations[name])

    def update_secret(self, request: dict[str, Any]) -> Secret:
        parsed = UpdateSecretRequest(request)
        if parsed.secret.name not in self.versions:
            raise api_exceptions.NotFound(f"Secret [{parsed.secret.name}] not found.")
        assert list(parsed.update_mask.paths) == ["annotations"]
        self.annotations[parsed.secret.name] = dict(parsed.secret.annotations)
        return parsed.secret

    def add_secret_version(self, request: dict[str, Any]) -> SecretVersion:
        # Parsing into the client's own request type rejects misspelt or mistyped fields.
        parsed = AddSecretVersionRequest(request)
        parent = parsed.parent
        if parent not in self.versions:
            raise api_exceptions.NotFound(f"Secret [{parent}] not found or has no versions.")
        data = parsed.payload.data
        if parsed.payload.data_crc32c != int(google_crc32c.value(data)):
            raise api_exceptions.DataLoss("Checksum mismatch")
        version = SecretVersion(
            name=f"{parent}/versions/{len(self.versions[parent]) + 1}", state=SecretVersion.State.ENABLED
        )
        self.versions[parent].insert(0, version)
        self.payloads[version.name] = data
        return version

    def list_secret_versions(self, request: dict[str, Any]) -> list[SecretVersion]:
        parent = ListSecretVersionsRequest(request).parent
        if parent not in self.versions:
            raise api_exceptions.NotFound(f"Secret [{parent}] not found.")
        return list(self.versions[parent])

    def latest_value(self, name: str, project: str = PROJECT) -> bytes:
        return self.payloads[self.versions[f"projects/{project}/secrets/{name}"][0].name]

    def disable_all(self, name: str) -> None:
        for version in self.versions[f"projects/{PROJECT}/secrets/{name}"]:
            version.state = SecretVersion.State.DISABLED


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root holding the real catalog and a stack file."""
    catalog = (ROOT / CATALOG_FILE).read_text(encoding="utf-8")
    (tmp_path / CATALOG_FILE).parent.mkdir(parents=True)
    (tmp_path / CATALOG_FILE).write_text(catalog, encoding="utf-8")
    (tmp_path / "Pulumi.staging.yaml").write_text(
        f"config:\n  gcp:region: europe-west1\n  launchready:projectId: {PROJECT}\n"
        "  launchready:environment: staging\n",
        encoding="utf-8",
    )
    return tmp_path


def add_prod_stack(repo: Path) -> None:
    (repo / "Pulumi.prod.yaml").write_text(
        f"config:\n  launchready:projectId: {PROD_PROJECT}\n  launchready:environment: production\n",
        encoding="utf-8",
    )


def run(
    repo: Path,
    argv: list[str],
    client: FakeSecretManager,
    environ: dict[str, str] | None = None,
    answers: dict[str, str] | None = None,
) -> tuple[int, str, list[str]]:
    """Run the command; return (exit code, stdout, prompts shown)."""
    out = io.StringIO()
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        name = text.split(" ", 1)[0]
        return (answers or {}).get(name, "")

    command, options = argv[0], dict(zip(argv[1::2], argv[2::2], strict=True))
    code = secrets_cli.run(
        command,
        options["--stack"],
        only=options.get("--only"),
        client_factory=lambda: client,
        environ=environ or {},
        prompt=prompt,
        out=out,
        root=repo,
    )
    return code, out.getvalue(), prompts


def test_declared_secrets_are_the_union_of_the_catalog_functions_secrets() -> None:
    raw = json.loads((ROOT / CATALOG_FILE).read_text(encoding="utf-8"))
    expected = sorted({s for function in raw["functions"] for s in function["secrets"]})
    assert secrets_cli.declared_secrets() == expected == DECLARED


def test_project_id_comes_from_the_stack_file(repo: Path) -> None:
    assert secrets_cli.stack_project_id("staging", repo) == PROJECT


def test_missing_stack_file_or_key_is_explained(repo: Path) -> None:
    with pytest.raises(secrets_cli.SecretsCliError, match="Pulumi.prod.yaml not found"):
        secrets_cli.stack_project_id("prod", repo)
    (repo / "Pulumi.prod.yaml").write_text("config:\n  gcp:region: europe-west1\n", encoding="utf-8")
    with pytest.raises(secrets_cli.SecretsCliError, match="pulumi config set launchready:projectId"):
        secrets_cli.stack_project_id("prod", repo)


def test_add_uses_the_environment_value_without_prompting(repo: Path) -> None:
    client = FakeSecretManager(DECLARED)
    code, out, prompts = run(
        repo,
        ["add", "--stack", "staging", "--only", "STRIPE_API_KEY"],
        client,
        {"STRIPE_API_KEY": STRIPE_KEY},
    )
    assert code == 0
    assert prompts == []
    assert client.latest_value("STRIPE_API_KEY") == STRIPE_KEY.encode()
    assert "STRIPE_API_KEY: added version 1 (value from environment)" in out
    assert STRIPE_KEY not in out


def test_add_prompts_with_hidden_input_when_the_variable_is_unset(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        asked.append(prompt)
        return TYPED_SECRET + "\n"

    # The command's default prompt must be getpass (no echo), not input().
    monkeypatch.setattr("getpass.getpass", fake_getpass)
    monkeypatch.delenv("STRIPE_WEBHOOK_SECRET", raising=False)
    client = FakeSecretManager(DECLARED)
    code = secrets_cli.run(
        "add", "staging", only="STRIPE_WEBHOOK_SECRET", client_factory=lambda: client, root=repo
    )
    captured = capsys.readouterr()
    assert code == 0
    assert asked == ["STRIPE_WEBHOOK_SECRET (input hidden; empty to skip): "]
    assert client.latest_value("STRIPE_WEBHOOK_SECRET") == TYPED_SECRET.encode()
    assert "STRIPE_WEBHOOK_SECRET: added version 1 (value from prompt)" in captured.out
    assert TYPED_SECRET not in captured.out + captured.err


def test_add_sets_every_declared_secret_and_never_prints_a_value(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    client = FakeSecretManager(DECLARED)
    environ = {name: f"env-{name.lower()}-value" for name in DECLARED[:3]}
    answers = {name: f"typed-{name.lower()}-value" for name in DECLARED[3:]}
    code, out, prompts = run(repo, ["add", "--stack", "staging"], client, environ, answers)
    assert code == 0
    assert [p.split(" ", 1)[0] for p in prompts] == DECLARED[3:]
    for name in DECLARED:
        assert f"{name}: added version 1" in out
    captured = capsys.readouterr()
    for value in [*environ.values(), *answers.values()]:
        assert value not in out
        assert value not in captured.out + captured.err
    assert client.latest_value("ZENDESK_EMAIL") == b"typed-zendesk_email-value"


def test_empty_answer_skips_the_secret_with_a_message(repo: Path) -> None:
    client = FakeSecretManager(DECLARED)
    code, out, _ = run(repo, ["add", "--stack", "staging", "--only", "HUBSPOT_TOKEN"], client, answers={})
    assert code == 0
    assert "HUBSPOT_TOKEN: skipped (empty value; unchanged)" in out
    assert client.versions[f"projects/{PROJECT}/secrets/HUBSPOT_TOKEN"] == []


def test_adding_to_a_secret_pulumi_has_not_created_says_to_run_pulumi_up(repo: Path) -> None:
    client = FakeSecretManager([])  # the project exists, the secrets do not yet
    code, out, _ = run(
        repo,
        ["add", "--stack", "staging", "--only", "STRIPE_API_KEY"],
        client,
        {"STRIPE_API_KEY": STRIPE_KEY},
    )
    assert code == 1
    assert (
        "STRIPE_API_KEY: the secret does not exist in project launch-ready-staging: run `pulumi up` first"
        in out
    )
    assert STRIPE_KEY not in out


def test_only_rejects_an_undeclared_name(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, _ = run(repo, ["add", "--stack", "staging", "--only", "AWS_KEY"], FakeSecretManager(DECLARED))
    assert code == 2
    assert "AWS_KEY is not a declared secret" in capsys.readouterr().err


def test_check_passes_when_every_secret_has_an_enabled_version(repo: Path) -> None:
    client = FakeSecretManager(DECLARED)
    run(repo, ["add", "--stack", "staging"], client, {name: "value" for name in DECLARED})
    code, out, _ = run(repo, ["check", "--stack", "staging"], client)
    assert code == 0
    for name in DECLARED:
        assert f"{name}" in out
    assert out.count("ok (enabled version 1)") == len(DECLARED)


def test_check_exits_non_zero_and_lists_the_missing_ones(repo: Path) -> None:
    client = FakeSecretManager(DECLARED)
    run(
        repo,
        ["add", "--stack", "staging"],
        client,
        {name: "value" for name in DECLARED if name != "HUBSPOT_TOKEN"},
    )
    client.disable_all("RESEND_API_KEY")
    code, out, _ = run(repo, ["check", "--stack", "staging"], client)
    assert code == 1
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "MISSING" in lines["HUBSPOT_TOKEN"]
    assert "MISSING" in lines["RESEND_API_KEY"]
    assert "ok (enabled version 1)" in lines["STRIPE_API_KEY"]
    assert "2 secret(s) without an enabled version: HUBSPOT_TOKEN, RESEND_API_KEY" in out


def test_check_reports_a_secret_that_does_not_exist(repo: Path) -> None:
    client = FakeSecretManager([name for name in DECLARED if name != "ZENDESK_EMAIL"])
    code, out, _ = run(repo, ["check", "--stack", "staging", "--only", "ZENDESK_EMAIL"], client)
    assert code == 1
    assert "ZENDESK_EMAIL  MISSING (secret does not exist: run `pulumi up` first)" in out


@pytest.fixture
def no_google_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key file, no gcloud ADC file, no metadata server: google.auth.default() must fail."""
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    # google.auth reads its metadata-server switches at import time, so patch the probe itself.
    monkeypatch.setattr("google.auth.compute_engine._metadata.is_on_gce", lambda request: False)


@pytest.mark.usefixtures("no_google_credentials")
@pytest.mark.usefixtures("no_google_credentials")
def test_missing_credentials_end_the_command_with_the_hint(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = secrets_cli.run("check", "staging", root=repo)
    assert code == ExitCode.ENVIRONMENT
    err = capsys.readouterr().err
    assert err.startswith("error: no Google Cloud credentials found:")
    assert "gcloud auth application-default login" in err


# ---- keys in the right environment ------------------------------------------------------------------------

LIVE_KEY = "sk_live_51NzLiveValueThatMustNotLeak"
SAME_KEY_ENV = {"LAUNCHREADY_FINGERPRINT_KEY": "fingerprint-key-shared-by-the-operators"}


@pytest.mark.parametrize("value", [LIVE_KEY, "rk_live_51NzRestrictedLiveValue"])
def test_a_live_mode_key_is_refused_outside_production(repo: Path, value: str) -> None:
    client = FakeSecretManager(DECLARED)
    code, out, _ = run(
        repo, ["add", "--stack", "staging", "--only", "STRIPE_API_KEY"], client, {"STRIPE_API_KEY": value}
    )
    assert code == 1
    assert (
        "STRIPE_API_KEY: refused: a Stripe live-mode key (sk_live_/rk_live_) belongs in production only"
        in out
    )
    assert client.versions[f"projects/{PROJECT}/secrets/STRIPE_API_KEY"] == []
    assert value not in out


def test_a_test_mode_key_is_refused_in_production(repo: Path) -> None:
    add_prod_stack(repo)
    client = FakeSecretManager(DECLARED, projects=(PROD_PROJECT,))
    code, out, _ = run(
        repo, ["add", "--stack", "prod", "--only", "STRIPE_API_KEY"], client, {"STRIPE_API_KEY": STRIPE_KEY}
    )
    assert code == 1
    assert "refused: a Stripe test-mode key (sk_test_/rk_test_) in production" in out
    assert client.versions[f"projects/{PROD_PROJECT}/secrets/STRIPE_API_KEY"] == []


def test_add_records_the_mode_and_a_keyed_fingerprint_never_the_value(repo: Path) -> None:
    add_prod_stack(repo)
    client = FakeSecretManager(DECLARED, projects=(PROD_PROJECT,))
    environ = {"STRIPE_API_KEY": LIVE_KEY, **SAME_KEY_ENV}
    code, _, _ = run(repo, ["add", "--stack", "prod", "--only", "STRIPE_API_KEY"], client, environ)
    assert code == 0
    annotations = client.annotations[f"projects/{PROD_PROJECT}/secrets/STRIPE_API_KEY"]
    assert annotations["launchready-stripe-mode"] == "live"
    key = SAME_KEY_ENV["LAUNCHREADY_FINGERPRINT_KEY"].encode()
    assert annotations["launchready-fingerprint"] == f"v1 {secrets_cli.fingerprint(key, LIVE_KEY)}"
    assert LIVE_KEY not in json.dumps(annotations)
    # A keyed hash: the same value under another key gives another fingerprint.
    assert secrets_cli.fingerprint(b"other", LIVE_KEY) != secrets_cli.fingerprint(key, LIVE_KEY)


def test_without_a_shared_key_a_private_key_file_is_made_once(repo: Path) -> None:
    first = secrets_cli.fingerprint_key({}, repo)
    path = repo / ".local" / "secrets-fingerprint.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert secrets_cli.fingerprint_key({}, repo) == first and len(first) == 64


def _add_everywhere(
    repo: Path, client: FakeSecretManager, staging: dict[str, str], prod: dict[str, str]
) -> None:
    add_prod_stack(repo)
    assert run(repo, ["add", "--stack", "staging"], client, {**staging, **SAME_KEY_ENV})[0] == 0
    assert run(repo, ["add", "--stack", "prod"], client, {**prod, **SAME_KEY_ENV})[0] == 0


def test_check_finds_the_same_credential_in_two_stacks(repo: Path) -> None:
    client = FakeSecretManager(DECLARED, projects=(PROJECT, PROD_PROJECT))
    staging = {name: f"staging-{name}" for name in DECLARED}
    prod = {**{name: f"prod-{name}" for name in DECLARED}, "HUBSPOT_TOKEN": staging["HUBSPOT_TOKEN"]}
    _add_everywhere(repo, client, staging, prod)
    code, out, _ = run(repo, ["check", "--stack", "staging"], client)
    assert code == 1
    assert "SAME CREDENTIAL: HUBSPOT_TOKEN here and HUBSPOT_TOKEN in stack prod (launch-ready-prod)" in out
    assert out.count("SAME CREDENTIAL") == 1
    assert staging["HUBSPOT_TOKEN"] not in out


def test_check_passes_when_every_stack_has_its_own_credentials(repo: Path) -> None:
    client = FakeSecretManager(DECLARED, projects=(PROJECT, PROD_PROJECT))
    _add_everywhere(repo, client, {n: f"staging-{n}" for n in DECLARED}, {n: f"prod-{n}" for n in DECLARED})
    code, out, _ = run(repo, ["check", "--stack", "prod"], client)
    assert code == 0, out
    assert "in the right environment only" in out


def test_check_refuses_a_live_key_recorded_in_staging(repo: Path) -> None:
    """A version added by hand is caught through the mode recorded on the secret."""
    client = FakeSecretManager(DECLARED)
    run(repo, ["add", "--stack", "staging"], client, {name: "value" for name in DECLARED})
    client.annotations[f"projects/{PROJECT}/secrets/STRIPE_API_KEY"]["launchready-stripe-mode"] = "live"
    code, out, _ = run(repo, ["check", "--stack", "staging"], client)
    assert code == 1
    assert "STRIPE_API_KEY" in out and "WRONG KEY (a Stripe live-mode key" in out


def test_check_says_when_the_enabled_version_was_not_fingerprinted(repo: Path) -> None:
    client = FakeSecretManager(DECLARED)
    run(repo, ["add", "--stack", "staging"], client, {name: "value" for name in DECLARED})
    secrets_cli.add_secret_version(client, PROJECT, "RESEND_API_KEY", "added-by-hand")  # no annotation
    code, out, _ = run(repo, ["check", "--stack", "staging", "--only", "RESEND_API_KEY"], client)
    assert code == 0
    assert "ok (enabled version 2); not fingerprinted" in out


def test_a_stack_without_an_environment_kind_is_explained(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (repo / "Pulumi.staging.yaml").write_text(
        f"config:\n  launchready:projectId: {PROJECT}\n", encoding="utf-8"
    )
    code, _, _ = run(repo, ["check", "--stack", "staging"], FakeSecretManager(DECLARED))
    assert code == 2
    assert "pulumi config set launchready:environment" in capsys.readouterr().err
