"""Fresh clone to a ready local stack: `python -m tools.bench.fresh_start --runs 3`.

Each run reproduces a new user's first `make up`: `git clone` of this repository's HEAD into a new
temporary directory, pip's and npm's caches pointed at new empty directories (PIP_CACHE_DIR,
npm_config_cache; uv's too, UV_CACHE_DIR), then `make up` there on a free block of ports and its own
state directory, timed until `.local/endpoints.json` is written (ready). The stack is then stopped with
SIGTERM to its process group and the directory removed. Prints each run's bootstrap and start times
and the median and p95 (nearest rank, so always a measured value) of the total.

Not reproduced: the operating system's file cache, and packages that pip's configuration finds on
local disk (`pip config list` shows find-links and extra index URLs when the machine has them).
"""

from __future__ import annotations

import argparse
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

from components.catalog import load_catalog
from tools.local.layout import REPO, free_port_base

READY_TIMEOUT_SECONDS = 600.0
STOP_TIMEOUT_SECONDS = 60.0
# The first line `python -m tools.local up` prints; everything before it is the bootstrap.
UP_FIRST_LINE = re.compile(r"^\[\s*[\d.]+s\] … starting ")


@dataclass(frozen=True)
class Run:
    bootstrap_seconds: float
    total_seconds: float
    longest_silence_seconds: float

    @property
    def start_seconds(self) -> float:
        return self.total_seconds - self.bootstrap_seconds


def fresh_start(root: Path, source: Path = REPO) -> tuple[Run, str]:
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
        LOCAL_PORT_BASE=str(free_port_base(len(load_catalog().functions))),
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
    bootstrap = next((at for at, line in lines if UP_FIRST_LINE.match(line)), total)
    moments = [0.0, *(at for at, _ in lines), total]
    silence = max(later - earlier for earlier, later in zip(moments, moments[1:], strict=False))
    return Run(bootstrap, total, silence), "\n".join(line for _, line in lines)


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def nearest_rank(values: list[float], percent: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(percent / 100 * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.bench.fresh_start",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--runs", type=int, default=3, help="fresh clones to time (default 3)")
    parser.add_argument("--verbose", action="store_true", help="print each run's `make up` output")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))
    runs: list[Run] = []
    for number in range(1, args.runs + 1):
        root = Path(tempfile.mkdtemp(prefix="launchready-fresh-"))
        try:
            run, output = fresh_start(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        runs.append(run)
        if args.verbose:
            print(output)
        print(
            f"run {number}: ready in {run.total_seconds:5.1f} s (bootstrap {run.bootstrap_seconds:5.1f} s, "
            f"start {run.start_seconds:5.1f} s; longest silence {run.longest_silence_seconds:4.1f} s)",
            flush=True,
        )
    totals = [run.total_seconds for run in runs]
    print(
        f"fresh clone to ready, {len(runs)} runs: median {statistics.median(totals):.1f} s, "
        f"p95 {nearest_rank(totals, 95):.1f} s; bootstrap median "
        f"{statistics.median(run.bootstrap_seconds for run in runs):.1f} s; longest silence "
        f"{max(run.longest_silence_seconds for run in runs):.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
