"""Benchmark `make diff`: wall time of the program diff, cold (base evaluated) and warm (base from cache).

Runs `python -m tools diff --base <ref> --no-policy` as a subprocess, as `make diff` does, and prints the
median and p95 (nearest rank: always a measured value) in seconds. Cold runs remove build/diff-cache
first; a run that produces no diff (any exit but OK and FAILED) stops the benchmark.
"""

from __future__ import annotations

import math
import shutil
import statistics
import subprocess
import sys
import time

from tools.exit_codes import ExitCode
from tools.project_files import ROOT


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def one_run(base: str, cold: bool) -> float:
    if cold:
        shutil.rmtree(ROOT / "build" / "diff-cache", ignore_errors=True)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "tools", "diff", "--base", base, "--no-policy"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - started
    if result.returncode not in (0, 1):
        raise SystemExit(f"make diff failed ({result.returncode}): {result.stderr.strip()[-400:]}")
    return elapsed


def run(base: str, runs: int = 5) -> ExitCode:
    """`runs` cold and `runs` warm diffs against `base`; prints the median and p95 of each."""
    for label, cold in (("cold (base evaluated)", True), ("warm (base from cache)", False)):
        times = [one_run(base, cold) for _ in range(runs)]
        print(
            f"{label}: median {statistics.median(times):.1f} s, p95 {p95(times):.1f} s "
            f"over {len(times)} runs ({', '.join(f'{t:.1f}' for t in times)})"
        )
    return ExitCode.OK
