"""The local stack end to end: the founder's journey (as `make demo` runs it), the wiring derived from
the catalog, a second `up` refused, and a clean shutdown."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from google.cloud import pubsub_v1

from tools.exit_codes import ExitCode
from tools.journey.deployed_stack import DeployedStack, DeployedTarget
from tools.journey.local_stack import EMULATOR_API_KEY, LocalStack
from tools.journey.provider_reads import ProviderCredentials
from tools.journey.steps import Journey
from tools.journey.stripe_events import stripe_event, stripe_signature
from tools.local import launcher
from tools.local.environment import FAKE_SECRETS
from tools.local.launcher import StackProcess
from tools.ops import smoke
from tools.project_files import read_catalog

from .conftest import REPO, assert_stopped_cleanly, start_stack

CATALOG_FUNCTIONS = [spec.name for spec in read_catalog().functions]


def test_founders_journey(local_stack: LocalStack) -> None:
    journey = Journey(local_stack)
    assert "CRM lead" in journey.sign_up()
    journey.checkout()
    journey.payment()
    assert journey.billing()["status"] == "active"
    assert local_stack.custom_claims(journey.signed_up)["pro"] is True
    journey.failed_renewal()
    assert journey.billing()["status"] == "past_due"
    journey.support()
    assert len(local_stack.tickets(journey.reference)) == 1
    journey.replay()


def test_every_catalog_function_is_served(local_stack: LocalStack) -> None:
    catalog = read_catalog()
    assert set(local_stack.endpoints["functions"]) == {spec.name for spec in catalog.functions}
    for spec in catalog.by_trigger("http") + catalog.by_trigger("schedule") + catalog.by_trigger("pubsub"):
        url = local_stack.url(spec.name)
        if spec.trigger.is_prefix:  # the ops console's pages need a sign-in; its health answer does not
            url = url.removesuffix(str(spec.trigger.base_path)) + str(spec.trigger.probe_path)
        response = requests.get(url, timeout=5)
        assert response.status_code == 200 and response.json()["function"] == spec.name
    expected = {
        spec.name: f"{spec.trigger.topic}-push-{spec.resource_name}" for spec in catalog.by_trigger("pubsub")
    }
    assert local_stack.endpoints["push_subscriptions"] == expected


def test_bad_signature_is_rejected_and_writes_nothing(local_stack: LocalStack) -> None:
    event = stripe_event("checkout.session.completed", {"id": "cs_test_x", "object": "checkout.session"})
    payload = json.dumps(event).encode()
    response = requests.post(
        local_stack.url("stripe_webhook"),
        data=payload,
        timeout=10,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_signature(payload, "whsec_wrong"),
        },
    )
    assert response.status_code == 400
    assert local_stack.get_document(f"events/stripe:{event['id']}") is None


def test_profile_write_outside_the_rules_is_denied(local_stack: LocalStack) -> None:
    user = local_stack.sign_up()
    other = local_stack.sign_up()
    response = local_stack.create_profile(user)
    assert response.status_code == 200
    # Another user's token cannot create (or read) this user's profile: the rules are loaded.
    assert local_stack.get_document(f"users/{user.uid}", as_user=user) is not None
    denied = local_stack.http.get(
        f"http://{local_stack.endpoints['emulators']['firestore']}/v1/projects/{local_stack.project_id}"
        f"/databases/(default)/documents/users/{user.uid}",
        headers={"Authorization": f"Bearer {other.id_token}"},
        timeout=10,
    )
    assert denied.status_code == 403


def _tools(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools", *args], cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_second_up_on_the_same_state_dir_is_refused(local_stack_process: StackProcess) -> None:
    layout = local_stack_process.layout
    result = _tools(
        "up", "--port-base", str(layout.firestore_port), "--state-dir", str(layout.state_dir)
    )
    assert result.returncode == ExitCode.USAGE
    assert "already running" in result.stderr


def test_status_reports_a_healthy_stack(local_stack_process: StackProcess) -> None:
    result = _tools("status", "--state-dir", str(local_stack_process.layout.state_dir))
    assert result.returncode == 0, result.stdout
    assert "✗" not in result.stdout
    # Every part `make up` lists, not only the ones with a port.
    for part in (
        "firestore trigger bridge",
        "Pub/Sub wiring",
        "dead letters",
        "Auth emulator",
        "push relay",
        "provider sandbox",
        *(f"function {name}" for name in CATALOG_FUNCTIONS),
    ):
        assert f"✓ {part}" in result.stdout, (part, result.stdout)


def test_status_reports_a_dead_letter_backlog_with_its_own_exit_code(
    local_stack_process: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoints = local_stack_process.endpoints()
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", endpoints["emulators"]["pubsub"])
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    project = endpoints["project_id"]
    subscription = subscriber.subscription_path(project, "support-dlq-sub")
    publisher.publish(
        publisher.topic_path(project, "support-dlq"), b"{}", event_id="support:SR-E2E001"
    ).result()
    try:
        result = _tools("status", "--state-dir", str(local_stack_process.layout.state_dir))
        assert result.returncode == ExitCode.DEAD_LETTERS, result.stdout
        assert "1 message(s) in support-dlq-sub" in result.stdout
        assert "make replay-dlq TOPIC=support" in result.stdout
    finally:  # leave the shared stack as it was
        received = subscriber.pull(subscription=subscription, max_messages=10, return_immediately=True)
        if received.received_messages:
            subscriber.acknowledge(
                subscription=subscription, ack_ids=[item.ack_id for item in received.received_messages]
            )


def test_sigterm_stops_everything_and_leaves_nothing_listening(tmp_path: Path) -> None:
    stack = start_stack(tmp_path / "state")
    assert stack.endpoints()["stripe_webhook_secret"].startswith("whsec_")
    assert_stopped_cleanly(stack)
    assert not stack.layout.endpoints_path.exists() and not stack.layout.lock_path.exists()
    assert "nothing left listening" in stack.output()


def test_a_stack_that_cannot_start_is_stopped_and_reported_with_its_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        # The block of ports starts at one another program holds, so `up` must refuse to start.
        monkeypatch.setattr(launcher, "free_port_base", lambda functions: port)
        stack = launcher.launch(tmp_path / "state")
        with pytest.raises(launcher.StackNotReady, match=rf"already in use: {port} \(Firestore emulator\)"):
            stack.wait_ready(timeout=120)
    assert stack.process.returncode == 1
    assert not stack.layout.lock_path.exists() and not stack.layout.endpoints_path.exists()


def test_smoke_passes_against_the_running_stack(local_stack_process: StackProcess) -> None:
    """`make smoke` without STACK: the demo's journey, each step within its target (tools/ops/smoke.py)."""
    lines: list[str] = []
    status = smoke.run(endpoints=local_stack_process.layout.endpoints_path, out=lines.append)
    output = "\n".join(lines)
    assert status == 0, output
    assert output.count("✓") == 6 and "(target 60 s)" in output and "(target 120 s)" in output


