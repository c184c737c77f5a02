"""`make demo` checks the stack before its first step and, when a step times out, names the hop of the
chain that did not happen (tools/local/demo.py, tools/journey/hops.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tools.journey.hops import Hop, explain
from tools.local import demo


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_dead_stack_is_named_before_any_step_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    url = f"http://127.0.0.1:{port}"
    endpoints = {
        "project_id": "demo-launchready",
        "functions": {"support_worker": {"url": url + "/", "trigger": "pubsub"}},
        "emulators": {
            "firestore": f"127.0.0.1:{port}",
            "pubsub": f"127.0.0.1:{port}",
            "auth": f"127.0.0.1:{port}",
        },
        "sandbox": {"state": url + "/_sandbox/state", "requests": url + "/_sandbox/requests"},
        "push_relay": url,
        "logs_dir": str(tmp_path / "logs"),
    }
    path = tmp_path / "endpoints.json"
    path.write_text(json.dumps(endpoints))

    assert demo.run_demo(path) == 1

    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("✗ the stack is not healthy") and "function support_worker" in first
    assert "firestore trigger bridge" in out and "Pub/Sub wiring" in out
    assert "1. Sign-up" not in out


def fake_stack(calls: list[dict[str, Any]]) -> Any:
    """The one LocalStack call explain() makes, answered from `calls`."""
    return FakeStack(calls)


class FakeStack:
    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self.calls = calls

    def sandbox_requests(self, provider: str | None = None) -> list[dict[str, Any]]:
        return [call for call in self.calls if provider in (None, call["provider"])]


def test_the_first_missing_hop_is_named_with_the_push_relay_and_sandbox_evidence(tmp_path: Path) -> None:
    (tmp_path / "push-relay.log").write_text(
        "\n".join(
            json.dumps(line)
            for line in [
                {
                    "severity": "INFO",
                    "message": "push acknowledged: the worker answered 2xx",
                    "function": "crm_worker",
                },
                {
                    "severity": "WARNING",
                    "message": "push failed, the worker answered 500; attempt 2 of 5",
                    "function": "support_worker",
                },
            ]
        )
        + "\n"
    )
    stack = fake_stack(
        [
            {
                "provider": "zendesk",
                "method": "POST",
                "path": "/api/v2/tickets.json",
                "status": 503,
                "fault": "status",
            }
        ]
    )
    hops = [
        Hop("support_request published it to support", lambda: True, "support_request"),
        Hop("support_worker created the Zendesk ticket", lambda: False, "support_worker", "zendesk"),
        Hop("email_worker sent the acknowledgement", lambda: False, "email_worker", "resend"),
    ]

    lines = explain(hops, stack, tmp_path)

    assert lines[0] == "the hop that did not happen: support_worker created the Zendesk ticket"
    assert lines[1] == f"its log: {tmp_path / 'support_worker.log'}"
    assert "push failed, the worker answered 500; attempt 2 of 5" in lines[2]
    assert (
        lines[3]
        == "sandbox, last zendesk call: POST /api/v2/tickets.json answered 503, injected fault status"
    )


def test_a_worker_that_never_got_a_delivery_is_said_so(tmp_path: Path) -> None:
    hops = [Hop("billing_worker applied it to users/{uid}.billing", lambda: False, "billing_worker")]

    lines = explain(hops, fake_stack([]), tmp_path)

    assert "push relay: no delivery to billing_worker yet" in lines[2]


def test_an_unreadable_record_counts_as_a_missing_hop(tmp_path: Path) -> None:
    def broken() -> bool:
        raise ConnectionError("firestore down")

    lines = explain(
        [Hop("stripe_webhook published the event", broken, "stripe_webhook")], fake_stack([]), tmp_path
    )

    assert lines[0].endswith("stripe_webhook published the event")
