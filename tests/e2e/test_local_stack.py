"""The local stack end to end: the founder's journey (as `make demo` runs it), the wiring derived from
the catalog, a second `up` refused, and a clean shutdown."""

from __future__ import annotations

import json
import subprocess
import sys

import requests

from components.catalog import load_catalog
from tools.local.client import LocalStack, stripe_event, stripe_signature
from tools.local.demo import Journey

from .conftest import REPO, RunningStack, start_stack, stop_stack


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
    catalog = load_catalog()
    assert set(local_stack.endpoints["functions"]) == {spec.name for spec in catalog.functions}
    for spec in catalog.by_trigger("http") + catalog.by_trigger("schedule") + catalog.by_trigger("pubsub"):
        response = requests.get(local_stack.url(spec.name), timeout=5)
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


def test_second_up_on_the_same_state_dir_is_refused(local_stack_process: RunningStack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.local",
            "up",
            "--port-base",
            str(local_stack_process.layout.firestore_port),
            "--state-dir",
            str(local_stack_process.layout.state_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "already running" in result.stderr


def test_status_reports_a_healthy_stack(local_stack_process: RunningStack) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.local",
            "status",
            "--state-dir",
            str(local_stack_process.layout.state_dir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    assert "✗" not in result.stdout


def test_sigterm_stops_everything_and_leaves_nothing_listening(tmp_path) -> None:  # type: ignore[no-untyped-def]
    stack = start_stack(tmp_path / "state")
    endpoints = json.loads(stack.layout.endpoints_path.read_text())
    assert endpoints["stripe_webhook_secret"].startswith("whsec_")
    code, alive, busy = stop_stack(stack)
    assert code == 0, stack.output()[-3000:]
    assert alive == [] and busy == {}
    assert not stack.layout.endpoints_path.exists() and not stack.layout.lock_path.exists()
    assert "nothing left listening" in stack.output()
