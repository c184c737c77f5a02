"""The offline planner: JSON inventory per stack, readable errors, redaction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pulumi
import pytest
from pulumi.runtime import rpc

from components.function_env import WEB_API_KEY_SETTING
from tools.offline.plan.evaluate import CREDENTIAL_SHAPED, REDACTED, redact
from tools.offline.plan.mocks import default_options

ROOT = Path(__file__).resolve().parents[4]


def run_plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools", "plan", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


@pytest.mark.parametrize("stack", ["staging", "prod"])
def test_plan_writes_the_inventory(stack: str, tmp_path: Path) -> None:
    out = tmp_path / f"plan-{stack}.json"
    result = run_plan("--stack", stack, "--out", str(out))
    # Contract violations exit 2 but still write the inventory (test_contracts asserts none remain).
    assert result.returncode == 0 or result.stderr.endswith("provider contract violation(s)\n"), result.stderr
    plan = json.loads(out.read_text())
    assert all(set(entry) == {"urn", "type", "name", "parent", "inputs", "options"} for entry in plan)
    assert all(set(entry["options"]) == set(default_options()) for entry in plan)
    urns = {entry["urn"] for entry in plan}
    assert len(urns) == len(plan) and all(entry["parent"] in urns | {None} for entry in plan)
    assert all(set(entry["options"]["dependsOn"]) <= urns for entry in plan)
    assert plan == sorted(plan, key=lambda entry: (entry["type"], entry["name"]))
    types = {entry["type"] for entry in plan}
    for expected in (
        "gcp:cloudfunctionsv2/function:Function",
        "gcp:firestore/database:Database",
        "gcp:firebase/hostingCustomDomain:HostingCustomDomain",
        "cloudflare:index/dnsRecord:DnsRecord",
        "gcp:monitoring/alertPolicy:AlertPolicy",
    ):
        assert expected in types
    # The table names each resource with its settings.
    assert "functions-stripe-webhook" in result.stdout and "ingress=ALLOW_ALL" in result.stdout
    assert f"{stack}: " in result.stdout
    # Without a web API key the console cannot sign in: one warning says so.
    configured = WEB_API_KEY_SETTING in (ROOT / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")
    warned = [line for line in result.stderr.splitlines() if f"warning: {WEB_API_KEY_SETTING}" in line]
    assert len(warned) == (0 if configured else 1)


def test_bad_config_prints_one_readable_error(tmp_path: Path) -> None:
    good = (ROOT / "Pulumi.staging.yaml").read_text()
    broken = "\n".join(line for line in good.splitlines() if not line.startswith("  launchready:region:"))
    (tmp_path / "Pulumi.broken.yaml").write_text(
        broken.replace("dmarcPolicy: quarantine", "dmarcPolicy: maybe")
    )
    result = run_plan("--stack", "broken", "--root", str(tmp_path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("error: Pulumi.broken.yaml: invalid configuration:")
    assert "launchready:region is missing" in result.stderr
    assert "launchready:dmarcPolicy must be none, quarantine or reject" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "build").exists()


def test_unknown_stack_is_a_readable_error() -> None:
    result = run_plan("--stack", "qa")
    assert result.returncode == 2
    assert "Pulumi.qa.yaml not found" in result.stderr and "Traceback" not in result.stderr


def test_redaction_keeps_secrets_and_plaintext_credentials_apart() -> None:
    wrapped = {rpc._special_sig_key: rpc._special_secret_sig, "value": "sk_live_123"}
    inputs = {
        "secretData": wrapped,
        "nested": {"apiToken": "cf-token", "list": [wrapped, "plain"]},
        "environmentVariables": {
            "STRIPE_KEY": "sk_live_51HxAbCdEfGhIjKlMn",
            "HOOK": "whsec_0123456789abcdef",
            "PEM": "-----BEGIN RSA PRIVATE KEY-----\nMIIE...",
            "STRIPE_PRICE_ID": "price_1QExampleLivePrice000000",
        },
        "source": pulumi.FileAsset(str(ROOT / "build" / "functions-0123456789abcdef.zip")),
        "unknown": rpc.UNKNOWN,
        "oidcToken": {"serviceAccountEmail": "push@acme.iam.gserviceaccount.com"},
    }
    assert redact(inputs) == {
        "secretData": REDACTED,
        "nested": {"apiToken": CREDENTIAL_SHAPED, "list": [REDACTED, "plain"]},
        "environmentVariables": {
            "HOOK": CREDENTIAL_SHAPED,
            "PEM": CREDENTIAL_SHAPED,
            "STRIPE_KEY": CREDENTIAL_SHAPED,
            "STRIPE_PRICE_ID": "price_1QExampleLivePrice000000",
        },
        "source": {"fileAsset": "build/functions-0123456789abcdef.zip"},
        "unknown": "[unknown until apply]",
        "oidcToken": {"serviceAccountEmail": "push@acme.iam.gserviceaccount.com"},
    }
    assert REDACTED != CREDENTIAL_SHAPED
    text = json.dumps(redact(inputs))
    assert "sk_live_" not in text and "whsec_" not in text and "BEGIN RSA" not in text


def test_the_web_api_key_reaches_the_console_alone_unredacted(tmp_path: Path) -> None:
    from components.function_env import WEB_API_KEY_VARIABLE
    from tests.founders import hand_written
    from tools.offline.plan.evaluate import plan_stack
    from tools.project_files import engine_config, read_stack

    root = hand_written().write(tmp_path)
    for name in ("__main__.py", "Pulumi.yaml", "components", "functions_src", "firestore.rules"):
        (root / name).symlink_to(ROOT / name)
    (root / "firestore.indexes.json").symlink_to(ROOT / "firestore.indexes.json")
    key = engine_config(read_stack("staging", root))[0][WEB_API_KEY_SETTING]
    plan, _ = plan_stack("staging", root)
    holders = {
        entry["name"]: entry["inputs"]["serviceConfig"]["environmentVariables"][WEB_API_KEY_VARIABLE]
        for entry in plan
        if entry["type"] == "gcp:cloudfunctionsv2/function:Function"
        and WEB_API_KEY_VARIABLE in entry["inputs"]["serviceConfig"]["environmentVariables"]
    }
    assert holders == {"functions-ops-console": key}

