"""Standing conditions per provider: a stated latency on every answer (what a benchmark sets) and a
requests-per-second limit past which the provider answers 429; none by default. Checked without timing:
the latency is the wait the sandbox asks the server to hold each answer, the rate is counted on an
injected clock."""

from __future__ import annotations

from email.message import Message

import pytest
import requests

from tools.sandbox.app import Sandbox
from tools.sandbox.faults import Conditions, FaultError
from tools.sandbox.messages import SandboxRequest, parse_body
from tools.sandbox.providers.stripe import REAL_WORLD_LATENCY_MS as STRIPE_LATENCY_MS


def list_customers(sandbox: Sandbox) -> tuple[int, float]:
    message = Message()
    message["Authorization"] = "Bearer sk_test_conditions"
    request = SandboxRequest("GET", "/v1/customers", {}, message, b"", "http://127.0.0.1:9")
    parse_body(request)
    outcome = sandbox.dispatch(request)
    return outcome.response.status, outcome.wait_seconds


def test_no_latency_and_no_limit_by_default(held: Sandbox) -> None:
    assert [list_customers(held) for _ in range(50)] == [(200, 0.0)] * 50


def test_a_stated_latency_holds_every_answer_of_that_provider(held: Sandbox) -> None:
    held.faults.set_conditions({"provider": "stripe", "latency_ms": STRIPE_LATENCY_MS})
    assert list_customers(held) == (200, STRIPE_LATENCY_MS / 1000)
    held.faults.set_conditions({"provider": "hubspot", "latency_ms": 80})
    assert list_customers(held) == (200, STRIPE_LATENCY_MS / 1000)  # each provider its own
    held.reset()
    assert list_customers(held) == (200, 0.0)


def test_the_rate_is_counted_in_a_sliding_second() -> None:
    window = Conditions("stripe", requests_per_second=25)
    assert all(window.admit(10.0 + index / 100) for index in range(25))  # 25 within 0.25 s
    assert not window.admit(10.5)  # the 26th in the same second
    assert window.admit(11.0)  # the first of them has left the window
    assert not window.admit(11.005)


def test_past_the_limit_the_provider_answers_429(held: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(held, "monotonic", lambda: 50.0)  # one instant: one window
    held.faults.set_conditions({"provider": "stripe", "requests_per_second": 3})
    assert [list_customers(held)[0] for _ in range(4)] == [200, 200, 200, 429]
    [throttled] = [entry for entry in held.requests.entries("stripe") if entry["status"] == 429]
    assert throttled["fault"] == "rate_limit" and throttled["response"]["error"]["code"] == "rate_limit"


@pytest.mark.parametrize(
    "spec",
    [
        {"provider": "nobody", "latency_ms": 1},
        {"provider": "stripe", "latency_ms": -1},
        {"provider": "stripe", "latency_ms": "fast"},
        {"provider": "stripe", "requests_per_second": 0},
        {"provider": "stripe", "requests_per_second": 2.5},
    ],
)
def test_invalid_conditions_are_refused(held: Sandbox, spec: dict) -> None:
    with pytest.raises(FaultError):
        held.faults.set_conditions(spec)


def test_conditions_are_set_listed_and_cleared_over_http(url: str) -> None:
    endpoint = f"{url}/_sandbox/conditions"
    set_answer = requests.post(
        endpoint,
        json={"provider": "stripe", "latency_ms": STRIPE_LATENCY_MS, "requests_per_second": 25},
        timeout=5,
    )
    assert set_answer.status_code == 201
    assert requests.get(endpoint, timeout=5).json() == {
        "conditions": [{"provider": "stripe", "latency_ms": STRIPE_LATENCY_MS, "requests_per_second": 25}]
    }
    assert (
        requests.post(endpoint, json={"provider": "stripe", "latency_ms": -5}, timeout=5).status_code == 400
    )
    assert requests.delete(endpoint, timeout=5).json() == {"conditions": []}
