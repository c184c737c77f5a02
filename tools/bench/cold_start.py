"""`python -m tools bench cold-start`: each function's cold start (its unzipped archive, `create_app`)
against its floor (functions_framework and the third-party imports of its closure); docs/benchmarks.md.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from components.archive import HANDLERS, build_archive, import_closure
from components.catalog import load_catalog
from tools.bench.pipeline import percentile
from tools.exit_codes import ExitCode

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "functions_src"
TARGET_RATIO = 1.05
FRAMEWORK = "import functions_framework"
RUN_TIMEOUT_SECONDS = 120


@dataclass
class Subject:
    name: str
    entry_point: str
    directory: Path  # the unzipped archive
    floor_imports: tuple[str, ...]
    # Per run: [cpu ms, wall ms, modules loaded]; a paired run: [floor cpu ms, total cpu ms].
    function: list[list[float]] = field(default_factory=list)
    floor: list[list[float]] = field(default_factory=list)
    paired: list[list[float]] = field(default_factory=list)
    baseline: list[list[float]] = field(default_factory=list)

    @property
    def create_app(self) -> str:
        return f"functions_framework.create_app({self.entry_point!r}, 'main.py', 'http')"

    def summary(self) -> dict[str, Any]:
        def stats(values: list[float]) -> dict[str, float]:
            return {"median": round(median(values), 3), "p95": round(percentile(values, 0.95), 3)}

        function_cpu, floor_cpu = [run[0] for run in self.function], [run[0] for run in self.floor]
        baseline = (
            {
                "baseline_cpu_ms": stats([run[0] for run in self.baseline]),
                "baseline_modules": int(self.baseline[0][2]),
            }
            if self.baseline
            else {}
        )
        return {
            "runs": len(self.function),
            "function_modules": int(self.function[0][2]),
            **baseline,
            "function_cpu_ms": stats(function_cpu),
            "floor_cpu_ms": stats(floor_cpu),
            "function_wall_ms": stats([run[1] for run in self.function]),
            "floor_wall_ms": stats([run[1] for run in self.floor]),
            "ratio_of_medians": round(median(function_cpu) / median(floor_cpu), 3),
            "ratio_of_p95": round(percentile(function_cpu, 0.95) / percentile(floor_cpu, 0.95), 3),
            "paired_ratio": stats([total / floor for floor, total in self.paired]),
            "floor_imports": list(self.floor_imports),
        }


def script(*sections: list[str]) -> str:
    """A script that runs each section of statements in turn and prints, for each, the CPU and wall
    milliseconds since the script started timing, then how many modules are loaded."""
    lines = ["import time as _t", "_cpu, _wall, _marks = _t.process_time(), _t.perf_counter(), []"]
    for statements in sections:
        lines += [line for statement in statements for line in statement.splitlines()]
        lines.append("_marks += [(_t.process_time() - _cpu) * 1000, (_t.perf_counter() - _wall) * 1000]")
    lines += ["import sys as _sys", "print(*_marks, len(_sys.modules))"]
    return "\n".join(lines) + "\n"


def time_script(source: str, directory: Path) -> list[float]:
    """The marks the script prints, from a fresh interpreter in `directory`."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(directory)}
    result = subprocess.run(
        [sys.executable, "-c", source],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    if result.returncode != 0:
        raise RuntimeError(f"a run in {directory} failed:\n{result.stderr[-2000:]}")
    return [float(value) for value in result.stdout.split()]


def prepare(workdir: Path, only: set[str] | None) -> list[Subject]:
    """Every function's archive, built and unzipped as Cloud Functions unpacks it."""
    subjects = []
    for spec in load_catalog().functions:
        if only and spec.name not in only:
            continue
        archive = build_archive(
            SOURCE, workdir / "archives", name=spec.resource_name, entry_point=spec.entry_point
        )
        directory = workdir / spec.name
        with zipfile.ZipFile(archive.path) as bundle:
            bundle.extractall(directory)
        closure = import_closure(SOURCE, f"{HANDLERS}.{spec.entry_point}")
        subjects.append(Subject(spec.name, spec.entry_point, directory, closure.third_party_imports))
    return subjects


def measure(subjects: list[Subject], runs: int, warmup: int, baseline: Path | None) -> None:
    for index in range(warmup + runs):
        for subject in subjects:
            floor = [FRAMEWORK, *subject.floor_imports]
            function = script([FRAMEWORK, subject.create_app])
            pair = [("function", function), ("floor", script(floor))]
            marks = {
                kind: time_script(source, subject.directory)
                for kind, source in (pair if index % 2 == 0 else pair[::-1])
            }
            paired = time_script(script(floor, [subject.create_app]), subject.directory)
            before = time_script(function, baseline / "functions_src") if baseline else None
            if index >= warmup:  # the first runs write the bytecode caches
                subject.function.append(marks["function"])
                subject.floor.append(marks["floor"])
                subject.paired.append([paired[0], paired[2]])
                if before:
                    subject.baseline.append(before)
        if index >= warmup:
            print(f"  run {index - warmup + 1}/{runs}", file=sys.stderr, flush=True)


def render(subjects: list[Subject]) -> str:
    lines = [
        "CPU ms of each run (median / p95); ratios function / floor",
        f"{'function':<16} {'function':>15} {'floor':>15} {'ratio medians':>14} {'ratio p95':>10}"
        f" {'paired ratio':>15} {'wall: function':>15} {'floor':>13}",
    ]
    for subject in subjects:
        row = subject.summary()
        fn, fl, paired = row["function_cpu_ms"], row["floor_cpu_ms"], row["paired_ratio"]
        fn_wall, fl_wall = row["function_wall_ms"], row["floor_wall_ms"]
        lines.append(
            f"{subject.name:<16} {fn['median']:>7.0f} / {fn['p95']:>5.0f}"
            f" {fl['median']:>7.0f} / {fl['p95']:>5.0f}"
            f" {row['ratio_of_medians']:>13.3f}x {row['ratio_of_p95']:>9.3f}x"
            f" {paired['median']:>6.3f}x / {paired['p95']:.3f}x"
            f" {fn_wall['median']:>7.0f} / {fn_wall['p95']:>5.0f}"
            f" {fl_wall['median']:>5.0f} / {fl_wall['p95']:>5.0f}"
        )
    if subjects[0].baseline:
        lines.append("\nthe baseline tree (CPU ms, median / p95; modules loaded)")
        for subject in subjects:
            row = subject.summary()
            base, now = row["baseline_cpu_ms"], row["function_cpu_ms"]
            lines.append(
                f"{subject.name:<16} baseline {base['median']:>5.0f} / {base['p95']:>5.0f}"
                f" ({row['baseline_modules']}), now {now['median']:>5.0f} / {now['p95']:>5.0f}"
                f" ({row['function_modules']}): {now['median'] / base['median']:.2f}x"
            )
    worst = max(subject.summary()["paired_ratio"]["median"] for subject in subjects)
    verdict = "within" if worst <= TARGET_RATIO else "ABOVE"
    lines.append(f"highest paired median ratio {worst:.3f}x ({verdict} the {TARGET_RATIO}x target)")
    lines.append("\nfloors (functions_framework plus):")
    lines += [f"  {subject.name}: {'; '.join(subject.floor_imports)}" for subject in subjects]
    return "\n".join(lines)


def run(
    runs: int = 20,
    warmup: int = 1,
    functions: list[str] | None = None,
    baseline: Path | None = None,
    json_out: Path | None = None,
) -> ExitCode:
    """Measure, print the table and the verdict; USAGE for an unknown function name."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(143))  # so the work directory is removed
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="launchready-bench-cold-start-") as workdir:
        subjects = prepare(Path(workdir), set(functions) if functions else None)
        if not subjects:
            print(f"error: no such function: {', '.join(functions or [])}", file=sys.stderr)
            return ExitCode.USAGE
        measure(subjects, runs, warmup, baseline)
    print(render(subjects))
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"\n{os.cpu_count()} CPUs, load average {load}, {time.monotonic() - started:.0f} s in all")
    if json_out:
        json_out.write_text(json.dumps({s.name: s.summary() for s in subjects}, indent=2) + "\n")
    return ExitCode.OK
