"""Benchmark `make diff`: wall time of the program diff, cold (base evaluated) and warm (base from cache).

    python -m tools.bench.diff --base main [--runs 5]

Runs `python -m tools.offline.diff --base <ref> --no-policy` as a subprocess, as `make diff` does, and
prints the median and p95 (nearest rank: always a measured value) in seconds. Cold runs remove
build/diff-cache first. The exit status of each run is printed and a run that fails to produce a diff
(status 2 or 3) stops the benchmark.
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def one_run(base: str, cold: bool) -> float:
    if cold:
        shutil.rmtree(ROOT / "build" / "diff-cache", ignore_errors=True)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tools.offline.diff", "--base", base, "--no-policy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"make diff failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench.diff", description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args(argv)
    for label, cold in (("cold (base evaluated)", True), ("warm (base from cache)", False)):
        times = [one_run(options.base, cold) for _ in range(options.runs)]
        print(
            f"{label}: median {statistics.median(times):.1f} s, p95 {p95(times):.1f} s "
            f"over {len(times)} runs ({', '.join(f'{t:.1f}' for t in times)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
