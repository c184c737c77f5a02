"""Cloning a stack: key classes, the derived file, no secret copied, and the offline proof failing loudly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from components.stack_config import (
    STACK_FILE_KEYS_NEVER_COPIED,
    Clone,
    StackConfig,
    clone_class,
    read_stack_file,
    stack_file_schema,
)
from tools.offline.clone import derive as clone_module
from tools.offline.clone.check import CheckError, prove
from tools.offline.clone.derive import CloneError, CloneRequest, derive

ROOT = Path(__file__).resolve().parents[4]
# The program and its inputs, shared read-only; stack files are copied so each test owns its set.
SHARED = (
    "__main__.py",
    "Pulumi.yaml",
    "components",
    "functions_src",
    "firestore.rules",
    "firestore.indexes.json",
)


def committed_stacks() -> list[str]:
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository root with the committed stack files; build/ (the plan cache) is the real one."""
    for name in SHARED:
        (tmp_path / name).symlink_to(ROOT / name)
    (ROOT / "build").mkdir(exist_ok=True)
    (tmp_path / "build").symlink_to(ROOT / "build")
    for stack in committed_stacks():
        shutil.copy(ROOT / f"Pulumi.{stack}.yaml", tmp_path / f"Pulumi.{stack}.yaml")
    return tmp_path


def run_clone(repo: Path, *args: str) -> tuple[int, str]:
    """`make clone-env` in `repo` with the command line's options (each of them takes a value here)."""
    pairs = list(zip(args[::2], args[1::2], strict=True))
    option = dict(pairs)
    request = clone_module.CloneRequest(
        source=option["--from"],
        target=option["--to"],
        project=option.get("--project"),
        host_prefix=option.get("--host-prefix"),
        environment=option.get("--environment"),
        billing_account=option.get("--billing-account"),
    )
    lines: list[str] = []
    overrides = [value for key, value in pairs if key == "--set"]
    status = clone_module.run(request, overrides, root=repo, out=lines.append)
    return status, "\n".join(lines)


# --- The classification ------------------------------------------------------------------------------


def test_every_config_key_has_a_clone_class() -> None:
    unclassified = [
        str(f.alias) for f in StackConfig.model_fields.values() if clone_class(str(f.alias)) is None
    ]
    assert unclassified == []
    schema = stack_file_schema()["properties"]
    assert all(schema[key]["x-clone"] == Clone.NEVER.value for key in STACK_FILE_KEYS_NEVER_COPIED)


@pytest.mark.parametrize("stack", committed_stacks())
def test_every_key_of_every_stack_file_has_a_class(stack: str) -> None:
    stack_file = read_stack_file(ROOT / f"Pulumi.{stack}.yaml")
    assert [key for key in stack_file.config if clone_class(key) is None] == []


def test_a_key_without_a_class_stops_the_clone(repo: Path) -> None:
    path = repo / "Pulumi.prod.yaml"
    path.write_text(path.read_text().replace("config:\n", "config:\n  stripe:accountCountry: FR\n", 1))
    with pytest.raises(CloneError, match=r"no clone class for stripe:accountCountry"):
        derive(CloneRequest(source="prod", target="qa"), repo)


@pytest.mark.parametrize("source", ["prod", "staging"])
def test_every_rewritten_key_gets_a_new_value(source: str) -> None:
    """A REWRITE key without a rule in tools/offline/clone/derive.py would be copied: caught here."""
    source_values = read_stack_file(ROOT / f"Pulumi.{source}.yaml").config
    derived = derive(CloneRequest(source=source, target="qa"), ROOT)
    same = [
        key
        for key, value in source_values.items()
        if clone_class(key) is Clone.REWRITE and derived.values.get(key) == value
    ]
    assert same == []
    assert derived.values["launchready:apiHost"] == "api-qa.example.com"  # one label below the zone


