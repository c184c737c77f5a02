"""`local_stack`: the whole local environment, started once per session the way `make up` starts it.

It runs `python -m tools.local up` as a subprocess in its own process group, on a free block of ports
and a temporary state directory (so it runs beside a developer's own `make up`), waits for
endpoints.json and yields a LocalStack (endpoints dict + helpers: signed Stripe webhooks, Auth users,
Firestore REST, sandbox state; see tools/local/client.py). Teardown sends SIGTERM and fails the
session if any process or port is left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.catalog import load_catalog
from tools.local.client import LocalStack
from tools.local.layout import Layout, build_layout, free_port_base, port_in_use

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = float(os.environ.get("LOCAL_STACK_START_TIMEOUT", "240"))
STOP_TIMEOUT = 60.0


@dataclass
class RunningStack:
    process: subprocess.Popen[bytes]
    layout: Layout
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def stop_stack(stack: RunningStack) -> tuple[int | None, list[int], dict[str, int]]:
    """SIGTERM the supervisor; returns (its exit code, child process groups still alive, busy ports)."""
    children = [int(pgid) for pgid in (_read_lock(stack.layout) or {}).get("children", {})]
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGTERM)
    try:
        code: int | None = stack.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        code = None
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in children):
        time.sleep(0.2)
    alive = [pgid for pgid in children if _group_alive(pgid)]
    busy = {name: port for name, port in stack.layout.named_ports().items() if port_in_use(port)}
    return code, alive, busy


def _read_lock(layout: Layout) -> dict | None:
    try:
        return json.loads(layout.lock_path.read_text())
    except (OSError, ValueError):
        return None


def start_stack(state_dir: Path) -> RunningStack:
    catalog = load_catalog()
    base = free_port_base(len(catalog.functions))
    layout = build_layout(catalog, port_base=base, state_dir=state_dir)
    output_path = state_dir / "up.out"
    state_dir.mkdir(parents=True, exist_ok=True)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_EMULATOR_HOST") and not key.startswith("LOCAL_")
    }
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tools.local",
                "up",
                "--port-base",
                str(base),
                "--state-dir",
                str(state_dir),
            ],
            cwd=REPO,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    stack = RunningStack(process, layout, output_path)
    deadline = time.monotonic() + START_TIMEOUT
    while not layout.endpoints_path.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_stack(stack)
            # Last resort: the supervisor's own group (it stops its children itself).
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"the local stack did not become ready:\n{stack.output()}")
        time.sleep(0.25)
    return stack


@pytest.fixture(scope="session")
def local_stack_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    stack = start_stack(tmp_path_factory.mktemp("local-stack"))
    yield stack
    code, alive, busy = stop_stack(stack)
    assert code == 0, f"`up` exited with {code} on SIGTERM:\n{stack.output()[-3000:]}"
    assert not alive, f"process groups left running after shutdown: {alive}"
    assert not busy, f"ports still listening after shutdown: {busy}"


@pytest.fixture(scope="session")
def local_stack(local_stack_process: RunningStack) -> LocalStack:
    return LocalStack(json.loads(local_stack_process.layout.endpoints_path.read_text()))
