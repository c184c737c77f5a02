"""`make status` parts that need no whole stack: the Pub/Sub wiring and dead-letter backlog (on the
Pub/Sub emulator, in a project of their own), what a killed stack left behind, the trigger bridge's
process, and the supervisor's crash line."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.cloud import pubsub_v1

from tools.exit_codes import ExitCode
from tools.local import pubsub_wiring, status
from tools.local.emulators import exit_reason
from tools.local.layout import build_layout, free_port_base
from tools.local.lock import cmdline
from tools.project_files import read_catalog

CATALOG = read_catalog()
RELAY = "http://127.0.0.1:1"


@pytest.fixture(scope="module")
def wired(pubsub_emulator: str) -> dict[str, Any]:
    """Endpoints of a stack whose Pub/Sub is wired from the catalog in its own project."""
    project = "demo-status-check"
    pubsub_wiring.wire(CATALOG, project, RELAY)
    return {"project_id": project, "emulators": {"pubsub": pubsub_emulator}, "push_relay": RELAY}


def test_complete_wiring_is_healthy(wired: dict[str, Any]) -> None:
    check = status.wiring_check(wired, CATALOG)

    assert check.ok, check.detail
    assert f"{len(CATALOG.by_trigger('pubsub'))} push subscriptions" in check.detail


def test_a_missing_push_subscription_is_named(pubsub_emulator: str) -> None:
    project = "demo-status-broken"
    pubsub_wiring.wire(CATALOG, project, RELAY)
    spec = CATALOG.by_trigger("pubsub")[0]
    name = pubsub_wiring.push_subscription(spec.trigger.topic or "", spec.name)
    subscriber = pubsub_v1.SubscriberClient()
    subscriber.delete_subscription(subscription=subscriber.subscription_path(project, name))
    endpoints = {"project_id": project, "emulators": {"pubsub": pubsub_emulator}, "push_relay": RELAY}

    check = status.wiring_check(endpoints, CATALOG)

    assert not check.ok
    assert f"push subscription {name} missing" in check.detail


def test_a_dead_letter_is_counted_and_left_in_place(wired: dict[str, Any]) -> None:
    publisher = pubsub_v1.PublisherClient()
    topic = pubsub_wiring.dead_letter_topic("support")
    publisher.publish(publisher.topic_path(wired["project_id"], topic), b"{}",
                      event_id="support:SR-TEST01").result()

    assert status.dead_letter_backlog(wired, CATALOG) == {"support": 1}
    # Looked at, not consumed: the replay command still finds it.
    assert status.dead_letter_backlog(wired, CATALOG) == {"support": 1}


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "state"
    directory.mkdir()
    return directory


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_not_running_with_nothing_left(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = build_layout(CATALOG, state_dir=state_dir, port_base=free_block())

    assert status.run_status(layout, CATALOG) == ExitCode.ENVIRONMENT
    assert "start it with `make up`" in capsys.readouterr().out


def free_block() -> int:
    return free_port_base(len(CATALOG.functions))


def test_ports_left_by_a_killed_supervisor_are_reported(
        state_dir: Path, listener: int, capsys: pytest.CaptureFixture[str]) -> None:
    layout = build_layout(CATALOG, state_dir=state_dir, port_base=free_block())
    # A supervisor killed outright leaves its lock and endpoints.json; one of its servers still listens.
    layout.lock_path.write_text(json.dumps({"pid": dead_pid(), "children": {}}))
    endpoints = {
        "functions": {"stripe_webhook": {"url": f"http://127.0.0.1:{listener}/v1/stripe/webhook"}},
        "emulators": {}, "sandbox": {"state": "http://127.0.0.1:1/_sandbox/state"},
        "push_relay": "http://127.0.0.1:1",
    }
    layout.endpoints_path.write_text(json.dumps(endpoints))

    assert status.run_status(layout, CATALOG) == ExitCode.LEFTOVERS
    out = capsys.readouterr().out
    assert f"port {listener} (function stripe_webhook) still listens" in out
    assert out.startswith("not running, but")


def test_a_live_process_group_of_a_killed_supervisor_is_reported(
        state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    layout = build_layout(CATALOG, state_dir=state_dir, port_base=free_block())
    child = subprocess.Popen(["sleep", "60"], start_new_session=True, env={"PATH": "/usr/bin:/bin"})
    try:
        command = cmdline(child.pid)
        while "sleep" not in command:  # until the child has exec'd
            time.sleep(0.01)
            command = cmdline(child.pid)
        layout.lock_path.write_text(json.dumps({"pid": dead_pid(), "children": {str(child.pid): command}}))

        code = status.run_status(layout, CATALOG)
        out = capsys.readouterr().out
        assert code == ExitCode.LEFTOVERS, (out, command, cmdline(child.pid), child.poll())
        assert f"process group {child.pid} still runs" in out
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()


def test_a_trigger_bridge_that_exited_is_unhealthy() -> None:
    lock = {"children": {str(dead_pid()): "python -m tools.local.trigger_bridge --target x"}}

    check = status.bridge_check(lock, CATALOG)

    assert check is not None and not check.ok
    assert "has exited" in check.detail


def test_a_trigger_bridge_missing_from_the_lock_is_unhealthy() -> None:
    check = status.bridge_check({"children": {}}, CATALOG)

    assert check is not None and not check.ok


@pytest.mark.parametrize(("code", "tail", "expected"), [
    (0, "", "exited with code 0 without an error of its own"),
    (0, "", "its log is empty"),
    (-9, "[firestore] Dev App Server is now running.", "was killed by SIGKILL"),
    (1, "Traceback ...", "exited with code 1"),
])
def test_the_crash_line_says_why(code: int, tail: str, expected: str) -> None:
    assert expected in exit_reason(code, tail)


def test_a_crash_with_a_log_does_not_claim_an_empty_log() -> None:
    assert "log is empty" not in exit_reason(0, "[firestore] Killed")


def test_an_unrelated_listener_is_not_blamed_on_a_stopped_stack(
        state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Nothing of a stack in this state directory (no lock, no endpoints.json): a program listening on one
    # of the layout's ports is another program's, not a leftover.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        layout = build_layout(CATALOG, state_dir=state_dir, port_base=free_block(), sandbox_port=port)

        assert status.run_status(layout, CATALOG) == ExitCode.ENVIRONMENT
    out = capsys.readouterr().out
    assert "stopped uncleanly" not in out
    assert f"other programs listen on port(s) {port} (provider sandbox)" in out