# --- The clone and its proof ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "environment", "args"),
    [
        ("prod", "staging", ()),
        ("staging", "staging", ()),
        # A review stack adopts a pooled project.
        ("pr", "preview", ("--project", "launch-ready-preview-1")),
    ],
)
def test_a_clone_passes_the_offline_proof(
    repo: Path, source: str, environment: str, args: tuple[str, ...]
) -> None:
    status, output = run_clone(repo, "--from", source, "--to", "qa", *args)
    assert status == 0, output
    new = read_stack_file(repo / "Pulumi.qa.yaml")
    assert new.config["launchready:environment"] == environment
    assert new.secret_keys == ()
    text = (repo / "Pulumi.qa.yaml").read_text()
    assert text.splitlines()[1].startswith(f"# Cloned from Pulumi.{source}.yaml")
    assert "graph:" in output and "none shared with" in output
    assert "declared environment-policy differences:" in output
    assert "pulumi stack init qa --secrets-provider" in output and "make secrets STACK=qa" in output
    if source == "pr":
        assert new.config["launchready:projectId"] == "launch-ready-preview-1"
        assert new.config["launchready:createProject"] is False
    if source == "prod":
        # Production protects its data; the staging clone does not: a declared difference.
        assert "options.protect true -> false" in output
        assert "launchready:manageZone: true -> false" in output


def test_reusing_prods_project_fails_naming_the_collision(repo: Path) -> None:
    status, _output = run_clone(repo, "--from", "prod", "--to", "qa", "--project", "launch-ready-prod")
    assert status == 2 and not (repo / "Pulumi.qa.yaml").exists()
    derived = derive(CloneRequest(source="prod", target="qa", project="launch-ready-prod"), repo)
    with pytest.raises(CheckError, match=r"project id launch-ready-prod .* is also in Pulumi\.prod\.yaml"):
        prove("qa", derived.values, "prod", repo)


def test_reusing_prods_api_host_fails_naming_the_collision(repo: Path) -> None:
    request = CloneRequest(source="prod", target="qa", overrides={"launchready:apiHost": "api.example.com"})
    derived = derive(request, repo)
    with pytest.raises(CheckError) as raised:
        prove("qa", derived.values, "prod", repo)
    message = str(raised.value)
    assert "API host api.example.com (from launchready:apiHost) is also in Pulumi.prod.yaml" in message
    assert "webhook URL https://api.example.com/" in message


def test_an_undeclared_difference_fails_the_proof(repo: Path) -> None:
    derived = derive(CloneRequest(source="staging", target="qa"), repo)
    moved = {**derived.values, "launchready:firestoreLocation": "eur3"}
    with pytest.raises(CheckError, match=r"project-firestore: inputs\.locationId europe-west1 -> eur3"):
        prove("qa", moved, "staging", repo)


def test_no_secret_reaches_the_new_file(repo: Path) -> None:
    path = repo / "Pulumi.prod.yaml"
    document = path.read_text()
    planted = (
        "secretsprovider: gcpkms://projects/launch-ready-prod/locations/global/keyRings/pulumi/cryptoKeys/prod\n"
        "encryptedkey: CiQAPLANTEDENCRYPTEDKEY0000\n"
        "encryptionsalt: v1:PLANTEDSALT:0000\n"
        + document.replace(
            "config:\n",
            "config:\n"
            "  cloudflare:apiToken:\n    secure: v1:PLANTEDCLOUDFLARE0000\n"
            "  stripe:apiKey:\n    secure: v1:PLANTEDSTRIPE0000\n",
            1,
        )
    )
    path.write_text(planted)
    status, output = run_clone(repo, "--from", "prod", "--to", "qa")
    assert status == 0, output
    text = (repo / "Pulumi.qa.yaml").read_text()
    for secret in (
        "PLANTED",
        "secure:",
        "secretsprovider",
        "encryptedkey",
        "encryptionsalt",
        "price_1QExampleLive",
    ):
        assert secret not in text
    assert yaml.safe_load(text)["config"]["launchready:stripePriceId"] == clone_module.PRICE_PLACEHOLDER
    assert "pulumi config set --secret stripe:apiKey <value for qa> --stack qa" in output
    assert "pulumi config set --secret cloudflare:apiToken <value for qa> --stack qa" in output
    # The clone's secrets are encrypted with a key of its own project, never prod's.
    assert "--secrets-provider gcpkms://projects/launch-ready-qa/locations/global" in output


