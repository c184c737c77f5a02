"""Start-to-ready time of the local stack: `python -m tools.bench.startup --runs 3`.

Each run starts `python -m tools.local up` as `make up` does (its own process group, a free block of
ports), times it until `endpoints.json` is written, then stops it with SIGTERM and waits until it has
exited. Cold runs start from an empty state directory (as on a fresh clone); warm runs reuse the state
directory of the previous run (the kept webhook secret, the Auth emulator's config). Prints every run
and the medians.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.startup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (default 3)")
    args = parser.parse_args(argv)
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
            for run in range(1, args.runs + 1):
                if kind == "cold":
                    shutil.rmtree(state_dir, ignore_errors=True)
                elapsed, components = start_to_ready(state_dir)
                results[kind].append(elapsed)
                for label, seconds in components.items():
                    slowest.setdefault(label, []).append(seconds)
                top = sorted(components.items(), key=lambda item: -item[1])[:3]
                print(
                    f"{kind} run {run}: {elapsed:5.1f} s  (slowest: "
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
