"""`local_stack`: the whole local environment, started once per session the way `make up` starts it.

tools/local/launcher.py runs `python -m tools up` as a subprocess in its own process group, on a
free block of ports and a temporary state directory (so it runs beside a developer's own `make up`),
and waits for endpoints.json. The fixture yields a LocalStack (endpoints dict + helpers: signed Stripe
webhooks, Auth users, Firestore REST, sandbox state; see tools/journey/local_stack.py). Teardown sends SIGTERM
and fails the session if any process or port is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.journey.local_stack import LocalStack
from tools.local.launcher import StackNotReady, StackProcess, launch

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("LOCAL_STACK_START_TIMEOUT", "240"))


def start_stack(state_dir: Path) -> StackProcess:
    """A ready stack, or a failed test with the stack's output."""
    stack = launch(state_dir)
    try:
        stack.wait_ready(START_TIMEOUT)
    except StackNotReady as exc:
        pytest.fail(str(exc))
    return stack


def assert_stopped_cleanly(stack: StackProcess) -> None:
    shutdown = stack.stop()
    assert shutdown.exit_code == 0, (
        f"`up` exited with {shutdown.exit_code} on SIGTERM:\n{stack.output()[-3000:]}"
    )
    assert not shutdown.alive_groups, f"process groups left running after shutdown: {shutdown.alive_groups}"
    assert not shutdown.busy_ports, f"ports still listening after shutdown: {shutdown.busy_ports}"


@pytest.fixture(scope="session")
def local_stack_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    stack = start_stack(tmp_path_factory.mktemp("local-stack"))
    yield stack
    assert_stopped_cleanly(stack)


@pytest.fixture(scope="session")
def local_stack(local_stack_process: StackProcess) -> LocalStack:
    return LocalStack(local_stack_process.endpoints())
