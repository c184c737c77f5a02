"""`python -m tools bench fresh-start`: a fresh clone with empty package caches, timed to a ready `make up`.

Every run starts from a new clone and new cache directories, so no run reuses another's work (docs/tools.md).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.exit_codes import ExitCode
from tools.local.layout import free_port_base
from tools.project_files import ROOT, read_catalog

READY_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 60.0
# The first line `python -m tools up` prints; everything before it is the bootstrap.
UP_FIRST_LINE = re.compile(r"^\[\s*[\d.]+s\] … starting ")


@dataclass(frozen=True)
class Run:
    bootstrap_seconds: float
    total_seconds: float
    longest_silence_seconds: float
    silence_after: str  # the output line the longest silence followed ("" for the start)

    @property
    def start_seconds(self) -> float:
        return self.total_seconds - self.bootstrap_seconds


def fresh_start(root: Path, source: Path = ROOT) -> tuple[Run, str]:
    """One fresh-clone `make up` in `root` (an empty directory) until ready; returns the timings and
    the command's output. Raises RuntimeError (with the output) when it exits or times out first."""
    clone = root / "clone"
    subprocess.run(["git", "clone", "--quiet", str(source), str(clone)], check=True)
    state_dir = clone / ".local"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.endswith("_EMULATOR_HOST")
        and not name.startswith("LOCAL_")
        and name not in {"VIRTUAL_ENV", "PYTHONPATH"}
    }
    env.update(
        PIP_CACHE_DIR=str(root / "pip-cache"),
        npm_config_cache=str(root / "npm-cache"),
        UV_CACHE_DIR=str(root / "uv-cache"),
        LOCAL_PORT_BASE=str(free_port_base(len(read_catalog().functions))),
        LOCAL_STATE_DIR=str(state_dir),
    )
    output_path = root / "make-up.out"
    started = time.monotonic()
    lines: list[tuple[float, str]] = []
    with open(output_path, "wb") as output:
        process = subprocess.Popen(
            ["make", "--no-print-directory", "up"],
            cwd=clone,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        assert process.stdout is not None
        os.set_blocking(process.stdout.fileno(), False)
        pending = b""
        try:
            while not (state_dir / "endpoints.json").exists():
                chunk = process.stdout.read() or b""
                output.write(chunk)
                pending += chunk
                *complete, pending = pending.split(b"\n")
                now = time.monotonic() - started
                lines.extend((now, line.decode(errors="replace")) for line in complete)
                if process.poll() is not None or now > READY_TIMEOUT_SECONDS:
                    raise RuntimeError(f"`make up` did not become ready:\n{output_path.read_text()}")
                time.sleep(0.05)
            total = time.monotonic() - started
        finally:
            _stop(process)
            leftovers = _stop_leftovers(root)
    if leftovers:
        print(f"warning: the stack left {leftovers} process group(s) running after SIGTERM; stopped them",
              file=sys.stderr, flush=True)
    bootstrap = next((at for at, line in lines if UP_FIRST_LINE.match(line)), total)
    marks = [(0.0, ""), *lines, (total, "")]
    gaps = [(later[0] - earlier[0], earlier[1]) for earlier, later in zip(marks, marks[1:], strict=False)]
    silence, after = max(gaps)
    return Run(bootstrap, total, silence, after.strip()[:80]), "\n".join(line for _, line in lines)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to make's group, then wait until the whole group is gone: make exits at once, but the
    supervisor in its group still stops the servers it started (each in a session of its own), and the
    clone must not be removed under it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=STOP_TIMEOUT_SECONDS)  # reaped, so only live members keep the group
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _group_alive(process.pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _stop_leftovers(root: Path) -> int:
    """Stop every process group with a process started from `root` (this run's clone) that is still
    running; returns how many there were. A stack that stops cleanly leaves none."""
    groups = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if str(root) in command:
                    groups.add(os.getpgid(int(entry.name)))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pgid in groups:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, sig)
        if groups and sig == signal.SIGTERM:
            time.sleep(5)
    return len(groups)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def nearest_rank(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def run(runs: int = 3, *, verbose: bool = False) -> ExitCode:
    """Time `runs` fresh clones to a ready `make up`; prints each and the median and p95."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    timed: list[Run] = []
    for number in range(1, runs + 1):
        root = Path(tempfile.mkdtemp(prefix="launchready-fresh-"))
        try:
            one, output = fresh_start(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        timed.append(one)
        if verbose:
            print(output)
        print(
            f"run {number}: ready in {one.total_seconds:5.1f} s (bootstrap {one.bootstrap_seconds:5.1f} s, "
            f"start {one.start_seconds:5.1f} s; longest silence {one.longest_silence_seconds:4.1f} s, "
            f"after {one.silence_after or 'the start'!r})",
            flush=True,
        )
    totals = [one.total_seconds for one in timed]
    print(
        f"fresh clone to ready, {len(timed)} runs: median {statistics.median(totals):.1f} s, "
        f"p95 {nearest_rank(totals, 95):.1f} s; bootstrap median "
        f"{statistics.median(one.bootstrap_seconds for one in timed):.1f} s; longest silence "
        f"{max(one.longest_silence_seconds for one in timed):.1f} s"
    )
    return ExitCode.OK

