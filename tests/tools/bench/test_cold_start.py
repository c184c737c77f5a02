"""The cold-start benchmark's timed scripts and report (the timing itself is only measured by running the
benchmark)."""

from pathlib import Path

from tools.bench.cold_start import Subject, render, script, time_script


def test_a_script_reports_cpu_and_wall_time_per_section_and_the_modules_loaded(tmp_path: Path) -> None:
    marks = time_script(script(["import json"], ["x = sum(range(10_000))"]), tmp_path)

    floor_cpu, floor_wall, total_cpu, total_wall, modules = marks
    assert 0 <= floor_cpu <= total_cpu and 0 <= floor_wall <= total_wall
    assert modules > 10 and modules == int(modules)


def subject(function: list[float], floor: list[float], paired: list[float]) -> Subject:
    return Subject("crm_worker", "crm_worker", Path("."), ("import requests",),
                   function=[[value, value * 2, 900] for value in function],
                   floor=[[value, value * 2, 800] for value in floor],
                   paired=[[100.0, 100.0 * ratio] for ratio in paired])


def test_the_summary_gives_medians_p95s_and_the_paired_ratio() -> None:
    row = subject(function=[100.0 + i for i in range(20)], floor=[100.0] * 20,
                  paired=[1.02] * 18 + [1.03, 1.04]).summary()

    assert row["function_cpu_ms"] == {"median": 109.5, "p95": 118.0}
    assert row["ratio_of_medians"] == 1.095 and row["ratio_of_p95"] == 1.18
    assert row["paired_ratio"] == {"median": 1.02, "p95": 1.03}
    assert row["function_modules"] == 900 and "baseline_cpu_ms" not in row


def test_the_report_judges_the_paired_median_against_the_target() -> None:
    within = render([subject([100.0] * 20, [100.0] * 20, [1.05] * 20)])
    above = render([subject([100.0] * 20, [100.0] * 20, [1.06] * 20)])

    assert "highest paired median ratio 1.050x (within the 1.05x target)" in within
    assert "highest paired median ratio 1.060x (ABOVE the 1.05x target)" in above
    assert "crm_worker: import requests" in within
