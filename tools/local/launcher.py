"""The local stack as a child of another program (e2e tests, benchmarks), started as `make up` starts it.

Own process group, free ports, own state directory: it never touches a developer's `make up` (docs/tools.md).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.project_files import ROOT, read_catalog

from .layout import Layout, build_layout, busy_ports, free_port_base
from .lock import UP_ARGS, read

UP_COMMAND = (sys.executable, "-m", *UP_ARGS)
START_TIMEOUT_SECONDS = 240.0
STOP_TIMEOUT_SECONDS = 60.0
# After the supervisor exits, the groups it started get this long to finish exiting.
CHILDREN_EXIT_SECONDS = 5.0


class StackNotReady(RuntimeError):
    """`up` exited, or did not write endpoints.json in time; the message holds its output."""


@dataclass(frozen=True)
class Shutdown:
    """What `stop` found. exit_code is None when `up` ignored SIGTERM and its group had to be killed."""

    exit_code: int | None
    alive_groups: list[int]
    busy_ports: dict[str, int]


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    layout: Layout
    output_path: Path

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def endpoints(self) -> dict[str, Any]:
        return json.loads(self.layout.endpoints_path.read_text())

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS, poll: float = 0.25) -> dict[str, Any]:
        """Block until endpoints.json exists (it is written atomically, so it is complete) and return it.
        If `up` exits or the timeout passes first, stop it and raise StackNotReady."""
        deadline = time.monotonic() + timeout
        while not self.layout.endpoints_path.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise StackNotReady(f"the local stack did not become ready:\n{self.output()}")
            time.sleep(poll)
        return self.endpoints()

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> Shutdown:
        """SIGTERM the supervisor (it stops every group it started), wait for it, then check that those
        groups are gone and the stack's ports are closed."""
        # Read before stopping: the supervisor removes its lock, and with it the list of its children.
        children = [int(pgid) for pgid in (read(self.layout.lock_path) or {}).get("children", {})]
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            exit_code: int | None = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            exit_code = None
            # Last resort: the supervisor's own group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        deadline = time.monotonic() + CHILDREN_EXIT_SECONDS
        while time.monotonic() < deadline and any(_group_alive(pgid) for pgid in children):
            time.sleep(0.2)
        alive = [pgid for pgid in children if _group_alive(pgid)]
        return Shutdown(exit_code, alive, busy_ports(self.layout))


def launch(state_dir: Path) -> StackProcess:
    """Start `up` on a free block of ports with `state_dir` as its state directory; its output goes to
    `state_dir/up.out`. Returns at once: call `wait_ready`."""
    catalog = read_catalog()
    base = free_port_base(len(catalog.functions))
    layout = build_layout(catalog, port_base=base, state_dir=state_dir)
    state_dir.mkdir(parents=True, exist_ok=True)
    output_path = state_dir / "up.out"
    # The caller's emulator hosts and LOCAL_* settings would point this stack at another stack's ports.
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith("_EMULATOR_HOST") and not name.startswith("LOCAL_")
    }
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            [*UP_COMMAND, "--port-base", str(base), "--state-dir", str(state_dir)],
            cwd=ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
    return StackProcess(process, layout, output_path)


@contextlib.contextmanager
def running_stack(
    state_dir: Path, *, timeout: float = START_TIMEOUT_SECONDS, poll: float = 0.25
) -> Iterator[StackProcess]:
    """A ready stack for the `with` block, stopped when the block ends (however it ends)."""
    stack = launch(state_dir)
    try:
        stack.wait_ready(timeout, poll)
        yield stack
    finally:
        stack.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
