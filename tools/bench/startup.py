"""`python -m tools bench startup`: cold and warm start-to-ready of `make up`, as `make up` starts it.

Each run is stopped and has exited before the next one starts (docs/tools.md).
"""

from __future__ import annotations

import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tools.exit_codes import ExitCode
from tools.local.launcher import running_stack

READY_TIMEOUT = 300.0


def start_to_ready(state_dir: Path) -> tuple[float, dict[str, float]]:
    """Seconds until endpoints.json exists, and each component's own readiness time from the output."""
    started = time.monotonic()
    with running_stack(state_dir, timeout=READY_TIMEOUT, poll=0.05) as stack:
        elapsed = time.monotonic() - started
    return elapsed, _component_times(stack.output())


def _component_times(output: str) -> dict[str, float]:
    """'[ 12.3s] ✓ Firestore emulator   127.0.0.1:8600  (12.2 s)' -> {'Firestore emulator': 12.2}."""
    times = {}
    for line in output.splitlines():
        if "✓" in line and line.rstrip().endswith(" s)"):
            label = line.split("✓", 1)[1].strip().split("  ")[0]
            times[label] = float(line.rsplit("(", 1)[1].split()[0])
    return times


def run(runs: int = 3) -> ExitCode:
    """`runs` cold and `runs` warm starts, timed to ready; prints each and the medians."""
    # SIGTERM unwinds like Ctrl-C, so the run in progress is stopped by its `finally`.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    results: dict[str, list[float]] = {"cold": [], "warm": []}
    slowest: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="launchready-bench-") as tmp:
        root = Path(tmp)
        for kind in ("cold", "warm"):
            state_dir = root / kind
            if kind == "warm":
                start_to_ready(state_dir)  # prime the state directory once
            for number in range(1, runs + 1):
                if kind == "cold":
                    shutil.rmtree(state_dir, ignore_errors=True)
                elapsed, components = start_to_ready(state_dir)
                results[kind].append(elapsed)
                for label, seconds in components.items():
                    slowest.setdefault(label, []).append(seconds)
                top = sorted(components.items(), key=lambda item: -item[1])[:3]
                print(
                    f"{kind} run {number}: {elapsed:5.1f} s  (slowest: "
                    + ", ".join(f"{label} {seconds:.1f} s" for label, seconds in top)
                    + ")",
                    flush=True,
                )
    print()
    for kind, values in results.items():
        print(f"median {kind} start-to-ready: {statistics.median(values):.1f} s over {len(values)} runs")
    print(
        "median per component: "
        + ", ".join(
            f"{label} {statistics.median(values):.1f} s"
            for label, values in sorted(slowest.items(), key=lambda item: -statistics.median(item[1]))[:5]
        )
    )
    return ExitCode.OK