def _plant(path: Path, header: str, secure: str = "") -> None:
    text = path.read_text()
    if secure:
        text = text.replace("config:\n", f"config:\n  cloudflare:apiToken:\n    secure: {secure}\n", 1)
    path.write_text(header + text)


@pytest.mark.parametrize(
    ("header", "secure", "named"),
    [
        ("encryptedkey: CiQAPLANTEDKEY0000\n", "", "encryptedkey is Pulumi.prod.yaml's"),
        ("encryptionsalt: v1:PLANTEDSALT:0000\n", "", "encryptionsalt is Pulumi.prod.yaml's"),
        ("", "v1:PLANTEDCF0000", "cloudflare:apiToken holds a secure value copied from Pulumi.prod.yaml"),
        (
            "secretsprovider: gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k\n",
            "",
            "secretsprovider is Pulumi.prod.yaml's",
        ),
    ],
)
def test_check_env_refuses_another_stacks_encryption_state(
    repo: Path, capsys: pytest.CaptureFixture[str], header: str, secure: str, named: str
) -> None:
    from tools.offline.clone.check import run as check_env

    status, output = run_clone(repo, "--from", "prod", "--to", "qa")
    assert status == 0, output
    # The founder copies prod's encryption header or a secure value into the new file by hand.
    _plant(repo / "Pulumi.prod.yaml", header, secure)
    _plant(repo / "Pulumi.qa.yaml", header, secure)
    assert check_env("qa", "prod", repo) == 1
    err = capsys.readouterr().err
    assert named in err and "pulumi stack init qa" in err


def test_a_shared_kms_key_with_a_data_key_of_its_own_is_accepted(repo: Path) -> None:
    from tools.offline.clone.check import copied_encryption

    provider = "secretsprovider: gcpkms://projects/p/locations/global/keyRings/r/cryptoKeys/k\n"
    _plant(repo / "Pulumi.prod.yaml", provider + "encryptedkey: CiQAPRODKEY\n", "v1:PROD")
    _plant(repo / "Pulumi.staging.yaml", provider + "encryptedkey: CiQASTAGINGKEY\n", "v1:STAGING")
    assert copied_encryption("staging", repo) == []


def test_an_existing_stack_file_is_kept_without_force(repo: Path) -> None:
    (repo / "Pulumi.qa.yaml").write_text("config: {}\n")
    status, _output = run_clone(repo, "--from", "staging", "--to", "qa")
    assert status == 2 and (repo / "Pulumi.qa.yaml").read_text() == "config: {}\n"


@pytest.mark.parametrize(
    "args",
    [
        ("--from", "nosuch", "--to", "qa"),
        ("--from", "prod", "--to", "q a"),
        ("--from", "prod", "--to", "prod"),
        ("--from", "prod", "--to", "qa", "--host-prefix", "Not_A_Label"),
        ("--from", "prod", "--to", "qa", "--project", "X"),
        ("--from", "prod", "--to", "qa", "--set", "launchready:nosuch=1"),
        ("--from", "prod", "--to", "qa", "--billing-account", "01A2B3-C4D5E6-F7A8B9"),
    ],
)
def test_bad_input_writes_nothing(
    repo: Path, args: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in repo.iterdir())
    status, _output = run_clone(repo, *args)
    assert status == 2
    assert sorted(p.name for p in repo.iterdir()) == before
    assert "error:" in capsys.readouterr().err


def test_the_review_template_is_a_destroyable_preview_stack() -> None:
    from tools.offline.clone.check import PlanCache

    template = read_stack_file(ROOT / "Pulumi.pr.yaml").config
    assert template["launchready:environment"] == "preview"
    assert template["launchready:createProject"] is False  # adopts a pooled project
    plan = PlanCache(ROOT).stack_plan("pr")
    assert [entry["name"] for entry in plan.entries if entry["options"]["protect"]] == []
