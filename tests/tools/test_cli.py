"""The one command line: every command answers --help, the make targets call real commands, the exit codes
mean one thing each and docs/cli.md shows exactly what the code defines."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools import cli, cli_reference
from tools.exit_codes import MEANING, ExitCode, markdown_table
from tools.project_files import ROOT


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


COMMANDS = [path for path, _ in cli_reference.commands()]


def test_the_app_lists_every_command_with_a_one_line_summary() -> None:
    assert {"up", "plan", "policy", "diff", "deploy", "secrets add", "bench startup"} <= set(COMMANDS)
    assert all(summary for _, summary in cli_reference.commands())


@pytest.mark.parametrize("path", ["", "secrets", "bench", *COMMANDS])
def test_every_command_and_group_answers_help(path: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([*path.split(), "--help"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert out.startswith(f"Usage: python -m tools {path}".rstrip())


def test_usage_errors_exit_usage_with_a_hint() -> None:
    missing = run("plan")
    assert missing.returncode == ExitCode.USAGE
    assert "Missing option '--stack'" in missing.stderr and "Traceback" not in missing.stderr
    assert run("no-such-command").returncode == ExitCode.USAGE
    both = run("grant-ops", "--email", "a@example.com")
    assert both.returncode == ExitCode.USAGE and "exactly one of --stack and --local" in both.stderr


def test_a_missing_policy_pack_config_is_refused_before_a_plan_is_written(tmp_path: Path) -> None:
    missing = run("policy", "--stack", "staging", "--config", str(tmp_path / "missing.json"),
                  "--out", str(tmp_path / "report.json"))
    assert missing.returncode == ExitCode.USAGE and "does not exist" in missing.stderr
    assert "staging:" not in missing.stdout and not (tmp_path / "report.json").exists()


def test_a_message_exit_is_printed_and_failed(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(*args: object, **kwargs: object) -> None:
        raise SystemExit("something went wrong")

    monkeypatch.setattr("tools.offline.plan.evaluate.run", stop)
    assert cli.main(["plan", "--stack", "staging"]) == ExitCode.FAILED
    assert capsys.readouterr().err.strip() == "something went wrong"


def test_each_exit_code_has_one_name_and_one_documented_meaning() -> None:
    values = [code.value for code in ExitCode]
    assert len(values) == len(set(values))
    assert set(MEANING) == set(ExitCode) and all(MEANING.values())
    # Click reports its usage errors as 2 and typer a Ctrl-C as 130: the table agrees with both.
    assert ExitCode.USAGE == 2 and ExitCode.INTERRUPTED == 130


def test_docs_cli_page_is_generated_from_the_code() -> None:
    text = (ROOT / cli_reference.PAGE).read_text(encoding="utf-8")
    assert markdown_table() in text
    assert not cli_reference.stale(), "docs/cli.md is stale: run .venv/bin/python -m tools cli-reference"


def test_every_make_target_that_calls_the_app_names_a_real_command() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    called = re.findall(r"\$\(TOOLS\) ((?:[a-z][\w-]*)(?: [a-z][\w-]*)?)", makefile)
    assert called, "the Makefile calls no command through $(TOOLS)"
    for words in called:
        assert any(f"{words} ".startswith(f"{path} ") for path in COMMANDS), f"make calls unknown `{words}`"
    assert "-m tools." not in makefile, "a make target bypasses the command line"
    aliases = cli_reference.make_aliases()
    for target, command in (("plan", "plan"), ("secrets-check", "secrets check"), ("deploy", "deploy")):
        assert target in aliases[command]


def test_the_workflows_call_the_app_not_modules() -> None:
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        text = workflow.read_text(encoding="utf-8")
        assert not re.search(r"-m tools\.", text), f"{workflow.name} calls a module instead of `-m tools`"
        for words in re.findall(r"-m tools ((?:[a-z][\w-]*)(?: [a-z][\w-]*)?)", text):
            assert any(f"{words} ".startswith(f"{path} ") for path in COMMANDS), (workflow.name, words)


def test_policy_runs_the_pack_in_its_own_virtualenv(tmp_path: Path) -> None:
    """From .venv (no pulumi_policy), `policy` re-runs itself with .venv-policy's interpreter."""
    if not (ROOT / ".venv-policy" / "bin" / "python").is_file():
        pytest.skip(".venv-policy is not built (make setup-policy; `make test` builds it first)")
    topic = {
        "urn": "urn:pulumi:staging::launch-ready::gcp:pubsub/topic:Topic::t",
        "type": "gcp:pubsub/topic:Topic",
        "name": "t",
        "parent": None,
        "inputs": {"name": "t", "messageRetentionDuration": "86400s"},
        "options": {},
    }
    plan, out = tmp_path / "plan.json", tmp_path / "policy.json"
    plan.write_text(json.dumps([topic]), encoding="utf-8")
    result = run("policy", "--stack", "staging", "--plan", str(plan), "--out", str(out))
    assert result.returncode in (ExitCode.OK, ExitCode.FAILED), result.stderr
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["stack"] == "staging" and report["pack"].startswith("launch-ready") and report["policies"]
