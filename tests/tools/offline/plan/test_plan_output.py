"""What `make plan` prints around the table: example-value warnings, the deploy phases, YAML errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.phases import PHASE_NAMES
from tools.offline.plan import evaluate as plan

ROOT = Path(__file__).resolve().parents[4]


def test_plan_warns_once_per_example_value_and_prints_the_phases(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = plan.run("prod", quiet=True, out=tmp_path / "plan.json")
    out, err = capsys.readouterr()
    assert status == 0
    warnings = [line for line in err.splitlines() if line.startswith("warning: Pulumi.prod.yaml:")]
    keys = [line.split(": ")[2].split()[0] for line in warnings]
    assert "launchready:projectId" in keys and len(keys) == len(set(keys))
    for number, name in enumerate(PHASE_NAMES, start=1):
        assert f"  {number}. {name}: " in out
    assert "adopt mode (createProject false)" in out


def test_yaml_syntax_error_is_one_line_with_file_line_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (ROOT / "Pulumi.staging.yaml").read_text(encoding="utf-8")
    broken = text.replace("launchready:region: europe-west1", "launchready:region: [europe-west1", 1)
    (tmp_path / "Pulumi.staging.yaml").write_text(broken, encoding="utf-8")
    assert plan.run("staging", root=tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("error: Pulumi.staging.yaml:") and ": YAML syntax error: " in err
    line, column = err.split(":")[2:4]
    assert int(line) > 1 and int(column) >= 1