def deployed_target_on(endpoints: dict, *, deployer: bool) -> DeployedTarget:
    """The deployed path's target with its Google endpoints on the stack's emulators (set by the caller)
    and its provider APIs on the sandbox, which answers only requests matching the published documents."""
    sandbox = endpoints["sandbox_url"]
    providers = ProviderCredentials(
        secrets={name: value for name, value in FAKE_SECRETS.items() if name in smoke.READ_SECRETS},
        zendesk_base_url=sandbox, hubspot_base_url=sandbox, resend_base_url=sandbox, stripe_base_url=sandbox,
    )
    return DeployedTarget(
        project_id=endpoints["project_id"],
        urls={name: function["url"] for name, function in endpoints["functions"].items()},
        web_api_key=EMULATOR_API_KEY,
        webhook_secret=endpoints["stripe_webhook_secret"],
        stripe_api_key=FAKE_SECRETS["STRIPE_API_KEY"],
        providers=providers,
        deployer=deployer,
    )


def run_smoke(target: DeployedTarget) -> tuple[int, str]:
    stack = DeployedStack(target)
    lines: list[str] = []
    try:
        status = smoke.smoke_deployed(stack, lines.append)
    finally:
        stack.close()
    return status, "\n".join(lines)


def test_smoke_on_the_deployed_code_path_against_the_running_stack(
    local_stack_process: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`make smoke STACK=` runs `DeployedStack` (Admin SDK user + custom token, signed test-mode payment,
    the Firestore client as the deployer, the providers' records through their APIs); here its Google
    endpoints are the stack's emulators and its provider APIs the sandbox. A full pass, as on a deployed
    test-mode stack."""
    endpoints = local_stack_process.endpoints()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", endpoints["emulators"]["firestore"])
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", endpoints["emulators"]["auth"])
    local = LocalStack(endpoints)
    reads_before = len(local.sandbox_requests())

    status, output = run_smoke(deployed_target_on(endpoints, deployer=True))

    assert status == 0, output
    assert output.count("✓") == 6 and "(target 60 s)" in output and "(target 120 s)" in output, output
    assert "not checked" not in output and "All steps passed" in output, output
    for seen in ("is a CRM lead", "CRM lifecycle customer", "one recovery email", "Zendesk ticket #",
                 "one acknowledgement email", "user's CRM contact and emails unchanged"):
        assert seen in output, output
    # The outcomes were read through the providers' APIs, each request valid by the published documents.
    reads = [call for call in local.sandbox_requests()[reads_before:]
             if call["path"].endswith("/search") or call["method"] == "GET"]
    assert {call["provider"] for call in reads} == {"hubspot", "zendesk", "resend", "stripe"}
    assert all(call["status"] == 200 for call in reads), reads
    users = local.list_documents("users")
    smoke_users = [doc for doc in users if doc["email"].startswith("delivered+smoke-")]
    assert len(smoke_users) == 1 and smoke_users[0]["billing"]["status"] == "past_due"
    reference = re.search(r"reference (SR-[0-9A-Z]{6})", output)
    assert reference is not None, output
    request = local.get_document(f"support_requests/{reference.group(1)}")
    assert request is not None and request["uid"] == smoke_users[0]["_name"]


def test_smoke_without_deployer_credentials_checks_what_the_app_and_the_providers_show(
    local_stack_process: StackProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Application Default Credentials: the user signs up with a password through the web API key,
    its claims come from its own account record, and only what needs the deployer is not checked."""
    endpoints = local_stack_process.endpoints()
    monkeypatch.setenv("FIREBASE_AUTH_EMULATOR_HOST", endpoints["emulators"]["auth"])
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", endpoints["emulators"]["firestore"])  # REST, as the user

    status, output = run_smoke(deployed_target_on(endpoints, deployer=False))

    assert status == ExitCode.NOT_ALL_CHECKED, output
    assert output.count("✓") == 6 and "not a full pass" in output, output
    unchecked = sorted(re.findall(r"○ not checked: ([^:]+):", output))
    assert unchecked == ["the acknowledgement email", "the recovery email",
                         "the user's CRM contact and emails after the replay"], output
    for seen in ("is a CRM lead", "CRM lifecycle customer", "pro claim set", "Zendesk ticket #"):
        assert seen in output, output
